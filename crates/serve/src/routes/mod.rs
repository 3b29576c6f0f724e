//! The route table and what the handlers share: JSON answers, pagination, blocking calls.

mod assets;
mod auth;
mod images;
mod source;
mod tokens;
mod tracks;
mod videos;

use std::sync::Arc;

use avbatch_api::{Page, PageLink, Pagination};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::problem::ApiError;
use super::App;

/// Every route of the server.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/auth/api-key", post(auth::api_key))
        .route("/auth/refresh", post(auth::refresh))
        .route("/videos", get(videos::list).post(videos::create))
        .route("/videos/{video_id}", get(videos::get).patch(videos::update).delete(videos::delete))
        .route("/videos/{video_id}/status", get(videos::status))
        .route("/videos/{video_id}/source", post(source::upload_source))
        .route("/upload", post(source::upload_with_token))
        .route("/upload-tokens", get(tokens::list).post(tokens::create))
        .route("/upload-tokens/{token}", get(tokens::get).delete(tokens::delete))
        .route("/vod/{video_id}", get(assets::player))
        .route("/vod/{video_id}/mp4/source.mp4", get(assets::mp4))
        .route("/vod/{video_id}/thumbnail.jpg", get(assets::thumbnail))
        .route("/vod/{video_id}/token/{token}/mp4/source.mp4", get(assets::private_mp4))
        .route("/vod/{video_id}/token/{token}/thumbnail.jpg", get(assets::private_thumbnail))
        .route("/vod/{video_id}/token/{token}/session", get(assets::session))
        .route("/vod/{video_id}/captions/{file}", get(assets::caption))
        .route("/vod/{video_id}/chapters/{file}", get(assets::chapters))
        .route(
            "/videos/{video_id}/thumbnail",
            post(images::upload_thumbnail).patch(images::pick_thumbnail),
        )
        .route("/videos/{video_id}/captions", get(tracks::list_captions))
        .route(
            "/videos/{video_id}/captions/{language}",
            get(tracks::get_caption)
                .post(tracks::upload_caption)
                .patch(tracks::update_caption)
                .delete(tracks::delete_caption),
        )
        .route("/videos/{video_id}/chapters", get(tracks::list_chapters))
        .route(
            "/videos/{video_id}/chapters/{language}",
            get(tracks::get_chapter).post(tracks::upload_chapter).delete(tracks::delete_chapter),
        )
        .route("/watermarks", get(images::list_watermarks).post(images::create_watermark))
        .route("/watermarks/{watermark_id}", delete(images::delete_watermark))
        .fallback(unrecognized)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn unrecognized() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unrecognized-request-url", "Unrecognized request URL.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method is not allowed for this route.",
    )
}

/// A JSON answer with `status`.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut resp = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Runs blocking disk work off the runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("a storage task failed", e))?
}

/// The query string as (name, value) pairs, in order.
/// A JSON body read as the contract's `T`, or the problem api.video answers when it cannot be:
/// `invalid-payload` for a body that is not a JSON object, `attribute-required` when `member`
/// (each payload read this way has that one member) is missing or null and `T` needs it, else
/// `invalid-attribute` naming `member`, with `rule`.
pub(crate) fn payload<T: DeserializeOwned>(
    body: &[u8],
    member: &str,
    rule: &str,
) -> Result<T, ApiError> {
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ApiError::invalid_payload("the body must be a JSON object")),
        Err(e) => {
            return Err(ApiError::invalid_payload(format!("the body is not valid JSON: {e}")))
        }
    };
    let given = map.get(member).is_some_and(|v| !v.is_null());
    serde_json::from_value(Value::Object(map)).map_err(|_| match given {
        true => ApiError::invalid_attribute(member, rule),
        false => {
            ApiError::bad_request("attribute-required", "This attribute is required.").name(member)
        }
    })
}

pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

/// `currentPage` and `pageSize` from the query, checked as api.video does.
pub(crate) fn page_params(pairs: &[(String, String)]) -> Result<(usize, usize), ApiError> {
    let mut page = 1;
    let mut size = 25;
    for (k, v) in pairs {
        let out_of_range = |name: &str, min: usize, max: Option<usize>| {
            let mut range = json!({"min": min});
            if let Some(max) = max {
                range["max"] = json!(max);
            }
            ApiError::bad_request(
                "invalid-query-parameter",
                "This parameter is out of the allowed range of values.",
            )
            .name(name)
            .with("range", range)
        };
        match k.as_str() {
            "currentPage" => {
                page = v
                    .parse()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| out_of_range("currentPage", 1, None))?
            }
            "pageSize" => {
                size = v
                    .parse()
                    .ok()
                    .filter(|s| (1..=100).contains(s))
                    .ok_or_else(|| out_of_range("pageSize", 1, Some(100)))?
            }
            _ => {}
        }
    }
    Ok((page, size))
}

/// The `{data, pagination}` envelope for one page of `items`. `path` and `keep` (query pairs other
/// than the paging ones) build the links.
pub(crate) fn paginate<T, U>(
    items: &[T],
    page: usize,
    size: usize,
    path: &str,
    keep: &[(String, String)],
    render: impl Fn(&T) -> U,
) -> Page<U> {
    let total = items.len();
    let pages = total.div_ceil(size).max(1);
    // Only the page is rendered: a list over thousands of items answers in the time of one page.
    let data: Vec<U> =
        items.iter().skip((page - 1).saturating_mul(size)).take(size).map(render).collect();
    let link = |rel: &str, p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in keep.iter().filter(|(k, _)| k != "currentPage" && k != "pageSize") {
            q.append_pair(k, v);
        }
        q.append_pair("currentPage", &p.to_string());
        q.append_pair("pageSize", &size.to_string());
        PageLink { rel: rel.to_owned(), uri: format!("{path}?{}", q.finish()) }
    };
    let mut links = vec![link("self", page), link("first", 1)];
    if page > 1 {
        links.push(link("previous", (page - 1).min(pages)));
    }
    if page < pages {
        links.push(link("next", page + 1));
    }
    links.push(link("last", pages));
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let pagination = Pagination {
        current_page: Some(count(page)),
        page_size: Some(count(size)),
        pages_total: Some(count(pages)),
        items_total: Some(total as u64),
        current_page_items: Some(count(data.len())),
        links,
    };
    Page { data, pagination: Some(pagination) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn pagination_links() {
        let items: Vec<Value> = (0..11).map(|i| json!(i)).collect();
        let page =
            paginate(&items, 2, 5, "/videos", &[("title".into(), "a b".into())], Value::clone);
        let page = serde_json::to_value(page).unwrap();
        assert_eq!(page["data"], json!([5, 6, 7, 8, 9]));
        let p = &page["pagination"];
        assert_eq!(
            (p["pagesTotal"].as_u64(), p["itemsTotal"].as_u64(), p["currentPageItems"].as_u64()),
            (Some(3), Some(11), Some(5))
        );
        let rels: Vec<&str> =
            p["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
        assert_eq!(rels, ["self", "first", "previous", "next", "last"]);
        assert_eq!(p["links"][4]["uri"], "/videos?title=a+b&currentPage=3&pageSize=5");
    }

    #[test]
    fn page_bounds() {
        let q = |s: &str| form_urlencoded::parse(s.as_bytes()).into_owned().collect::<Vec<_>>();
        assert_eq!(page_params(&q("")).unwrap(), (1, 25));
        assert_eq!(page_params(&q("pageSize=100&currentPage=3")).unwrap(), (3, 100));
        for bad in ["pageSize=0", "pageSize=101", "currentPage=0", "currentPage=x"] {
            assert_eq!(page_params(&q(bad)).unwrap_err().slug, "invalid-query-parameter", "{bad}");
        }
    }
}
