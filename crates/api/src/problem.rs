//! api.video's error body: problem+json (API.md §5.1).

use std::fmt;

use serde::Deserialize;

/// An api.video problem+json body (API.md §5.1).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Problem {
    /// `https://docs.api.video/reference/<slug>`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human title.
    #[serde(default)]
    pub title: String,
    /// The offending parameter.
    #[serde(default)]
    pub name: Option<String>,
    /// More detail.
    #[serde(default)]
    pub detail: Option<String>,
}

impl Problem {
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
