//! What a `PATCH /videos/{id}` changes: the fields in which a video differs from what a
//! creation payload would have made of it, and the body that removes those differences and
//! touches nothing else.
//!
//! One comparison serves `avbatch check` (which reports the differences) and `upsert`/`update`
//! rows (which send them), so a row `check` calls in step is one an update leaves alone. What
//! PATCH can change is compared and sent: title, description, tags, metadata, `public`,
//! `panoramic`, `mp4Support`, `playerId`, `language`, `transcript`, `transcriptSummary` and its
//! attributes. `clip` and `watermark` are compared too, never sent: api.video takes them only
//! at creation (API.md §2), so a changed one is said ([`Difference::settable`]), not ignored.

use serde::Serialize;

use super::{clip_seconds, Clip, Metadata, NewVideo, Video, Watermark};

/// A field whose value on the server is not the one wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Its name as api.video spells it (`title`, `mp4Support`, …).
    pub field: &'static str,
    /// The wanted value, as api.video would store it.
    pub wanted: String,
    /// What the server holds.
    pub held: String,
}

/// The fields api.video takes only when a video is made: no PATCH changes them.
pub const CREATION_ONLY: &[&str] = &["clip", "watermark"];

impl Difference {
    /// Whether `PATCH /videos/{id}` can set it: all but [`CREATION_ONLY`].
    pub fn settable(&self) -> bool {
        !CREATION_ONLY.contains(&self.field)
    }

    /// What changing it does beyond the field: [`consequence`].
    pub fn consequence(&self) -> Option<&'static str> {
        consequence(self.field)
    }
}

/// What changing `field` on a video does beyond the field, when that is more: a new language
/// starts a new transcript; a creation-only field takes a new video.
pub fn consequence(field: &str) -> Option<&'static str> {
    match field {
        "language" => Some("api.video starts a new transcript"),
        _ if CREATION_ONLY.contains(&field) => {
            Some("set only when a video is made: --force makes a new video")
        }
        _ => None,
    }
}

/// The body of `PATCH /videos/{id}`: members present replace the stored ones, arrays whole.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VideoUpdate {
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Metadata, whole: api.video replaces the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<Metadata>>,
    /// Public playback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// 360° video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panoramic: Option<bool>,
    /// mp4 asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mp4_support: Option<bool>,
    /// Player theme.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// Spoken language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whether api.video makes a transcript.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<bool>,
    /// Whether api.video makes a summary of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_summary: Option<bool>,
    /// What the summary holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript_summary_attributes: Option<Vec<String>>,
}

impl VideoUpdate {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == VideoUpdate::default()
    }
}

/// The fields `wanted` sets whose value on `held` is another, as api.video stores them: the
/// title when it has one; the rest only when `wanted` sets them (api.video answers `public`,
/// `panoramic` and `mp4Support` with their defaults, true, false and true, when they were
/// never set). Tags are compared as a set, metadata as a set of pairs without the keys in
/// `own` (those a tool keeps for itself on the video).
pub fn differences(wanted: &NewVideo, held: &Video, own: &[&str]) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |field: &'static str, wanted: String, held: String| {
        if wanted != held {
            out.push(Difference { field, wanted, held });
        }
    };
    if !wanted.title.is_empty() {
        differ("title", wanted.title.clone(), held.title.clone());
    }
    if let Some(d) = &wanted.description {
        differ("description", d.clone(), held.description.clone().unwrap_or_default());
    }
    let set = |tags: &[String]| {
        let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        tags.join(";")
    };
    if !wanted.tags.is_empty() {
        differ("tags", set(&wanted.tags), set(held.tags.as_deref().unwrap_or_default()));
    }
    let pairs = |pairs: &[Metadata]| {
        let mut pairs: Vec<String> = pairs
            .iter()
            .filter(|m| !own.contains(&m.key.as_str()))
            .map(|m| format!("{}={}", m.key, m.value))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs.join(";")
    };
    let metadata = pairs(&wanted.metadata);
    if !metadata.is_empty() {
        differ("metadata", metadata, pairs(&held.metadata));
    }
    for (field, wanted, held, default) in [
        ("public", wanted.public, held.public, true),
        ("panoramic", wanted.panoramic, held.panoramic, false),
        ("mp4Support", wanted.mp4_support, held.mp4_support, true),
    ] {
        if let Some(wanted) = wanted {
            differ(field, wanted.to_string(), held.unwrap_or(default).to_string());
        }
    }
    for (field, wanted, held) in [
        ("playerId", &wanted.player_id, &held.player_id),
        ("language", &wanted.language, &held.language),
    ] {
        if let Some(wanted) = wanted {
            differ(field, wanted.clone(), held.clone().unwrap_or_default());
        }
    }
    for (field, wanted, held) in [
        ("transcript", wanted.transcript, held.transcript),
        ("transcriptSummary", wanted.transcript_summary, held.transcript_summary),
    ] {
        if let Some(wanted) = wanted {
            differ(field, wanted.to_string(), held.unwrap_or(false).to_string());
        }
    }
    if !wanted.transcript_summary_attributes.is_empty() {
        let held = held.transcript_summary_attributes.as_deref().unwrap_or_default();
        differ(
            "transcriptSummaryAttributes",
            set(&wanted.transcript_summary_attributes),
            set(held),
        );
    }
    if let Some(clip) = &wanted.clip {
        differ("clip", show_clip(Some(clip)), show_clip(held.clip.as_deref()));
    }
    if let Some(mark) = &wanted.watermark {
        let show = |w: Option<&Watermark>| {
            w.map_or_else(|| "none".into(), |w| serde_json::to_string(w).unwrap_or_default())
        };
        differ("watermark", show(Some(mark)), show(held.watermark.as_deref()));
    }
    out
}

/// A clip as the seconds it keeps (`5s-65.5s`: timecodes written otherwise compare alike), or
/// `none`.
fn show_clip(clip: Option<&Clip>) -> String {
    let Some(clip) = clip else { return "none".into() };
    let at = |t: &Option<String>| {
        t.as_deref().map_or_else(
            || "-".into(),
            |t| match clip_seconds(t) {
                Some(s) => format!("{s}s"),
                None => t.to_owned(),
            },
        )
    };
    format!("{}-{}", at(&clip.start_timecode), at(&clip.end_timecode))
}

/// The PATCH that makes `held` what `wanted` would have made it: only the settable fields in
/// [`differences`], each with `wanted`'s value. Metadata goes whole (api.video replaces the
/// list): `wanted`'s pairs, then the pairs of `held` under the keys in `own` that `wanted` does
/// not set, so a tool's own keys on the video survive the update.
pub fn update_for(wanted: &NewVideo, held: &Video, own: &[&str]) -> VideoUpdate {
    let mut update = VideoUpdate::default();
    for d in differences(wanted, held, own) {
        match d.field {
            "title" => update.title = Some(wanted.title.clone()),
            "description" => update.description = wanted.description.clone(),
            "tags" => update.tags = Some(wanted.tags.clone()),
            "metadata" => {
                let mut metadata = wanted.metadata.clone();
                let kept = held.metadata.iter().filter(|m| {
                    own.contains(&m.key.as_str()) && !wanted.metadata.iter().any(|w| w.key == m.key)
                });
                metadata.extend(kept.cloned());
                update.metadata = Some(metadata);
            }
            "public" => update.public = wanted.public,
            "panoramic" => update.panoramic = wanted.panoramic,
            "mp4Support" => update.mp4_support = wanted.mp4_support,
            "playerId" => update.player_id = wanted.player_id.clone(),
            "language" => update.language = wanted.language.clone(),
            "transcript" => update.transcript = wanted.transcript,
            "transcriptSummary" => update.transcript_summary = wanted.transcript_summary,
            "transcriptSummaryAttributes" => {
                update.transcript_summary_attributes =
                    Some(wanted.transcript_summary_attributes.clone());
            }
            // Taken only at creation: said by the callers, never sent.
            "clip" | "watermark" => {}
            other => unreachable!("`differences` names no field `{other}`"),
        }
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [&str; 2] = ["avbatch_key", "avbatch_assets"];

    fn meta(pairs: &[(&str, &str)]) -> Vec<Metadata> {
        pairs.iter().map(|(k, v)| Metadata { key: (*k).into(), value: (*v).into() }).collect()
    }

    #[test]
    fn only_the_fields_a_row_sets_are_compared() {
        let want = NewVideo {
            tags: vec!["b".into(), "a".into()],
            metadata: meta(&[("genre", "x"), ("avbatch_key", "k")]),
            ..NewVideo::titled("T")
        };
        let video = Video {
            title: "T".into(),
            description: Some("server's own".into()),
            tags: Some(vec!["a".into(), "b".into(), "a".into()]),
            metadata: meta(&[("avbatch_assets", "d"), ("genre", "x"), ("avbatch_key", "k")]),
            public: Some(false),
            ..Video::default()
        };
        assert_eq!(differences(&want, &video, &OWN), []);
        assert!(update_for(&want, &video, &OWN).is_empty());
        let want = NewVideo {
            description: Some("mine".into()),
            public: Some(true),
            panoramic: Some(false),
            mp4_support: Some(true),
            language: Some("fr".into()),
            tags: vec!["a".into()],
            ..want
        };
        let fields: Vec<&str> = differences(&want, &video, &OWN).iter().map(|d| d.field).collect();
        assert_eq!(fields, ["description", "tags", "public", "language"]);
        let update = update_for(&want, &video, &OWN);
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            serde_json::json!({
                "description": "mine", "tags": ["a"], "public": true, "language": "fr"
            })
        );
    }

    #[test]
    fn unset_booleans_are_the_api_defaults() {
        let video = Video { title: "T".into(), ..Video::default() };
        let want = NewVideo {
            public: Some(true),
            panoramic: Some(false),
            mp4_support: Some(true),
            ..NewVideo::titled("T")
        };
        assert_eq!(differences(&want, &video, &OWN), []);
        let want = NewVideo { panoramic: Some(true), ..want };
        assert_eq!(
            differences(&want, &video, &OWN),
            [Difference { field: "panoramic", wanted: "true".into(), held: "false".into() }]
        );
    }

    #[test]
    fn metadata_is_a_set_of_pairs_and_the_tools_own_keys_survive_an_update() {
        let want = NewVideo {
            metadata: meta(&[("a", "1"), ("b", "2"), ("avbatch_key", "k")]),
            ..NewVideo::titled("T")
        };
        let video = Video {
            title: "T".into(),
            metadata: meta(&[("b", "2"), ("a", "1"), ("avbatch_key", "k")]),
            ..Video::default()
        };
        assert_eq!(differences(&want, &video, &OWN), []);
        let video = Video {
            metadata: meta(&[
                ("a", "1"),
                ("b", "3"),
                ("avbatch_assets", "d"),
                ("avbatch_key", "k"),
            ]),
            ..video
        };
        assert_eq!(differences(&want, &video, &OWN)[0].held, "a=1;b=3");
        assert_eq!(
            update_for(&want, &video, &OWN).metadata.unwrap(),
            meta(&[("a", "1"), ("b", "2"), ("avbatch_key", "k"), ("avbatch_assets", "d")])
        );
    }

    #[test]
    fn an_empty_title_leaves_the_title_alone() {
        let video = Video { title: "On the server".into(), ..Video::default() };
        let want = NewVideo { language: Some("en".into()), ..NewVideo::default() };
        let update = update_for(&want, &video, &OWN);
        assert_eq!(update, VideoUpdate { language: Some("en".into()), ..VideoUpdate::default() });
    }
}
