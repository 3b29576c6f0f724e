//! What a row's parts are read from: its file, memory-mapped, or its object in a bucket or on a
//! web server (issue #16), read range by range as each part goes out, so a relay holds no more
//! than a few of the pieces the store sends at once, whatever the object's size.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::{Ctx, SessionEnd};
use crate::chunk::MappedFile;
use crate::limit::Limiter;
use crate::manifest::Row;
use crate::remote::{Remote, RemoteError};

/// A row's bytes.
pub(super) enum Body {
    /// A local file.
    File(Arc<MappedFile>),
    /// An object, as the run found it.
    Object(Arc<Object>),
}

/// An object and the version of it the run sends.
pub(super) struct Object {
    pub remote: Remote,
    pub len: u64,
    pub etag: Option<String>,
}

impl Body {
    /// Bytes in all.
    pub fn len(&self) -> u64 {
        match self {
            Body::File(file) => file.len(),
            Body::Object(object) => object.len,
        }
    }

    /// The mapped file, for a local one.
    pub fn file(&self) -> Option<&Arc<MappedFile>> {
        match self {
            Body::File(file) => Some(file),
            Body::Object(_) => None,
        }
    }

    /// Hands the pages of `range` back to the kernel (a file's; an object holds none).
    pub fn release(&self, range: Range<u64>) {
        if let Body::File(file) = self {
            file.release(range);
        }
    }

    /// `file`, `relay` or `pull`: the report's `transfer`.
    pub fn transfer(&self, pulled: bool) -> &'static str {
        match (self, pulled) {
            (Body::File(_), _) => "file",
            (Body::Object(_), false) => "relay",
            (Body::Object(_), true) => "pull",
        }
    }
}

impl Object {
    /// The row's object as it is now: the one the manifest check saw (by its size), or the
    /// row fails before anything is sent.
    pub async fn open(ctx: &Ctx, row: &Row) -> Result<Object, SessionEnd> {
        let remote = match ctx.stores.parse(&row.path_text) {
            Ok(Some(remote)) => remote,
            Ok(None) => return Err(SessionEnd::failed("the row's `path` is not a URL")),
            Err(e) => return Err(SessionEnd::failed(format!("cannot read the row's URL: {e}"))),
        };
        let info = remote.head().await.map_err(|e| unusable(&remote, &e))?;
        if info.size != row.size {
            return Err(SessionEnd::failed(format!(
                "`{}` changed since the manifest was checked ({} bytes then, {} now); nothing \
                 was sent",
                remote.shown(),
                row.size,
                info.size
            )));
        }
        Ok(Object { remote, len: info.size, etag: info.etag })
    }

    /// Before a part: the object must still be the version the row started with. With a strong
    /// ETag the part's ranged read asks the store for that version itself (`If-Match`, and the
    /// answer's tag is compared), so the store is not asked here too: a HEAD a part saved.
    /// Without one (a web server may send none, or a weak one), its size is looked at again.
    pub async fn before_part(&self) -> Result<(), SessionEnd> {
        if self.etag.as_deref().is_some_and(|tag| !tag.starts_with("W/")) {
            return Ok(());
        }
        self.check().await
    }

    /// The object must still be the version the row started with: one HEAD. After a part
    /// failed, it tells an object gone or replaced from any other failure.
    pub async fn check(&self) -> Result<(), SessionEnd> {
        let info = self.remote.head().await.map_err(|e| unusable(&self.remote, &e))?;
        let same = info.size == self.len && (self.etag.is_none() || info.etag == self.etag);
        if same {
            Ok(())
        } else {
            Err(unusable(&self.remote, &RemoteError::Changed))
        }
    }

    /// The stream of bytes `range` for one attempt of a part: read from the store as the
    /// connection takes it, paced by the byte limiter. A store's error ends the body, so the
    /// server drops the part.
    pub fn stream(
        self: &Arc<Self>,
        range: Range<u64>,
        limiter: Arc<Limiter>,
    ) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        let object = self.clone();
        stream::once(async move {
            match object.remote.range_stream(range, object.etag.as_deref()).await {
                Ok(pieces) => pieces.map(|p| p.map_err(std::io::Error::other)).boxed(),
                Err(e) => stream::once(async move { Err(std::io::Error::other(e)) }).boxed(),
            }
        })
        .flatten()
        .then(move |piece| {
            let limiter = limiter.clone();
            async move {
                if let Ok(bytes) = &piece {
                    limiter.take_bytes(bytes.len() as u64).await;
                }
                piece
            }
        })
        .boxed()
    }
}

/// The row's end when its object cannot be read, with what to do about it.
fn unusable(remote: &Remote, e: &RemoteError) -> SessionEnd {
    SessionEnd::failed(format!("`{}`: {e}", remote.shown()))
}
