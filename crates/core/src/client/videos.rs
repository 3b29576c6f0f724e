//! The calls on videos: `POST /videos`, `GET /videos?metadata[…]`, `GET|PATCH|DELETE
//! /videos/{id}`, `GET /videos/{id}/status`.

use std::sync::Arc;

use reqwest::{Method, RequestBuilder};

use super::{no_body, ApiError, Call, Client, Watch};
use avbatch_api::{Bucket, Metadata, NewVideo, Page, Video, VideoStatus, VideoUpdate};

/// Pages of a metadata lookup read at most: 50 pages of 100 videos. A key is a fixed-length
/// digest, so more than a handful of videos under one key means something else is wrong.
const MAX_LOOKUP_PAGES: u32 = 50;

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// Creates a video. Not idempotent: after a failure that may have reached the server the
    /// error says so (`maybe_sent`), and the caller looks the video up before trying again.
    pub async fn create_video(&self, video: &NewVideo) -> Result<Video, ApiError> {
        let build = |r: RequestBuilder, _: &Arc<Watch>| r.json(video);
        let call = Call {
            method: Method::POST,
            path: "/videos".into(),
            route: "/videos".into(),
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: false,
            body_len: 0,
            build: &build,
        };
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }

    /// One page of 100 of every video, sorted by creation, oldest first (`newest_first`: the
    /// other way); with the number of pages there are.
    pub async fn videos_page(
        &self,
        page: u32,
        newest_first: bool,
    ) -> Result<(Vec<Video>, u32), ApiError> {
        let order = if newest_first { "desc" } else { "asc" };
        let call = Call::read(
            format!("/videos?sortBy=createdAt&sortOrder={order}&pageSize=100&currentPage={page}"),
            "/videos".into(),
        );
        let answer = self.execute(&call).await?;
        let listed: Page<Video> = self.json(&call, &answer)?;
        let pages = listed.pages(page, 100);
        Ok((listed.data, pages))
    }

    /// The videos whose metadata `key` is exactly `value`, oldest first (in the server's order).
    ///
    /// How api.video matches `metadata[KEY]=VALUE` is not documented (its `title` filter matches
    /// substrings), so every page the filter returns is read and only exact matches are kept.
    pub async fn find_by_metadata(&self, key: &str, value: &str) -> Result<Vec<Video>, ApiError> {
        let mut found = Vec::new();
        for page in 1..=MAX_LOOKUP_PAGES {
            let path = format!(
                "/videos?metadata%5B{}%5D={}&sortBy=createdAt&sortOrder=asc\
                 &pageSize=100&currentPage={page}",
                encode(key),
                encode(value)
            );
            let call = Call::read(path, "/videos".into());
            let answer = self.execute(&call).await?;
            let listed: Page<Video> = self.json(&call, &answer)?;
            let last = listed.is_last(page, 100);
            // Any pair of the video with this key and value: another pair under the same key
            // (an import's) does not hide avbatch's.
            let carries = |v: &Video| v.metadata_values(key).any(|held| held == value);
            found.extend(listed.data.into_iter().filter(carries));
            if last {
                break;
            }
        }
        Ok(found)
    }

    /// `GET /videos/{id}`; `None` when there is no such video.
    pub async fn video(&self, video_id: &str) -> Result<Option<Video>, ApiError> {
        let path = format!("/videos/{}", encode(video_id));
        let call = Call::read(path.clone(), path);
        match self.execute(&call).await {
            Ok(answer) => self.json(&call, &answer).map(Some),
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a video's metadata (`PATCH /videos/{id}` with `metadata` only: api.video
    /// replaces the whole list).
    pub async fn set_metadata(
        &self,
        video_id: &str,
        metadata: &[Metadata],
    ) -> Result<(), ApiError> {
        let update = VideoUpdate { metadata: Some(metadata.to_vec()), ..VideoUpdate::default() };
        self.update_video(video_id, &update).await.map(drop)
    }

    /// `PATCH /videos/{id}` with the members of `update`: the video as it now stands. Sent
    /// again after a failure: setting the same values twice leaves the same video.
    pub async fn update_video(
        &self,
        video_id: &str,
        update: &VideoUpdate,
    ) -> Result<Video, ApiError> {
        self.send_json(Method::PATCH, format!("/videos/{}", encode(video_id)), update).await
    }

    /// `DELETE /videos/{id}`; a video already gone counts as deleted.
    pub async fn delete_video(&self, video_id: &str) -> Result<(), ApiError> {
        let path = format!("/videos/{}", encode(video_id));
        let call = Call {
            method: Method::DELETE,
            route: path.clone(),
            path,
            bucket: Some(Bucket::Writes),
            authenticated: true,
            idempotent: true,
            body_len: 0,
            build: &no_body,
        };
        match self.execute(&call).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().map(|s| s.as_u16()) == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /videos/{id}/status`.
    pub async fn status(&self, video_id: &str) -> Result<VideoStatus, ApiError> {
        let path = format!("/videos/{}/status", encode(video_id));
        let call = Call::read(path.clone(), path);
        let answer = self.execute(&call).await?;
        self.json(&call, &answer)
    }
}
