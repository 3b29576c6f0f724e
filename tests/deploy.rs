//! The scheduler files in deploy/ (issue #7): the Slurm array script run as Slurm would run its
//! tasks, and the Kubernetes Indexed Job's shard count kept in step with its completions.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{pattern, spawn_server_with, KEY};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_7_the_slurm_array_script_runs_every_task_as_one_shard() {
    let server = spawn_server_with(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("path,title\n");
    let mut sources = Vec::new();
    for i in 0..10 {
        let data = pattern(30_000 + i, i as u8);
        std::fs::write(d.join(format!("{i}.mp4")), &data).unwrap();
        csv.push_str(&format!("{i}.mp4,v{i}\n"));
        sources.push(data);
    }
    let manifest = d.join("manifest.csv");
    std::fs::write(&manifest, csv).unwrap();
    let key_file = d.join("api-key");
    std::fs::write(&key_file, KEY).unwrap();

    // An array numbered 1-3, as `--array=1-3`; the key from a file, as the script documents.
    let tasks: Vec<_> = (1..=3)
        .map(|id| {
            Command::new("bash")
                .arg(repo("deploy/slurm/avbatch-array.sbatch"))
                .env("MANIFEST", &manifest)
                .env("AVBATCH", env!("CARGO_BIN_EXE_avbatch"))
                .env("AVBATCH_ARGS", format!("--base-url {} --chunk-size 5MiB -q", server.url))
                .env_remove("AVBATCH_API_KEY")
                .env("AVBATCH_API_KEY_FILE", &key_file)
                .env("SLURM_ARRAY_TASK_ID", id.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "3")
                .env("SLURM_ARRAY_TASK_MIN", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for t in tasks {
        let out = t.wait_with_output().unwrap();
        assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("the script logs JSON ({e}): {line}"));
        }
    }
    let merged = d.join("merged.json");
    let reports: Vec<PathBuf> = (0..3).map(|k| d.join(format!("manifest.shard-{k}-of-3.report.csv"))).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["report", "merge", "-o", merged.to_str().unwrap(), "--manifest", manifest.to_str().unwrap()])
        .args(&reports)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rep: Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    assert_eq!(rep["summary"]["uploaded"], 10);
    assert_eq!(server.all_videos().await.len(), 10);
    for (i, row) in rep["rows"].as_array().unwrap().iter().enumerate() {
        assert!(server.source_of(row["videoId"].as_str().unwrap()).await == sources[i]);
    }
}

#[test]
fn issue_7_the_kubernetes_job_counts_its_shards_like_its_completions() {
    let yaml = std::fs::read_to_string(repo("deploy/kubernetes/avbatch-indexed-job.yaml")).unwrap();
    let value_after = |needle: &str| -> String {
        let at = yaml.find(needle).unwrap_or_else(|| panic!("`{needle}` is in the Job"));
        yaml[at + needle.len()..].lines().next().unwrap().split('#').next().unwrap().trim().trim_matches('"').to_owned()
    };
    assert_eq!(value_after("completionMode:"), "Indexed");
    let completions = value_after("\n  completions:");
    let count = value_after("- name: AVBATCH_SHARD_COUNT\n              value:");
    assert_eq!(completions, count, "AVBATCH_SHARD_COUNT must equal completions");
    assert!(yaml.contains("secretKeyRef:") && yaml.contains("name: AVBATCH_API_KEY"), "the key comes from a Secret");
    assert!(yaml.contains("- upload") && yaml.contains("--log-format=json"));
}
