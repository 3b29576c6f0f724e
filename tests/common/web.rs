//! A small web server for sources given as `http://` URLs: one object at any path, with
//! `HEAD`, single byte ranges, an ETag that changes with the object, `If-Match`, and an optional
//! token in the query string.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// A web server with one object at any path, which wants `?token=TOKEN` when given one.
#[derive(Clone)]
pub struct WebObject {
    pub bytes: Arc<Mutex<(Vec<u8>, u32)>>,
    pub token: Option<&'static str>,
    /// `HEAD` requests answered.
    pub heads: Arc<AtomicUsize>,
    /// While set, a `GET` is answered 404 (a `HEAD` still finds the object): a URL that looks
    /// fine to avbatch and that api.video cannot fetch (expired, or not reachable from it).
    pub refuse_gets: Arc<AtomicBool>,
}

impl WebObject {
    /// `bytes` as version 1, wanting `token` when given one.
    pub fn new(bytes: Vec<u8>, token: Option<&'static str>) -> WebObject {
        WebObject {
            bytes: Arc::new(Mutex::new((bytes, 1))),
            token,
            heads: Arc::default(),
            refuse_gets: Arc::default(),
        }
    }

    /// `HEAD` requests answered so far.
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }

    pub fn etag(version: u32) -> String {
        format!("\"v{version}\"")
    }

    pub fn replace(&self, bytes: Vec<u8>) {
        let mut object = self.bytes.lock().unwrap();
        *object = (bytes, object.1 + 1);
    }
}

async fn serve_object(State(web): State<WebObject>, request: Request) -> Response {
    if request.method() == Method::HEAD {
        web.heads.fetch_add(1, Ordering::SeqCst);
    }
    if let Some(token) = web.token {
        if request.uri().query() != Some(&format!("token={token}")) {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    if request.method() == Method::GET && web.refuse_gets.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (bytes, version) = web.bytes.lock().unwrap().clone();
    let etag = WebObject::etag(version);
    let asked: &HeaderMap = request.headers();
    if asked.get(header::IF_MATCH).is_some_and(|m| m.as_bytes() != etag.as_bytes()) {
        return StatusCode::PRECONDITION_FAILED.into_response();
    }
    let total = bytes.len();
    let range = asked.get(header::RANGE).and_then(|r| {
        let (a, b) = r.to_str().ok()?.strip_prefix("bytes=")?.split_once('-')?;
        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?.min(total - 1)))
    });
    let (status, body, content_range) = match range {
        Some((a, b)) => {
            let content_range = format!("bytes {a}-{b}/{total}");
            (StatusCode::PARTIAL_CONTENT, bytes[a..=b].to_vec(), Some(content_range))
        }
        None => (StatusCode::OK, bytes, None),
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::ETAG, etag)
        .header(header::LAST_MODIFIED, "Wed, 21 Oct 2015 07:28:00 GMT")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(content_range) = content_range {
        response = response.header(header::CONTENT_RANGE, content_range);
    }
    let body = if request.method() == Method::HEAD { Vec::new() } else { body };
    response.body(axum::body::Body::from(body)).unwrap()
}

pub async fn web_server(web: WebObject) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("an address");
    let app = axum::Router::new().fallback(serve_object).with_state(web);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}
