//! `POST /videos/{id}/source` and `POST /upload?token=`: multipart framing around a `Bytes` body.
//!
//! The body is three pieces streamed in order — the preamble (boundary and part headers, plus a
//! `videoId` field for token uploads), the file bytes (slices of the memory map, never copied),
//! and the closing boundary — with an exact `Content-Length`, as both official clients send.

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use rand::RngCore;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

use std::sync::Arc;

use super::{ApiError, Call, Client, Watch};
use avbatch_api::secret::Token;
use avbatch_api::Bucket;

/// Where a chunk goes.
#[derive(Debug, Clone)]
pub enum UploadTarget {
    /// A video created with the API key.
    Video(String),
    /// Delegated upload with a token; `video_id` chains chunks after the first.
    Token {
        /// The upload token.
        token: Token,
        /// The video the first chunk created (or a video made with the API key).
        video_id: Option<String>,
    },
}

/// The multipart envelope of one request.
#[derive(Debug, Clone)]
pub struct Framing {
    boundary: String,
    preamble: Bytes,
    epilogue: Bytes,
}

/// A file name safe inside a quoted `filename="…"`: quotes and line breaks escaped as browsers do.
fn quoted_name(name: &str) -> String {
    name.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

impl Framing {
    /// Framing for a file part named `file` with `file_name`, after the given text fields.
    pub fn new(file_name: &str, fields: &[(&str, &str)]) -> Framing {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let boundary = format!("avbatch-{}", hex::encode(raw));
        let mut preamble = String::new();
        for (name, value) in fields {
            preamble.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                 {value}\r\n"
            ));
        }
        preamble.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            quoted_name(file_name)
        ));
        let epilogue = format!("\r\n--{boundary}--\r\n");
        Framing { boundary, preamble: Bytes::from(preamble), epilogue: Bytes::from(epilogue) }
    }

    /// `multipart/form-data; boundary=…`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The exact body length for a file part of `file_len` bytes.
    pub fn content_length(&self, file_len: u64) -> u64 {
        self.preamble.len() as u64 + file_len + self.epilogue.len() as u64
    }

    /// The body: preamble, then `file` (a stream of slices), then the closing boundary. Each
    /// slice the connection asks for tells `watch` that the one before it was taken, and the
    /// ask after the last one that the whole body was.
    pub(crate) fn body(
        &self,
        file: BoxStream<'static, Result<Bytes, std::io::Error>>,
        watch: Arc<Watch>,
    ) -> reqwest::Body {
        let head =
            stream::once(futures::future::ready(Ok::<_, std::io::Error>(self.preamble.clone())));
        let tail = stream::once(futures::future::ready(Ok(self.epilogue.clone())));
        let moving = watch.clone();
        let end = stream::once(async move { watch.finish_body() })
            .filter_map(|()| futures::future::ready(None));
        let taken = move |slice: &Result<Bytes, std::io::Error>| {
            moving.progress(slice.as_ref().map_or(0, |b| b.len() as u64))
        };
        reqwest::Body::wrap_stream(head.chain(file).chain(tail).inspect(taken).chain(end))
    }
}

/// What the server said to a chunk.
#[derive(Debug, Clone)]
pub struct ChunkAnswer {
    /// The video the chunk went to.
    pub video_id: String,
    /// Whether the answer was the full Video (the source is complete), not just `{videoId}`.
    pub complete: bool,
}

impl Client {
    /// Sends one chunk. `content_range` is the header value (`bytes a-b/t`, `part n/m`) or
    /// `None` for a single-request upload; `file` makes the body stream afresh for each attempt.
    pub async fn upload_chunk(
        &self,
        target: &UploadTarget,
        content_range: Option<&str>,
        file_name: &str,
        file_len: u64,
        file: &(dyn Fn() -> BoxStream<'static, Result<Bytes, std::io::Error>> + Send + Sync),
    ) -> Result<ChunkAnswer, ApiError> {
        // A chunk sent to a video is safe to send again (the server refuses what it holds); a
        // token chunk without a video makes one, so after a failure that may have taken effect
        // it is never sent blindly again.
        let (path, route, authenticated, fields) = match target {
            UploadTarget::Video(id) => {
                let p = format!("/videos/{id}/source");
                (p.clone(), p, true, Vec::new())
            }
            UploadTarget::Token { token, video_id } => {
                let q: String =
                    form_urlencoded::byte_serialize(token.expose().as_bytes()).collect();
                let fields =
                    video_id.iter().map(|v| ("videoId".to_owned(), v.clone())).collect::<Vec<_>>();
                (format!("/upload?token={q}"), "/upload".to_owned(), false, fields)
            }
        };
        let field_refs: Vec<(&str, &str)> =
            fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let framing = Framing::new(file_name, &field_refs);
        let length = framing.content_length(file_len);
        let creates = matches!(target, UploadTarget::Token { video_id: None, .. });
        let build = |r: reqwest::RequestBuilder, watch: &Arc<Watch>| {
            let mut r =
                r.header(CONTENT_TYPE, framing.content_type()).header(CONTENT_LENGTH, length);
            if let Some(range) = content_range {
                r = r.header(CONTENT_RANGE, range);
            }
            r.body(framing.body(file(), watch.clone()))
        };
        let call = Call {
            method: Method::POST,
            path,
            route,
            bucket: Some(Bucket::Uploads),
            authenticated,
            idempotent: !creates,
            body_len: length,
            build: &build,
        };
        let answer = self.execute(&call).await?;
        let answer: Value = self.json(&call, &answer)?;
        let video_id = answer
            .get("videoId")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Unexpected {
                site: Client::site(&call),
                what: "no `videoId` in the answer".into(),
            })?
            .to_owned();
        let complete = answer.as_object().is_some_and(|o| o.len() > 1);
        Ok(ChunkAnswer { video_id, complete })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_exact() {
        let f = Framing::new("a \"b\".mp4", &[("videoId", "vi1")]);
        let pre = String::from_utf8(f.preamble.to_vec()).unwrap();
        assert!(pre.starts_with(&format!(
            "--{}\r\nContent-Disposition: form-data; name=\"videoId\"\r\n\r\nvi1\r\n",
            f.boundary
        )));
        assert!(pre.ends_with(
            "filename=\"a %22b%22.mp4\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ));
        assert_eq!(f.epilogue, Bytes::from(format!("\r\n--{}--\r\n", f.boundary)));
        assert_eq!(f.content_length(10), (f.preamble.len() + 10 + f.epilogue.len()) as u64);
        assert!(f.content_type().ends_with(&f.boundary));
    }
}
