//! Measures how well successive dumps of one database deduplicate under several content-defined
//! chunking parameter sets, the way the store would keep them (SHA-256 per chunk, zstd level
//! `store::DUMP_CHUNKS.level` per new chunk). Used by `benches/dump_dedup.sh` to compare candidate
//! `store::DUMP_CHUNKS` values; it stores nothing.
//!
//! Usage: cargo run --release --example dump_chunking -- FIRST.sql NEXT.sql [NEXT.sql...]
//! Prints, per parameter set, the compressed bytes the first dump adds, and what each later
//! dump adds as a percentage of that (each compared against all dumps before it).

use sitesnap::hash::Hash;
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.len() < 2 {
        eprintln!("usage: dump_chunking FIRST.sql NEXT.sql [NEXT.sql...]");
        std::process::exit(2);
    }
    let current = sitesnap::store::DUMP_CHUNKS;
    let sets = [
        (256, 1 << 10, 8 << 10),
        (512, 2 << 10, 16 << 10),
        (1 << 10, 4 << 10, 32 << 10),
        (current.min, current.avg, current.max),
        (4 << 10, 16 << 10, 128 << 10),
        (16 << 10, 64 << 10, 256 << 10),
    ];
    println!(
        "{:>22}  {:>9}  {:>12}  {}",
        "min/avg/max",
        "chunks",
        "first adds",
        files[1..]
            .iter()
            .map(|f| format!("{:>24}", short(f)))
            .collect::<Vec<_>>()
            .join("")
    );
    for (min, avg, max) in sets {
        let mut seen: HashSet<Hash> = HashSet::new();
        let mut added = Vec::new();
        let mut chunks_first = 0;
        for (i, f) in files.iter().enumerate() {
            let r = BufReader::with_capacity(1 << 20, File::open(f).expect("open dump"));
            let mut new_bytes = 0u64;
            for c in fastcdc::v2020::StreamCDC::new(r, min, avg, max) {
                let c = c.expect("read");
                if i == 0 {
                    chunks_first += 1;
                }
                let h = Hash::of(&c.data);
                if seen.insert(h) {
                    new_bytes += zstd::bulk::compress(&c.data, sitesnap::store::DUMP_CHUNKS.level)
                        .expect("zstd")
                        .len() as u64;
                }
            }
            added.push(new_bytes);
        }
        let first = added[0] as f64;
        println!(
            "{:>22}  {:>9}  {:>12}  {}",
            format!("{}/{}/{}", kib(min), kib(avg), kib(max)),
            chunks_first,
            added[0],
            added[1..]
                .iter()
                .map(|a| format!("{:>24}", format!("{:.2}%", *a as f64 / first * 100.0)))
                .collect::<Vec<_>>()
                .join("")
        );
    }
}

fn kib(n: usize) -> String {
    if n >= 1024 {
        format!("{}K", n / 1024)
    } else {
        format!("{n}")
    }
}

fn short(f: &str) -> String {
    std::path::Path::new(f)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
