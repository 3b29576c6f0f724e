//! The per-part work of the upload path, without the network: cutting a file into parts,
//! slicing the map (zero-copy), and framing a part as multipart/form-data.

use std::io::Write;

use avbatch_core::chunk::{plan_parts, MappedFile};
use avbatch_core::client::upload::Framing;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MIB: u64 = 1024 * 1024;

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk");
    group.bench_function("plan_4GiB_in_200MiB_parts", |b| {
        b.iter(|| plan_parts(std::hint::black_box(4096 * MIB), 200 * MIB).unwrap())
    });
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("plan_10000_parts", |b| {
        b.iter(|| plan_parts(std::hint::black_box(10_000 * 5 * MIB), 5 * MIB).unwrap())
    });
    group.finish();
}

fn bench_slices(c: &mut Criterion) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&vec![7u8; (64 * MIB) as usize]).unwrap();
    let map = MappedFile::open(file.path()).unwrap();
    let plan = plan_parts(map.len(), 5 * MIB).unwrap();
    let mut group = c.benchmark_group("chunk");
    // Zero-copy: the cost is per part, not per byte.
    group.throughput(Throughput::Bytes(map.len()));
    group.bench_function("slice_64MiB_into_5MiB_parts", |b| {
        b.iter(|| plan.iter().map(|p| map.slice(p.range.clone()).len()).sum::<usize>())
    });
    group.bench_function("check_file_unchanged", |b| b.iter(|| map.check().unwrap()));
    group.finish();
}

fn bench_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("multipart");
    group.bench_function("frame_one_part", |b| {
        b.iter(|| {
            let f = Framing::new(std::hint::black_box("holiday 2024 (final).mp4"), &[]);
            (f.content_type(), f.content_length(200 * MIB))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_plan, bench_slices, bench_framing);
criterion_main!(benches);
