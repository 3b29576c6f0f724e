//! The video resource: what `POST /videos` accepts, what is kept, and the JSON sent back.
//!
//! Payloads are checked member by member from a `serde_json::Value`, so every problem gets the
//! api.video slug and the offending `name` (a derive would only say "invalid JSON").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use std::collections::{BTreeMap, BTreeSet};

use super::assets::{CaptionState, Thumbnail};
use super::problem::ApiError;
use super::pull::Ingest;
use avbatch_api::{
    clip_seconds, valid_placement, Clip, Metadata, SourceLink, Video, VideoAssets, Watermark,
    LANGUAGES, SUMMARY_ATTRIBUTES, WATERMARK_PLACEMENT,
};

/// A video as stored in `videos/{id}/video.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoRecord {
    /// `vi…` id.
    pub video_id: String,
    /// Creation order, to break ties between equal timestamps when sorting.
    pub seq: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was published (creation, here).
    pub published_at: DateTime<Utc>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata pairs, in the order given.
    pub metadata: Vec<Metadata>,
    /// Public playback.
    pub public: bool,
    /// 360° video.
    pub panoramic: bool,
    /// Whether an mp4 asset is offered.
    pub mp4_support: bool,
    /// Player theme.
    pub player_id: Option<String>,
    /// Spoken language.
    pub language: Option<String>,
    /// The creation `source` (a URL or video id to ingest from), kept as given.
    pub source: Option<String>,
    /// `clip` as given at creation.
    pub clip: Option<Clip>,
    /// `watermark` as given at creation.
    pub watermark: Option<Watermark>,
    /// Transcript requested.
    pub transcript: Option<bool>,
    /// Summary requested.
    pub transcript_summary: Option<bool>,
    /// Summary attributes.
    pub transcript_summary_attributes: Option<Vec<String>>,
    /// The thumbnail sent or picked ([`super::assets`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// Caption tracks by language.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captions: BTreeMap<String, CaptionState>,
    /// Languages with a chapters track.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub chapters: BTreeSet<String>,
    /// When the source became complete: the start of its (simulated) encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_completed_at: Option<DateTime<Utc>>,
    /// How far the creation `source` has been fetched or copied ([`super::pull`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
}

/// Collects every problem of a payload, as api.video lists them in `problems`.
#[derive(Default)]
struct Problems(Vec<ApiError>);

impl Problems {
    fn push(&mut self, e: ApiError) {
        self.0.push(e);
    }

    fn into_result(self) -> Result<(), ApiError> {
        let mut list = self.0.into_iter();
        let Some(first) = list.next() else { return Ok(()) };
        let all: Vec<Value> = std::iter::once(&first)
            .chain(list.as_slice())
            .map(|p| json!({"type": p.body()["type"], "title": p.title, "name": p.name}))
            .collect();
        Err(first.with("problems", Value::Array(all)))
    }
}

fn as_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_payload("the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid_payload(format!("the body is not valid JSON: {e}"))),
    }
}

fn must(problems: &mut Problems, name: &str, ok: bool, what: &str) -> bool {
    if !ok {
        problems.push(ApiError::invalid_attribute(name, format!("This attribute must be {what}.")));
    }
    ok
}

/// The members of a create or update payload, each checked.
#[derive(Default)]
struct Fields {
    title: Option<String>,
    description: Option<Option<String>>,
    tags: Option<Vec<String>>,
    metadata: Option<Vec<Metadata>>,
    public: Option<bool>,
    panoramic: Option<bool>,
    mp4_support: Option<bool>,
    player_id: Option<Option<String>>,
    language: Option<Option<String>>,
    source: Option<String>,
    clip: Option<Clip>,
    watermark: Option<Watermark>,
    transcript: Option<bool>,
    transcript_summary: Option<bool>,
    transcript_summary_attributes: Option<Vec<String>>,
}

fn string_list(problems: &mut Problems, name: &str, v: &Value) -> Option<Vec<String>> {
    let list = v.as_array().filter(|a| a.iter().all(Value::is_string));
    must(problems, name, list.is_some(), "an array of strings")
        .then(|| list.into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// A string member; `nullable` also takes `null` (as `Some(None)`).
fn string(
    problems: &mut Problems,
    name: &str,
    v: &Value,
    nullable: bool,
) -> Option<Option<String>> {
    let ok = v.is_string() || (nullable && v.is_null());
    must(problems, name, ok, if nullable { "a string or null" } else { "a string" })
        .then(|| v.as_str().map(str::to_owned))
}

/// Checks `clip`: each timecode as the spec's pattern allows, and the start before the end.
fn check_clip(p: &mut Problems, clip: &Value) -> bool {
    let mut ok = true;
    let mut seconds = [None, None];
    for (i, member) in ["startTimecode", "endTimecode"].into_iter().enumerate() {
        let Some(v) = clip.get(member) else { continue };
        let name = format!("clip.{member}");
        let parsed = v.as_str().and_then(clip_seconds);
        ok &= must(p, &name, parsed.is_some(), "a timecode like HH:MM:SS, HH:MM:SS.mmm or seconds");
        seconds[i] = parsed;
    }
    if let [Some(start), Some(end)] = seconds {
        ok &= must(p, "clip.endTimecode", start < end, "after clip.startTimecode");
    }
    ok
}

/// Checks `watermark`: an `id` naming an existing watermark, and placements with units.
fn check_watermark(p: &mut Problems, w: &Value, exists: &dyn Fn(&str) -> bool) -> bool {
    let mut ok = true;
    match w.get("id") {
        None => {
            ok = false;
            p.push(
                ApiError::bad_request("attribute-required", "This attribute is required.")
                    .name("watermark.id"),
            );
        }
        Some(id) => {
            if must(p, "watermark.id", id.is_string(), "a string") {
                let id = id.as_str().unwrap_or_default();
                ok &=
                    must(p, "watermark.id", exists(id), "the id of a watermark (POST /watermarks)");
            } else {
                ok = false;
            }
        }
    }
    for place in WATERMARK_PLACEMENT {
        let Some(v) = w.get(*place) else { continue };
        let name = format!("watermark.{place}");
        let what = match *place {
            "opacity" => "a percentage like 70%",
            "width" | "height" => "a length like 10px or 5%, or initial",
            _ => "a length like 10px or 5%",
        };
        ok &= must(p, &name, v.as_str().is_some_and(|s| valid_placement(place, s)), what);
    }
    ok
}

fn parse_fields(
    map: &Map<String, Value>,
    creating: bool,
    watermark_exists: &dyn Fn(&str) -> bool,
) -> Result<Fields, ApiError> {
    let mut p = Problems::default();
    let mut f = Fields::default();
    let boolean = |p: &mut Problems, name: &str, v: &Value| {
        must(p, name, v.is_boolean(), "a boolean").then(|| v.as_bool() == Some(true))
    };
    for (name, v) in map {
        match name.as_str() {
            "title" => f.title = string(&mut p, name, v, false).flatten(),
            "description" => f.description = string(&mut p, name, v, true),
            "tags" => f.tags = string_list(&mut p, name, v),
            "transcriptSummaryAttributes" => {
                if let Some(list) = string_list(&mut p, name, v) {
                    if must(
                        &mut p,
                        name,
                        list.iter().all(|a| SUMMARY_ATTRIBUTES.contains(&a.as_str())),
                        "a list of `abstract` or `takeaways`",
                    ) {
                        f.transcript_summary_attributes = Some(list);
                    }
                }
            }
            "metadata" => {
                let pairs = v.as_array().and_then(|a| {
                    a.iter()
                        .map(|m| {
                            let key = m.get("key")?.as_str()?;
                            let value = m.get("value")?.as_str()?;
                            Some(Metadata { key: key.to_owned(), value: value.to_owned() })
                        })
                        .collect::<Option<Vec<_>>>()
                });
                if must(
                    &mut p,
                    name,
                    pairs.is_some(),
                    "an array of {\"key\": string, \"value\": string} objects",
                ) {
                    f.metadata = pairs;
                }
            }
            "public" => f.public = boolean(&mut p, name, v),
            "panoramic" => f.panoramic = boolean(&mut p, name, v),
            "mp4Support" => f.mp4_support = boolean(&mut p, name, v),
            "transcript" => f.transcript = boolean(&mut p, name, v),
            "transcriptSummary" => f.transcript_summary = boolean(&mut p, name, v),
            "playerId" => f.player_id = string(&mut p, name, v, true),
            "language" => {
                let ok = v.is_null() || v.as_str().is_some_and(|l| LANGUAGES.contains(&l));
                if must(
                    &mut p,
                    name,
                    ok,
                    "one of the supported languages (ar, ca, cs, …, zh) or null",
                ) {
                    f.language = Some(v.as_str().map(str::to_owned));
                }
            }
            "source" if creating => f.source = string(&mut p, name, v, false).flatten(),
            "clip" if creating => {
                let object = must(&mut p, name, v.is_object(), "an object of timecodes");
                if object && check_clip(&mut p, v) {
                    f.clip = serde_json::from_value(v.clone()).ok();
                }
            }
            "watermark" if creating => {
                let ok = v.is_object();
                if must(&mut p, name, ok, "an object of string members (id, top, left, …)")
                    && check_watermark(&mut p, v, watermark_exists)
                {
                    f.watermark = serde_json::from_value(v.clone()).ok();
                }
            }
            // api.video ignores members it does not know; so does this server.
            _ => {}
        }
    }
    if creating && !map.contains_key("title") {
        p.push(
            ApiError::bad_request("attribute-required", "This attribute is required.")
                .name("title"),
        );
    }
    p.into_result().map(|()| f)
}

impl VideoRecord {
    /// Validates a `POST /videos` body and builds the record; any watermark id is taken.
    pub fn create(
        video_id: String,
        seq: u64,
        now: DateTime<Utc>,
        body: &[u8],
    ) -> Result<VideoRecord, ApiError> {
        Self::create_checked(video_id, seq, now, body, &|_| true)
    }

    /// Validates a `POST /videos` body and builds the record; `watermark_exists` tells whether
    /// a `watermark.id` names a watermark.
    pub fn create_checked(
        video_id: String,
        seq: u64,
        now: DateTime<Utc>,
        body: &[u8],
        watermark_exists: &dyn Fn(&str) -> bool,
    ) -> Result<VideoRecord, ApiError> {
        let f = parse_fields(&as_object(body)?, true, watermark_exists)?;
        Ok(VideoRecord {
            video_id,
            seq,
            created_at: now,
            updated_at: now,
            published_at: now,
            title: f.title.unwrap_or_default(),
            description: f.description.flatten().unwrap_or_default(),
            tags: f.tags.unwrap_or_default(),
            metadata: f.metadata.unwrap_or_default(),
            public: f.public.unwrap_or(true),
            panoramic: f.panoramic.unwrap_or(false),
            mp4_support: f.mp4_support.unwrap_or(true),
            player_id: f.player_id.flatten(),
            language: f.language.flatten(),
            source: f.source,
            clip: f.clip,
            watermark: f.watermark,
            transcript: f.transcript,
            transcript_summary: f.transcript_summary,
            transcript_summary_attributes: f.transcript_summary_attributes,
            thumbnail: None,
            captions: BTreeMap::new(),
            chapters: BTreeSet::new(),
            source_completed_at: None,
            ingest: None,
        })
    }

    /// A record for a video created by `POST /upload` from the file name.
    pub fn from_upload(
        video_id: String,
        seq: u64,
        now: DateTime<Utc>,
        title: String,
    ) -> VideoRecord {
        let mut record = VideoRecord::create(video_id, seq, now, b"{\"title\":\"\"}")
            .expect("a constant payload is valid");
        record.title = title;
        record
    }

    /// Applies a `PATCH /videos/{id}` body: members present replace the stored ones.
    pub fn update(&mut self, now: DateTime<Utc>, body: &[u8]) -> Result<(), ApiError> {
        let f = parse_fields(&as_object(body)?, false, &|_| true)?;
        if let Some(t) = f.title {
            self.title = t;
        }
        if let Some(d) = f.description {
            self.description = d.unwrap_or_default();
        }
        if let Some(t) = f.tags {
            self.tags = t;
        }
        if let Some(m) = f.metadata {
            self.metadata = m;
        }
        if let Some(b) = f.public {
            self.public = b;
        }
        if let Some(b) = f.panoramic {
            self.panoramic = b;
        }
        if let Some(b) = f.mp4_support {
            self.mp4_support = b;
        }
        if let Some(p) = f.player_id {
            self.player_id = p;
        }
        if let Some(l) = f.language {
            self.language = l;
        }
        if f.transcript.is_some() {
            self.transcript = f.transcript;
        }
        if f.transcript_summary.is_some() {
            self.transcript_summary = f.transcript_summary;
        }
        if f.transcript_summary_attributes.is_some() {
            self.transcript_summary_attributes = f.transcript_summary_attributes;
        }
        self.updated_at = now;
        Ok(())
    }

    /// The Video api.video sends; `base` is the server's public URL for asset links. A private
    /// video's links carry `private_token` as api.video's do: in the player's query, as a path
    /// segment of the media ([`crate::private`]).
    pub fn to_video(&self, base: &str, private_token: Option<&str>) -> Video {
        let id = &self.video_id;
        let (player, media) = match private_token {
            Some(t) => (format!("{base}/vod/{id}?token={t}"), format!("{base}/vod/{id}/token/{t}")),
            None => (format!("{base}/vod/{id}"), format!("{base}/vod/{id}")),
        };
        let iframe = format!(
            "<iframe src=\"{player}\" width=\"100%\" height=\"100%\" frameborder=\"0\" \
             scrolling=\"no\" allowfullscreen=\"\"></iframe>"
        );
        let assets = VideoAssets {
            hls: None,
            iframe: Some(iframe),
            player: Some(player),
            thumbnail: self.thumbnail.as_ref().map(|_| format!("{media}/thumbnail.jpg")),
            mp4: self.mp4_support.then(|| format!("{media}/mp4/source.mp4")),
        };
        Video {
            video_id: id.clone(),
            created_at: Some(self.created_at),
            updated_at: Some(self.updated_at),
            published_at: Some(self.published_at),
            title: self.title.clone(),
            description: Some(self.description.clone()),
            tags: Some(self.tags.clone()),
            metadata: self.metadata.clone(),
            public: Some(self.public),
            panoramic: Some(self.panoramic),
            mp4_support: Some(self.mp4_support),
            player_id: self.player_id.clone(),
            language: self.language.clone(),
            language_origin: self.language.as_ref().map(|_| "api".to_owned()),
            discarded: false,
            discarded_at: None,
            deletes_at: None,
            source: Some(Box::new(SourceLink { uri: format!("/videos/{id}/source") })),
            assets: Some(Box::new(assets)),
            // Members api.video does not echo in its Video schema are returned only when they
            // were given, so strict client models never meet a member they do not know unasked.
            clip: self.clip.clone().map(Box::new),
            watermark: self.watermark.clone().map(Box::new),
            transcript: self.transcript,
            transcript_summary: self.transcript_summary,
            transcript_summary_attributes: self.transcript_summary_attributes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<VideoRecord, ApiError> {
        VideoRecord::create("viTEST".into(), 1, Utc::now(), body.as_bytes())
    }

    #[test]
    fn defaults_and_round_trip() {
        let v = create(concat!(
            r#"{"title":"t","tags":["a"],"metadata":[{"key":"k","value":"v"}],"language":"fr","#,
            r#""clip":{"startTimecode":"00:00:01"}}"#,
        ))
        .unwrap();
        let j = serde_json::to_value(v.to_video("http://h", None)).unwrap();
        assert_eq!(j["public"], true);
        assert_eq!(j["mp4Support"], true);
        assert_eq!(j["panoramic"], false);
        assert_eq!(j["metadata"][0]["key"], "k");
        assert_eq!(j["languageOrigin"], "api");
        assert_eq!(j["assets"]["mp4"], "http://h/vod/viTEST/mp4/source.mp4");
        assert_eq!(j["clip"]["startTimecode"], "00:00:01");
        assert!(j.get("playerId").is_none());
        assert!(j["createdAt"].as_str().unwrap().ends_with("+00:00"));
        let j = serde_json::to_value(v.to_video("http://h", Some("t-1"))).unwrap();
        assert_eq!(j["assets"]["mp4"], "http://h/vod/viTEST/token/t-1/mp4/source.mp4");
        assert_eq!(j["assets"]["player"], "http://h/vod/viTEST?token=t-1");
        assert!(j["assets"]["iframe"]
            .as_str()
            .unwrap()
            .contains("src=\"http://h/vod/viTEST?token=t-1\""));
    }

    #[test]
    fn validation_names_the_member() {
        let e = create(r#"{"description":"x"}"#).unwrap_err();
        assert_eq!((e.slug, e.name.as_deref()), ("attribute-required", Some("title")));
        let e = create(r#"{"title":"t","tags":"a"}"#).unwrap_err();
        assert_eq!((e.slug, e.name.as_deref()), ("invalid-attribute", Some("tags")));
        let e = create(r#"{"title":"t","language":"xx"}"#).unwrap_err();
        assert_eq!(e.name.as_deref(), Some("language"));
        assert_eq!(create("nope").unwrap_err().slug, "invalid-payload");
        let e = create(r#"{"tags":1,"public":"yes"}"#).unwrap_err();
        assert_eq!(e.body()["problems"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn update_replaces_and_detaches() {
        let mut v = create(r#"{"title":"t","tags":["a","b"],"playerId":"pl1"}"#).unwrap();
        v.update(Utc::now(), br#"{"tags":["c"],"playerId":null,"title":"u"}"#).unwrap();
        assert_eq!(v.tags, vec!["c"]);
        assert_eq!(v.player_id, None);
        assert_eq!(v.title, "u");
        assert!(v.update(Utc::now(), br#"{"public":3}"#).is_err());
    }
}
