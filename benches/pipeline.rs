//! Criterion benches of the capture pipeline: content-defined chunking with the file and dump
//! parameters, SHA-256 + zstd per chunk at each stream's level (code-like text and
//! incompressible media), and whole snapshots (first and repeat) of a generated Drupal-like
//! tree through the library; and of the restore path: reading and verifying every chunk of a
//! snapshot's platform tree, writing the tree into a new folder (`write_tree`: folders, files
//! and their metadata, no sync), and `restore --target` whole (written, made durable, renamed).
//!
//! `cargo bench --features bench --bench pipeline` (env `SITESNAP_BENCH_SCALE`, default 0.02: about 1,000 files
//! and 16 MB, so a run stays in minutes on two cores). The end-to-end comparison with restic
//! and tar is `benches/compare.sh`.

#[path = "common/tree_gen.rs"]
mod tree_gen;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sitesnap::capture::{self, CaptureOpts};
use sitesnap::hash::Hash;
use sitesnap::read;
use sitesnap::repo::Repo;
use sitesnap::restore;
use sitesnap::site::{self, SiteSpec};
use sitesnap::store::{
    ChunkParams, DUMP_CHUNKS, DUMP_ROW_CHUNKS, FILE_CHUNKS, SQLITE_CHUNKS, cut_bytes, stream_chunks,
};
use sitesnap::tree::Kind;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// 32 MiB of mixed content: code-like text files concatenated, then incompressible noise.
fn sample(text: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("p");
    if text {
        tree_gen::generate(&root, 7, 0.05);
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let e = e.expect("walk");
            let p = e.path();
            let is_media = p.to_string_lossy().contains("/files/");
            if e.file_type().is_file() && !is_media {
                out.extend(std::fs::read(p).expect("read"));
            }
            if out.len() >= 32 << 20 {
                break;
            }
        }
        out.truncate(32 << 20);
        out
    } else {
        let mut out = Vec::new();
        tree_gen::Rng::new(9).fill_noise(&mut out, 32 << 20);
        out
    }
}

/// About 32 MiB of a MariaDB-style dump: extended INSERTs with one row per line, rows of
/// about 240 bytes with hex digests in them (like `benches/dump_dedup.sh`'s table).
fn sql_sample() -> Vec<u8> {
    let mut out = Vec::with_capacity(33 << 20);
    let mut id = 0u64;
    while out.len() < 32 << 20 {
        out.extend_from_slice(b"INSERT INTO `big` VALUES ");
        for _ in 0..2000 {
            id += 1;
            let h = Hash::of(&id.to_le_bytes()).to_string();
            let row = format!(
                "({id},'Article {id} about {}','Lorem ipsum dolor sit amet {} consectetur {} \
                 adipiscing elit, sed do eiusmod tempor {}',0x{},{},{}),\n",
                &h[..6],
                &h[6..38],
                &h[20..60],
                id % 977,
                &h[40..56],
                1_600_000_000 + id,
                1_600_000_000 + 2 * id
            );
            out.extend_from_slice(row.as_bytes());
        }
        out.extend_from_slice(b"(0,'','',NULL,0,0);\n");
    }
    out
}

fn chunks_of(data: &[u8], p: ChunkParams) -> Vec<(usize, usize)> {
    cut_bytes(data, p).collect()
}

fn bench_chunking(c: &mut Criterion) {
    let text = sample(true);
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(text.len() as u64));
    for (name, p) in [("file", FILE_CHUNKS), ("sqlite", SQLITE_CHUNKS)] {
        g.bench_with_input(BenchmarkId::new("fastcdc", name), &p, |b, p| {
            b.iter(|| {
                fastcdc::v2020::FastCDC::new(black_box(&text[..]), p.min, p.avg, p.max).count()
            })
        });
    }
    g.finish();
    // The dump chunker on an SQL dump: FastCDC as before, row-aligned cuts in memory, and
    // streaming (what a dump from mariadb-dump goes through).
    let sql = sql_sample();
    let mut g = c.benchmark_group("dump-chunker");
    g.throughput(Throughput::Bytes(sql.len() as u64));
    g.bench_with_input(
        BenchmarkId::new("fastcdc", "2K/8K/64K"),
        &SQLITE_CHUNKS,
        |b, p| {
            b.iter(|| {
                fastcdc::v2020::FastCDC::new(black_box(&sql[..]), p.min, p.avg, p.max).count()
            })
        },
    );
    g.bench_with_input(
        BenchmarkId::new("rows", "in-memory"),
        &DUMP_ROW_CHUNKS,
        |b, p| b.iter(|| cut_bytes(black_box(&sql[..]), *p).count()),
    );
    g.bench_with_input(
        BenchmarkId::new("rows", "stream"),
        &DUMP_ROW_CHUNKS,
        |b, p| b.iter(|| stream_chunks(black_box(&sql[..]), *p).count()),
    );
    g.finish();
}

fn bench_hash_compress(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256+zstd");
    for (kind, data) in [("text", sample(true)), ("media", sample(false))] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        for (pname, p) in [
            ("file", FILE_CHUNKS),
            ("sqlite", SQLITE_CHUNKS),
            ("dump", DUMP_CHUNKS),
        ] {
            let cuts = chunks_of(&data, p);
            g.bench_function(
                BenchmarkId::new(kind, format!("{pname}-zstd{}", p.level)),
                |b| {
                    b.iter(|| {
                        let mut n = 0;
                        for &(o, l) in &cuts {
                            let chunk = &data[o..o + l];
                            black_box(Hash::of(chunk));
                            n += zstd::bulk::compress(chunk, p.level).expect("zstd").len();
                        }
                        n
                    })
                },
            );
        }
        g.bench_function(BenchmarkId::new(kind, "sha256-only"), |b| {
            b.iter(|| Hash::of(black_box(&data)))
        });
    }
    g.finish();
}

fn new_repo(dir: &Path, platform: &Path) -> (Repo, sitesnap::catalog::SiteRecord) {
    let repo = Repo::init(&dir.join("repo"), None).expect("init");
    let spec = SiteSpec {
        platform: Some(platform.to_path_buf()),
        ..Default::default()
    };
    let rec = site::new_site(tree_gen::SITE_URI, &spec).expect("site");
    repo.cat.add_site(&rec).expect("add site");
    (repo, rec)
}

fn bench_snapshot(c: &mut Criterion) {
    let scale: f64 = std::env::var("SITESNAP_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.02);
    let world = tempfile::tempdir().expect("tempdir");
    let platform = world.path().join("platform");
    let stats = tree_gen::generate(&platform, 42, scale);
    let platform = std::fs::canonicalize(&platform).expect("canonical");
    let opts = CaptureOpts::new(sitesnap::catalog::SnapshotKind::Manual);
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(stats.bytes));
    let label = format!("{}files-{}MB", stats.files, stats.bytes / 1_000_000);
    g.bench_function(BenchmarkId::new("first", &label), |b| {
        b.iter_with_setup(
            || tempfile::tempdir_in(world.path()).expect("tempdir"),
            |dir| {
                let (repo, rec) = new_repo(dir.path(), &platform);
                let s = capture::snapshot(&repo, &rec, &platform, &opts).expect("snapshot");
                assert_eq!(s.bytes_read, stats.bytes);
                dir
            },
        )
    });
    let dir = tempfile::tempdir_in(world.path()).expect("tempdir");
    let (repo, rec) = new_repo(dir.path(), &platform);
    capture::snapshot(&repo, &rec, &platform, &opts).expect("snapshot");
    g.bench_function(BenchmarkId::new("repeat", &label), |b| {
        b.iter(|| {
            let s = capture::snapshot(&repo, &rec, &platform, &opts).expect("snapshot");
            assert_eq!(s.bytes_read, 0);
            s
        })
    });
    g.finish();
}

fn bench_restore(c: &mut Criterion) {
    let scale: f64 = std::env::var("SITESNAP_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.02);
    let world = tempfile::tempdir().expect("tempdir");
    let platform = world.path().join("platform");
    let stats = tree_gen::generate(&platform, 42, scale);
    let platform = std::fs::canonicalize(&platform).expect("canonical");
    let opts = CaptureOpts::new(sitesnap::catalog::SnapshotKind::Manual);
    let dir = tempfile::tempdir_in(world.path()).expect("tempdir");
    let (repo, rec) = new_repo(dir.path(), &platform);
    let snap = capture::snapshot(&repo, &rec, &platform, &opts).expect("snapshot");
    let tree = read::load_tree(&repo, &snap.platform_tree.expect("platform tree")).expect("tree");
    let mut g = c.benchmark_group("restore");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(tree.bytes()));
    let label = format!("{}files-{}MB", tree.files(), tree.bytes() / 1_000_000);
    g.bench_function(BenchmarkId::new("read-verify", &label), |b| {
        b.iter(|| {
            let mut reader = read::chunk_reader(&repo);
            let mut n = 0;
            for e in tree.entries.iter().filter(|e| e.kind == Kind::File) {
                for h in &e.chunks {
                    n += reader.read(h).expect("chunk").len() as u64;
                }
            }
            assert_eq!(n, tree.bytes());
            n
        })
    });
    // Every iteration writes into a new folder (never where a tree was just deleted).
    let out = tempfile::tempdir_in(world.path()).expect("tempdir");
    let mut i = 0u32;
    g.bench_function(BenchmarkId::new("write-tree", &label), |b| {
        b.iter(|| {
            i += 1;
            let dest = out.path().join(format!("w{i}"));
            restore::write_tree(&repo, &tree, &dest, &snap.id).expect("write");
            dest
        })
    });
    g.bench_function(BenchmarkId::new("to-target-synced", &label), |b| {
        b.iter(|| {
            i += 1;
            let dest = out.path().join(format!("t{i}"));
            let inc = restore::Include::default();
            let o = restore::to_target(&repo, &snap, &dest, &inc, false).expect("restore");
            assert!(o.files >= tree.files() && o.files <= stats.files + 1);
            dest
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_chunking,
    bench_hash_compress,
    bench_snapshot,
    bench_restore
);
criterion_main!(benches);
