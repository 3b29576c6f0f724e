//! api.video's error body: problem+json (API.md §5.1).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where every problem's `type` URL points: the slug follows.
pub const TYPE_BASE: &str = "https://docs.api.video/reference/";

/// An api.video problem+json body (API.md §5.1): the client reads it, the double writes it,
/// its members in the order of the spec's examples.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Problem {
    /// `https://docs.api.video/reference/<slug>`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human title.
    #[serde(default)]
    pub title: String,
    /// The HTTP status, repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// More detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The offending parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Members some problems add (`problems`: every problem of a payload; `range`: the values a
    /// query parameter allows).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Problem {
    /// A problem of `status` with the `slug`'s `type` and a title.
    pub fn new(status: u16, slug: &str, title: &str) -> Self {
        Problem {
            kind: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: Some(status),
            ..Problem::default()
        }
    }

    /// The slug at the end of `type`.
    pub fn slug(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.title.trim_end_matches('.'))?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if !self.slug().is_empty() {
            write!(f, " (`{}`)", self.slug())?;
        }
        Ok(())
    }
}

/// The error slugs both halves name: the double answers with them, the product decides by them
/// (API.md §3 and §5), so a misspelling on either side does not compile.
pub mod slug {
    /// A part (by part number) the server holds already, sent again.
    pub const PART_ALREADY_SENT: &str = "video-content-range-by-part-part-already-sent";
    /// A byte range overlapping one the server holds already, sent again.
    pub const RANGE_OVERLAP: &str = "video-content-range-by-bytes-range-overlap";
    /// A chunk for a video whose source is complete.
    pub const SOURCE_ALREADY_UPLOADED: &str = "video-source-already-uploaded";
    /// No such video (or other resource).
    pub const RESOURCE_NOT_FOUND: &str = "resource-not-found";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_and_slug() {
        let p: Problem = serde_json::from_str(concat!(
            r#"{"type":"https://docs.api.video/reference/too-many-requests","#,
            r#""title":"Too many requests.","status":429}"#,
        ))
        .unwrap();
        assert_eq!(p.slug(), "too-many-requests");
        assert_eq!(p.to_string(), "Too many requests (`too-many-requests`)");
    }
}
