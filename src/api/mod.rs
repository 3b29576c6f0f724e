//! api.video on the wire: what the client and the server double both need to agree on.
//!
//! The shapes of videos and their status, the problem+json error body, the rate-limit buckets
//! and headers, the languages. [`crate::client`] speaks it to api.video; [`crate::server`]
//! answers in it. Neither of those is imported here, so the double can never shape the client.

mod problem;
mod ratelimit;
mod video;

pub use problem::Problem;
pub use ratelimit::{rate_info, Bucket, RateInfo};
pub use video::{
    BytesRange, Ingest, Metadata, NewVideo, Progress, ReceivedParts, Video, VideoStatus, LANGUAGES,
};
