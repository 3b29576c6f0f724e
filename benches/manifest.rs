//! How fast `manifest::load` validates a large manifest: 100,000 rows over a handful of real
//! files, so the time is parsing plus the parallel stat/open of every row.

use std::fmt::Write as _;
use std::fs;

use avbatch_core::manifest::{load, LoadOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: usize = 100_000;
const FILES: usize = 8;

fn bench_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..FILES {
        fs::write(dir.path().join(format!("v{i}.mp4")), b"not really a video")
            .expect("write a video");
    }
    let mut text = String::from("path,id,title,tags,metadata,meta.source,public,language\n");
    for row in 0..ROWS {
        let file = row % FILES;
        writeln!(
            text,
            "v{file}.mp4,id-{row},\"Video {row}, part {file}\",a;b,k=v;n={row},cam-{file},yes,en"
        )
        .expect("write to a String");
    }
    let manifest = dir.path().join("manifest.csv");
    fs::write(&manifest, &text).expect("write the manifest");

    let mut group = c.benchmark_group("manifest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("load_100k_rows", |b| {
        b.iter(|| {
            let loaded = load(&manifest, &LoadOptions::default()).expect("a valid manifest");
            assert_eq!(loaded.rows.len(), ROWS);
            loaded
        })
    });
    group.finish();
}

criterion_group!(benches, bench_load);
criterion_main!(benches);
