//! avbatch's own metadata keys (issue #25, point 2): a manifest that carries one (an export of
//! an account's metadata has them) would merge its rows into one video, so the check refuses it
//! by line and column; and a video that carries an import's pair beside the key avbatch wrote is
//! found by the key avbatch wrote. The real binary against an in-process double.

use crate::common;

use std::time::Duration;

use avbatch_core::manifest::id_key;
use common::batch::*;
use common::{spawn_server_with, upload_whole_at};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_that_sets_avbatch_s_own_keys_is_refused_by_line_and_column() {
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(3, |_| 1000);
    std::fs::write(
        batch.manifest(),
        "id,path,title,metadata,meta.avbatch_assets\n\
         row-0,f0.mp4,A,avbatch_key=imported,\n\
         row-1,f1.mp4,B,genre=doc,x\n\
         row-2,f2.mp4,C,avbatch_replaced_key=y;genre=doc,\n",
    )
    .unwrap();
    let done = run(batch.upload(&server.url, &[]), LIMIT).await;
    assert_eq!(done.code, Some(2), "{}", done.text());
    for (line, column, key) in [
        (2, "metadata", "avbatch_key"),
        (3, "meta.avbatch_assets", "avbatch_assets"),
        (4, "metadata", "avbatch_replaced_key"),
    ] {
        let said = format!("line {line}, column `{column}`: metadata key `{key}` is avbatch's own");
        assert!(done.stderr.contains(&said), "{said}\n{}", done.text());
    }
    assert!(server.all_videos().await.is_empty(), "nothing was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_carrying_an_imported_key_beside_avbatch_s_is_found_by_avbatch_s() {
    // As an earlier avbatch left it from such a manifest: the import's pair first, then its own.
    let server = spawn_server_with(|_| {}).await;
    let batch = Batch::new(1, |_| 1000);
    let metadata = json!([
        {"key": "avbatch_key", "value": "imported"},
        {"key": "avbatch_key", "value": id_key("row-0")},
    ]);
    let created =
        server.post_json("/videos", &json!({"title": "Fault video 0", "metadata": metadata})).await;
    let id = created["videoId"].as_str().unwrap().to_owned();
    upload_whole_at(&server.http, &server.url, &id, &batch.sources[0]).await;

    let done = run(batch.upload(&server.url, &["--no-journal"]), LIMIT).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let report = batch.read_report();
    assert_eq!(report["rows"][0]["videoId"], id.as_str(), "{report}");
    assert_eq!(server.all_videos().await.len(), 1, "no second video for the row");
}
