//! api.video on the wire: what the product and its local double both need to agree on.
//!
//! The shapes of videos and their status, of thumbnails, captions and chapters, the problem+json
//! error body, the rate-limit buckets and headers, the languages; and [`secret`]: keys and tokens
//! that never print. `avbatch-core` speaks it to api.video; `avbatch-serve` answers in it. Neither
//! is a dependency of this crate, so the double can never shape the client.

mod assets;
mod problem;
mod ratelimit;
pub mod secret;
mod update;
mod video;

pub use assets::{
    thumbnail_seconds, valid_language_tag, valid_thumbnail_timecode, Caption, CaptionUpdate,
    Chapter, ImageKind, ThumbnailPick, THUMBNAIL_MAX_BYTES,
};
pub use problem::{slug, Problem};
pub use ratelimit::{rate_info, Bucket, Quotas, RateInfo};
pub use update::{differences, update_for, Difference, VideoUpdate};
pub use video::{
    clip_seconds, valid_clip_timecode, valid_placement, BytesRange, Clip, Encoding, Ingest,
    Metadata, NewVideo, Progress, ReceivedParts, Video, VideoStatus, Watermark, LANGUAGES,
    SUMMARY_ATTRIBUTES, WATERMARK_PLACEMENT,
};
