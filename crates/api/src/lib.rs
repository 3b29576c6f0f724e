//! api.video on the wire: what the product and its local double both need to agree on.
//!
//! The product (`avbatch-core`) reads these types from api.video's answers and writes its
//! requests with them; the double (`avbatch-serve`) reads the requests and writes its answers
//! with the same types, so a member, a slug or a state one half knows and the other does not
//! cannot compile on one side only. Neither is a dependency of this crate.
//!
//! - [`video`](Video): the create payload, the video, its fields after creation
//!   ([`VideoUpdate`]), languages, clips and watermarks.
//! - [`status`](VideoStatus): `GET /videos/{id}/status`, how far the source and the encoding got.
//! - [`assets`](Caption): thumbnails, captions and chapters, and the [`TrackKind`] between them;
//!   the languages they take ([`caption_language`]: api.video's documented list, as data).
//! - [`Page`]: a listing's page and its links.
//! - [`Problem`] and [`slug`]: problem+json errors and the slugs both halves decide by.
//! - [`Bucket`], [`RateInfo`]: the rate-limit quotas and headers.
//! - [`AccessToken`], [`UploadToken`], [`WatermarkImage`]: answers only the double writes today.
//! - [`atom_timestamp`]: times as api.video writes them.
//! - [`secret`]: keys and tokens that never print.

mod assets;
mod languages;
mod page;
mod problem;
mod ratelimit;
pub mod secret;
mod status;
mod time;
mod tokens;
mod update;
mod video;

pub use assets::{
    thumbnail_seconds, valid_thumbnail_timecode, Caption, CaptionUpdate, Chapter, ImageKind,
    ThumbnailPick, TrackKind, THUMBNAIL_MAX_BYTES, TRACK_MAX_BYTES,
};
pub use languages::{caption_language, caption_languages, language_tag_shape, Language};
pub use page::{Page, PageLink, Pagination};
pub use problem::{slug, Problem, TYPE_BASE};
pub use ratelimit::{rate_info, Bucket, Quotas, RateInfo};
pub use status::{
    BytesRange, Encoding, Ingest, Progress, Quality, ReceivedParts, SourceMetadata, VideoStatus,
};
pub use time::atom_timestamp;
pub use tokens::{
    AccessToken, Authenticate, Refresh, UploadToken, UploadTokenRequest, WatermarkImage,
};
pub use update::{consequence, differences, update_for, Difference, VideoUpdate, CREATION_ONLY};
pub use video::{
    clip_seconds, valid_clip_timecode, valid_placement, Clip, Metadata, NewVideo, SourceLink,
    Video, VideoAssets, VideoId, Watermark, LANGUAGES, SUMMARY_ATTRIBUTES, WATERMARK_PLACEMENT,
};
