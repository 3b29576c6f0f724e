//! One upload request cannot fill the double's memory with text fields (issue #11, item 18): a
//! multipart body may carry at most 16 text fields besides the file, 64 KiB of them in all; past
//! either bound the request is refused with `400 invalid-attribute` while the rest of the body is
//! read and dropped. The binary's peak memory under such bodies: `server_multipart_bounds`.

use avbatch_serve::testing::{
    multipart, pattern, post_upload_at as post_upload, spawn_server,
    upload_token_at as upload_token,
};

#[tokio::test]
async fn text_fields_are_bounded_in_number_and_size_and_a_normal_upload_still_works() {
    let s = spawn_server().await;
    let token = upload_token(&s.http, &s.url).await;
    let data = pattern(1000, 3);

    // A normal delegated upload into an existing video: the `videoId` field is read.
    let id = s.create_video("target").await;
    let (ct, body) = multipart(&[("videoId", &id)], Some(("file", "clip.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["videoId"], id.as_str(), "the chunk went to the video named by the field");
    assert!(s.source_of(&id).await == data);

    // 16 text fields (the bound) pass; the 17th is refused, and no video is made.
    let names: Vec<String> = (0..17).map(|i| format!("extra{i}")).collect();
    let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    let (ct, body) = multipart(&fields[..16], Some(("file", "sixteen.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "16 text fields are allowed: {video}");
    let before = s.all_videos().await.len();
    let (ct, body) = multipart(&fields, Some(("file", "seventeen.mp4", &data)), &[]);
    let (status, problem) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 400, "17 text fields: {problem}");
    assert_eq!(problem["type"], "https://docs.api.video/reference/invalid-attribute", "{problem}");
    assert_eq!(problem["name"], "extra16", "the field past the bound is named: {problem}");

    // 64 KiB of values in all: one field of exactly 64 KiB passes, one more byte anywhere does not.
    let full = "v".repeat(64 * 1024);
    let (ct, body) = multipart(&[("note", &full)], Some(("file", "full.mp4", &data)), &[]);
    let (status, video) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 201, "64 KiB of text is allowed: {video}");
    let half = "v".repeat(32 * 1024);
    let (ct, body) =
        multipart(&[("a", &half), ("b", &half)], Some(("file", "over.mp4", &data)), &[("c", "1")]);
    let (status, problem) = post_upload(&s.http, &s.url, &token, ct, body.into()).await;
    assert_eq!(status, 400, "64 KiB + 1 byte of text: {problem}");
    assert_eq!(problem["type"], "https://docs.api.video/reference/invalid-attribute", "{problem}");
    assert_eq!(problem["name"], "c", "{problem}");
    assert_eq!(
        s.all_videos().await.len(),
        before + 1,
        "only the 64 KiB upload made a video; the refused ones made none"
    );

    // The same bounds on `POST /videos/{id}/source`, where text fields are ignored.
    let id = s.create_video("direct").await;
    let (ct, body) = multipart(&fields, Some(("file", "direct.mp4", &data)), &[]);
    let resp = s
        .http
        .post(format!("{}/videos/{id}/source", s.url))
        .header("Authorization", s.basic())
        .header("Content-Type", ct)
        .body(body);
    let resp = resp.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(s.status_of(&id).await["ingest"].get("status"), None, "nothing was stored");
}
