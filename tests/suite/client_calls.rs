//! The product's client against the double: each asset call (thumbnail upload and pick,
//! captions and chapters, downloads, metadata) over real HTTP, and what the double then holds.

use crate::common;

use avbatch_api::secret::ApiKey;
use avbatch_api::Metadata;
use avbatch_core::client::{Client, ClientConfig};
use common::{spawn_server_with, TestServer, KEY};
use serde_json::Value;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR a tiny png";
const VTT_EN: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello \xc3\xa9\n";
const VTT_FR: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n";

/// What the double keeps of a video.
fn record(s: &TestServer, id: &str) -> Value {
    let path = s.data.path().join("videos").join(id).join("video.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn get_raw(s: &TestServer, url: &str) -> Vec<u8> {
    s.http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec()
}

fn client(s: &TestServer) -> Client {
    Client::new(ClientConfig::new(&s.url, Some(ApiKey::new(KEY))))
}

#[tokio::test]
async fn client_calls_against_the_double() {
    let s = spawn_server_with(|_| {}).await;
    let c = client(&s);
    let id = s.create_video("client").await;

    c.upload_thumbnail(&id, bytes::Bytes::from_static(PNG), "cover.png", "image/png")
        .await
        .unwrap();
    let thumb = get_raw(&s, &format!("{}/vod/{id}/thumbnail.jpg", s.url)).await;
    assert_eq!(thumb, PNG);
    c.pick_thumbnail(&id, "00:00:01").await.unwrap();
    assert_eq!(record(&s, &id)["thumbnail"]["timecode"], "00:00:01");
    let err = c.pick_thumbnail(&id, "soon").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));

    let en = c.upload_caption(&id, "en", bytes::Bytes::from_static(VTT_EN)).await.unwrap();
    assert_eq!(
        (en.srclang.as_str(), en.language_name.as_deref(), en.default),
        ("en", Some("English"), false)
    );
    let got = c.download(&en.src, 1024).await.unwrap().unwrap();
    assert_eq!(got.as_ref(), VTT_EN);
    assert!(c.download(&en.src, VTT_EN.len() as u64 - 1).await.is_err(), "over max is an error");
    let missing = format!("{}/vod/{id}/captions/xx.vtt", s.url);
    assert!(c.download(&missing, 1024).await.unwrap().is_none());

    let fr = c.set_default_caption(&id, "en", true).await.unwrap();
    assert!(fr.default);
    assert!(c.delete_caption(&id, "en").await.unwrap());
    assert!(!c.delete_caption(&id, "en").await.unwrap(), "a second delete finds none");

    let ch = c.upload_chapter(&id, "fr", bytes::Bytes::from_static(VTT_FR)).await.unwrap();
    assert_eq!(ch.language, "fr");
    assert_eq!(c.download(&ch.src, 1024).await.unwrap().unwrap().as_ref(), VTT_FR);
    assert_eq!(c.chapters(&id).await.unwrap(), vec![ch]);
    assert!(c.delete_chapter(&id, "fr").await.unwrap());
    assert!(c.chapters(&id).await.unwrap().is_empty());

    // `captions()` reads every page: 101 tracks (of api.video's languages) need two pages of 100.
    let tags: Vec<String> =
        avbatch_api::caption_languages().iter().take(101).map(|l| l.tag.to_owned()).collect();
    for tag in &tags {
        c.upload_caption(&id, tag, bytes::Bytes::from(format!("WEBVTT\n\nNOTE {tag}\n")))
            .await
            .unwrap();
    }
    let all = c.captions(&id).await.unwrap();
    let mut want = tags.clone();
    want.sort();
    assert_eq!(all.iter().map(|c| c.srclang.clone()).collect::<Vec<_>>(), want);

    let v = c.video(&id).await.unwrap().unwrap();
    assert!(v.metadata.is_empty());
    let pairs = [Metadata { key: "k".into(), value: "v".into() }];
    c.set_metadata(&id, &pairs).await.unwrap();
    assert_eq!(c.video(&id).await.unwrap().unwrap().metadata, pairs);
}
