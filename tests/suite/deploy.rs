//! The scheduler files in deploy/ (issue #7): the Slurm array script run as Slurm would run its
//! tasks, and the Kubernetes Indexed Job's shard count kept in step with its completions; where
//! they keep journals, and memory limits that hold a 1 000 000-row manifest (issue #12).

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{pattern, spawn_server_with, KEY};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_slurm_array_script_runs_every_task_as_one_shard() {
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
                .env_remove("AVBATCH_JOURNAL_DIR")
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
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("the script logs JSON ({e}): {line}"));
        }
    }
    let merged = d.join("merged.json");
    let reports: Vec<PathBuf> =
        (0..3).map(|k| d.join(format!("manifest.shard-{k}-of-3.report.csv"))).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args([
            "report",
            "merge",
            "-o",
            merged.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ])
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
fn the_kubernetes_job_counts_its_shards_like_its_completions() {
    let yaml = std::fs::read_to_string(repo("deploy/kubernetes/avbatch-indexed-job.yaml")).unwrap();
    let value_after = |needle: &str| -> String {
        let at = yaml.find(needle).unwrap_or_else(|| panic!("`{needle}` is in the Job"));
        yaml[at + needle.len()..]
            .lines()
            .next()
            .unwrap()
            .split('#')
            .next()
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(value_after("completionMode:"), "Indexed");
    let completions = value_after("\n  completions:");
    let count = value_after("- name: AVBATCH_SHARD_COUNT\n              value:");
    assert_eq!(completions, count, "AVBATCH_SHARD_COUNT must equal completions");
    assert!(
        yaml.contains("secretKeyRef:") && yaml.contains("name: AVBATCH_API_KEY"),
        "the key comes from a Secret"
    );
    assert!(yaml.contains("- upload") && yaml.contains("--log-format=json"));
}

/// Runs the Slurm script as array task `id` of `count` (numbered from 0) and waits for it.
fn slurm_task(
    manifest: &Path,
    server_url: &str,
    key_file: &Path,
    id: u32,
    count: u32,
    env: &[(&str, &Path)],
) {
    let out = Command::new("bash")
        .arg(repo("deploy/slurm/avbatch-array.sbatch"))
        .env("MANIFEST", manifest)
        .env("AVBATCH", env!("CARGO_BIN_EXE_avbatch"))
        .env("AVBATCH_ARGS", format!("--base-url {server_url} --chunk-size 5MiB -q"))
        .env_remove("AVBATCH_API_KEY")
        .env_remove("AVBATCH_JOURNAL_DIR")
        .env("AVBATCH_API_KEY_FILE", key_file)
        .env("SLURM_ARRAY_TASK_ID", id.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "task {id}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slurm_tasks_keep_journals_on_the_node_when_asked_and_resume_elsewhere_by_key() {
    let server = spawn_server_with(|_| {}).await;
    let shared = tempfile::tempdir().unwrap();
    let d = shared.path();
    // Ids, not paths, decide the shards: without them a file's time would, and one task in 64
    // would get no row at all.
    let mut csv = String::from("id,path,title\n");
    for i in 0..6 {
        std::fs::write(d.join(format!("{i}.mp4")), pattern(20_000 + i, i as u8)).unwrap();
        csv.push_str(&format!("video-{i},{i}.mp4,v{i}\n"));
    }
    let manifest = d.join("manifest.csv");
    std::fs::write(&manifest, csv).unwrap();
    let key_file = d.join("api-key");
    std::fs::write(&key_file, KEY).unwrap();

    // Two tasks on one node: journals apart on the node, reports on the shared folder.
    let node = tempfile::tempdir().unwrap();
    for id in 0..2 {
        slurm_task(
            &manifest,
            &server.url,
            &key_file,
            id,
            2,
            &[("AVBATCH_JOURNAL_DIR", node.path())],
        );
    }
    for id in 0..2 {
        assert!(
            node.path().join(format!("manifest.task-{id}-of-2.journal.sqlite")).exists(),
            "task {id}'s journal is on the node"
        );
        assert!(
            d.join(format!("manifest.shard-{id}-of-2.report.csv")).exists(),
            "task {id}'s report is shared"
        );
    }
    let beside: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("journal"))
        .collect();
    assert!(beside.is_empty(), "no journal on the shared folder: {beside:?}");
    assert_eq!(server.all_videos().await.len(), 6);

    // Task 0 re-run on another node, with no journal: it finds every video it made by key.
    let before = server.server.received_bytes();
    let other_node = tempfile::tempdir().unwrap();
    slurm_task(
        &manifest,
        &server.url,
        &key_file,
        0,
        2,
        &[("AVBATCH_JOURNAL_DIR", other_node.path())],
    );
    assert_eq!(server.all_videos().await.len(), 6, "no duplicate");
    assert_eq!(server.server.received_bytes(), before, "nothing sent again");
    let report = std::fs::read_to_string(d.join("manifest.shard-0-of-2.report.csv")).unwrap();
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains(",skipped,")), "{report}");
}

/// A Kubernetes or Slurm memory quantity in bytes: `2Gi`, `1536Mi`, `2G` (Slurm's G is GiB).
fn bytes_of(quantity: &str) -> u64 {
    let (number, unit) =
        quantity.split_at(quantity.find(|c: char| !c.is_ascii_digit()).unwrap_or(quantity.len()));
    let scale = match unit {
        "Gi" | "G" => 1 << 30,
        "Mi" | "M" | "" => 1 << 20,
        other => panic!("unit `{other}` in `{quantity}`"),
    };
    number.parse::<u64>().unwrap() * scale
}

#[test]
fn the_recipes_memory_limits_hold_a_million_row_manifest() {
    let yaml = std::fs::read_to_string(repo("deploy/kubernetes/avbatch-indexed-job.yaml")).unwrap();
    let sbatch = std::fs::read_to_string(repo("deploy/slurm/avbatch-array.sbatch")).unwrap();
    let after = |text: &str, needle: &str| -> String {
        let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` is in the recipe"));
        text[at + needle.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
    };
    let kubernetes = bytes_of(&after(&yaml, "limits: { memory: \""));
    let slurm = bytes_of(&after(&sbatch, "\n#SBATCH --mem="));

    // The manifest of scripts/manifest-1m.sh: 1 000 000 rows over 1000 small files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("v")).unwrap();
    for i in 0..1000 {
        std::fs::write(dir.path().join(format!("v/{i:05}.mp4")), vec![b'x'; 1000 + i]).unwrap();
    }
    let manifest = dir.path().join("manifest.csv");
    let mut m = std::io::BufWriter::new(std::fs::File::create(&manifest).unwrap());
    writeln!(m, "path,id,title,tags,metadata,meta.source,public").unwrap();
    for r in 0..1_000_000 {
        writeln!(
            m,
            "v/{:05}.mp4,row-{r},\"Video {r}, take {}\",a;b,k=v;n={r},cam-{},yes",
            r % 1000,
            r % 7,
            r % 13
        )
        .unwrap();
    }
    m.into_inner().unwrap().sync_all().unwrap();

    let mut dry_run = Command::new(env!("CARGO_BIN_EXE_avbatch"));
    dry_run.args(["upload", manifest.to_str().unwrap(), "--dry-run", "--env", "local"]);
    let (code, kib) = common::peak_rss_kib(&dry_run, &dir.path().join("stderr"));
    assert_eq!(code, Some(0), "the dry run succeeds");
    let peak = kib * 1024;
    let _ = writeln!(
        std::io::stderr(),
        "issue 12: --dry-run of 1 000 000 rows peaked at {} MiB",
        peak >> 20
    );
    for (recipe, limit) in [("Kubernetes", kubernetes), ("Slurm", slurm)] {
        assert!(
            peak + peak / 4 <= limit,
            "{recipe}: {} MiB is not a quarter above the peak of {} MiB",
            limit >> 20,
            peak >> 20
        );
    }
}
