//! Issue #16: videos read from buckets and web servers through `avbatch_core::remote`, against a
//! real S3 server (moto, see `common/s3.rs`) and a small web server (`common/web.rs`), both on
//! 127.0.0.1.

use crate::common;

use std::future::Future;
use std::time::Duration;

use avbatch_core::remote::{Remote, RemoteError, RemoteKind, Stores};
use common::s3::{self, Moto};
use common::web::{web_server, WebObject};
use common::MIB;
use rand::RngCore;

/// Every test's bound, once its servers run.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(work: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, work).await.expect("the test finishes within its bound")
}

fn random(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn remote(stores: &Stores, url: &str) -> Remote {
    stores.parse(url).expect("a usable URL").expect("a URL, not a path")
}

/// moto with bucket `videos` and `bytes` at `videos/KEY`; returns the ETag moto gave it.
async fn moto_with(key: &str, bytes: Vec<u8>) -> (Moto, String) {
    let moto = s3::start();
    moto.create_bucket("videos").await;
    let etag = moto.put("videos", key, bytes).await;
    (moto, etag)
}

#[tokio::test]
async fn s3_head_gives_size_and_etag() {
    let (moto, etag) = moto_with("a/clip.mp4", random(12_345)).await;
    bounded(async {
        let stores = Stores::with_env(moto.env());
        let clip = remote(&stores, "s3://videos/a/clip.mp4");
        assert_eq!(clip.kind(), RemoteKind::S3);
        let info = clip.head().await.expect("head");
        assert_eq!(info.size, 12_345);
        assert_eq!(info.etag.as_deref(), Some(etag.as_str()));
        assert!(info.last_modified.is_some(), "S3 sends Last-Modified");
    })
    .await;
}

#[tokio::test]
async fn s3_ranges_read_byte_for_byte() {
    // Five whole MiB and an uneven tail.
    let bytes = random(5 * MIB + 777);
    let (moto, etag) = moto_with("big.mp4", bytes.clone()).await;
    bounded(async {
        let stores = Stores::with_env(moto.env());
        let big = remote(&stores, "s3://videos/big.mp4");
        let info = big.head().await.expect("head");
        assert_eq!(info.size, bytes.len() as u64);
        let mut read = Vec::new();
        for start in (0..info.size).step_by(MIB) {
            let end = (start + MIB as u64).min(info.size);
            let part = big.range(start..end, Some(&etag)).await.expect("range");
            assert_eq!(part.len() as u64, end - start);
            read.extend_from_slice(&part);
        }
        assert!(read == bytes, "the ranges put together are the object");
        let middle = big.range(1_000_001..1_000_011, None).await.expect("a small range");
        assert_eq!(&middle[..], &bytes[1_000_001..1_000_011]);
    })
    .await;
}

#[tokio::test]
async fn s3_object_replaced_after_head_is_changed() {
    let (moto, _) = moto_with("clip.mp4", random(4096)).await;
    bounded(async {
        let stores = Stores::with_env(moto.env());
        let clip = remote(&stores, "s3://videos/clip.mp4");
        let info = clip.head().await.expect("head");
        let first = clip.range(0..100, info.etag.as_deref()).await.expect("before");
        let replaced = random(4096);
        moto.put("videos", "clip.mp4", replaced.clone()).await;
        let err = clip.range(100..200, info.etag.as_deref()).await.expect_err("it changed");
        assert!(matches!(err, RemoteError::Changed), "{err:?}");
        assert!(err.to_string().contains("changed"), "{err}");
        // Without a version to hold to, the new object is read: the refusal was the ETag's.
        let now = clip.range(0..100, None).await.expect("no etag, no check");
        assert_eq!(&now[..], &replaced[..100]);
        assert_ne!(first, now);
    })
    .await;
}

#[tokio::test]
async fn s3_deleted_object_is_not_found() {
    let (moto, _) = moto_with("gone.mp4", random(100)).await;
    bounded(async {
        let stores = Stores::with_env(moto.env());
        let gone = remote(&stores, "s3://videos/gone.mp4");
        let info = gone.head().await.expect("there at first");
        moto.delete("videos", "gone.mp4").await;
        let err = gone.head().await.expect_err("deleted");
        assert!(matches!(err, RemoteError::NotFound), "{err:?}");
        let err = gone.range(0..10, info.etag.as_deref()).await.expect_err("deleted");
        assert!(matches!(err, RemoteError::NotFound), "{err:?}");
        let other = remote(&stores, "s3://no-such-bucket/x.mp4").head().await.expect_err("none");
        assert!(matches!(other, RemoteError::NotFound), "{other:?}");
    })
    .await;
}

#[tokio::test]
async fn s3_wrong_secret_is_denied_and_not_shown() {
    let (moto, _) = moto_with("clip.mp4", random(2048)).await;
    bounded(async {
        let (key_id, secret) = moto.check_credentials().await;
        let good = Stores::with_env(moto.env_with(&key_id, &secret));
        let info = remote(&good, "s3://videos/clip.mp4").head().await.expect("the right keys");
        assert_eq!(info.size, 2048);

        let wrong_secret = format!("{secret}-WRONG");
        let bad = Stores::with_env(moto.env_with(&key_id, &wrong_secret));
        let clip = remote(&bad, "s3://videos/clip.mp4");
        let err = clip.head().await.expect_err("a wrong secret");
        assert!(matches!(err, RemoteError::Denied(RemoteKind::S3, _)), "{err:?}");
        let err = clip.range(0..10, None).await.expect_err("a wrong secret");
        assert!(matches!(err, RemoteError::Denied(RemoteKind::S3, _)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
        assert!(!message.contains(&secret) && !message.contains(&wrong_secret), "{message}");
        assert!(!format!("{clip:?} {bad:?}").contains(&wrong_secret));
    })
    .await;
}

#[tokio::test]
async fn s3_pull_url_is_presigned_and_fetchable_without_keys() {
    let bytes = random(300_000);
    let (moto, _) = moto_with("dir/clip one.mp4", bytes.clone()).await;
    bounded(async {
        let stores = Stores::with_env(moto.env());
        let clip = remote(&stores, "s3://videos/dir/clip%20one.mp4");
        assert_eq!(clip.head().await.expect("head").size, bytes.len() as u64);
        let url = clip.pull_url(Duration::from_secs(600)).await.expect("presign");
        assert!(url.as_str().starts_with(&moto.endpoint), "{url}");
        let query = url.query().unwrap_or_default();
        assert!(query.contains("X-Amz-Signature=") && query.contains("X-Amz-Expires=600"));
        let fetched = reqwest::get(url.clone()).await.expect("GET the presigned URL");
        assert_eq!(fetched.status(), reqwest::StatusCode::OK);
        assert!(fetched.bytes().await.expect("the body")[..] == bytes[..]);

        // The presigned URL as a manifest row's path: an http source whose query is kept on
        // every request and never shown.
        let as_row = remote(&stores, url.as_str());
        assert_eq!(as_row.kind(), RemoteKind::Http);
        assert!(!as_row.shown().contains("Signature"), "{}", as_row.shown());
        assert_eq!(as_row.head().await.expect("head").size, bytes.len() as u64);
        let part = as_row.range(10..20, None).await.expect("range");
        assert_eq!(&part[..], &bytes[10..20]);
        assert_eq!(as_row.pull_url(Duration::from_secs(1)).await.unwrap(), url);
    })
    .await;
}

#[tokio::test]
async fn http_source_heads_reads_and_pulls_from_itself() {
    bounded(async {
        let bytes = random(3 * MIB + 5);
        let web = WebObject::new(bytes.clone(), None);
        let base = web_server(web.clone()).await;
        let stores = Stores::with_env([]);
        let text = format!("{base}/media/clip%20one.mp4");
        let clip = remote(&stores, &text);
        assert_eq!(clip.kind(), RemoteKind::Http);
        assert_eq!(clip.shown(), text);
        let info = clip.head().await.expect("head");
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(info.etag.as_deref(), Some("\"v1\""));
        assert_eq!(info.last_modified.map(|t| t.timestamp()), Some(1_445_412_480));
        let mut read = Vec::new();
        for start in (0..info.size).step_by(MIB) {
            let end = (start + MIB as u64).min(info.size);
            read.extend_from_slice(&clip.range(start..end, info.etag.as_deref()).await.unwrap());
        }
        assert!(read == bytes);
        assert_eq!(clip.pull_url(Duration::from_secs(60)).await.unwrap().as_str(), text);

        web.replace(random(10));
        let err = clip.range(0..5, info.etag.as_deref()).await.expect_err("replaced");
        assert!(matches!(err, RemoteError::Changed), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn http_source_keeps_its_query_and_hides_it() {
    bounded(async {
        let bytes = random(1000);
        let web = WebObject::new(bytes.clone(), Some("s3cr3t"));
        let base = web_server(web).await;
        let stores = Stores::with_env([]);
        let signed = remote(&stores, &format!("{base}/v.mp4?token=s3cr3t"));
        assert_eq!(signed.head().await.expect("head with the token").size, 1000);
        assert_eq!(&signed.range(5..9, None).await.expect("range")[..], &bytes[5..9]);
        assert!(!signed.shown().contains("s3cr3t"), "{}", signed.shown());

        let wrong = remote(&stores, &format!("{base}/v.mp4?token=guess"));
        let err = wrong.head().await.expect_err("a wrong token");
        assert!(matches!(err, RemoteError::Denied(RemoteKind::Http, _)), "{err:?}");
        assert!(!err.to_string().contains("guess"), "{err}");
        let missing = remote(&stores, &format!("{base}/v.mp4"));
        assert!(matches!(missing.head().await, Err(RemoteError::Denied(..))));
    })
    .await;
}

#[test]
fn paths_and_unusable_urls() {
    let stores = Stores::with_env([]);
    assert!(stores.parse("media/clip.mp4").unwrap().is_none());
    assert!(stores.parse(r"C:\media\clip.mp4").unwrap().is_none());
    let err = stores.parse("ftp://host/clip.mp4").expect_err("ftp");
    assert!(matches!(err, RemoteError::Unsupported(_)), "{err:?}");
}
