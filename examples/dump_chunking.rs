//! Measures how well successive dumps of one database deduplicate under several chunking
//! parameter sets, the way the store would keep them: SHA-256 per chunk, new chunks grouped into
//! 1 MiB sections compressed as one zstd frame at `store::DUMP_CHUNKS.level` (format-2 packs).
//! Used by `benches/dump_dedup.sh` to compare candidate `store::DUMP_CHUNKS` values; it stores
//! nothing.
//!
//! Usage: cargo run --release --example dump_chunking -- FIRST.sql NEXT.sql [NEXT.sql...]
//! Prints, per parameter set (`bytes` = FastCDC anywhere, `rows` = row-aligned cuts), the chunks
//! of the first dump, the compressed bytes the first dump adds, what each later dump adds as a
//! percentage of that (each compared against all dumps before it), the later dumps' new
//! chunks, and MB/s of chunking + hashing the first dump.

use sitesnap::hash::Hash;
use sitesnap::store::{ChunkParams, Cut, DUMP_CHUNKS, stream_chunks};
use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.len() < 2 {
        eprintln!("usage: dump_chunking FIRST.sql NEXT.sql [NEXT.sql...]");
        std::process::exit(2);
    }
    let p = |cut, min, avg, max| ChunkParams {
        cut,
        min,
        avg,
        max,
        level: DUMP_CHUNKS.level,
    };
    let sets = [
        p(Cut::Bytes, 512, 2 << 10, 16 << 10),
        p(Cut::Bytes, 2 << 10, 8 << 10, 64 << 10),
        p(Cut::Rows, 256, 512, 8 << 10),
        p(Cut::Rows, 512, 1 << 10, 8 << 10),
        p(Cut::Rows, 512, 1536, 8 << 10),
        p(Cut::Rows, 1 << 10, 2 << 10, 16 << 10),
        p(Cut::Rows, 2 << 10, 4 << 10, 16 << 10),
        DUMP_CHUNKS,
    ];
    println!(
        "{:>22}  {:>9}  {:>12}  {}  {:>7}",
        "cut min/avg/max",
        "chunks",
        "first adds",
        files[1..]
            .iter()
            .map(|f| format!("{:>30}", short(f)))
            .collect::<Vec<_>>()
            .join(""),
        "MB/s"
    );
    for set in sets {
        let mut seen: HashSet<Hash> = HashSet::new();
        let mut added = Vec::new();
        let mut new_chunks = Vec::new();
        let mut chunks_first = 0;
        let mut speed = 0.0;
        for (i, f) in files.iter().enumerate() {
            let r = BufReader::with_capacity(1 << 20, File::open(f).expect("open dump"));
            let mut section = Vec::with_capacity(2 << 20);
            let (mut new_bytes, mut fresh, mut n, mut len) = (0u64, 0u64, 0u64, 0u64);
            let t = Instant::now();
            let mut chunk_secs = 0.0;
            for c in stream_chunks(r, set) {
                let c = c.expect("read");
                n += 1;
                len += c.len() as u64;
                if seen.insert(Hash::of(&c)) {
                    fresh += 1;
                    section.extend_from_slice(&c);
                    if section.len() >= 1 << 20 {
                        let t = Instant::now();
                        new_bytes += compressed(&section);
                        chunk_secs -= t.elapsed().as_secs_f64();
                        section.clear();
                    }
                }
            }
            new_bytes += compressed(&section);
            if i == 0 {
                chunks_first = n;
                speed = len as f64 / 1e6 / (t.elapsed().as_secs_f64() + chunk_secs);
            }
            added.push(new_bytes);
            new_chunks.push(fresh);
        }
        let first = added[0] as f64;
        println!(
            "{:>22}  {:>9}  {:>12}  {}  {:>7.0}",
            format!(
                "{:?} {}/{}/{}",
                set.cut,
                kib(set.min),
                kib(set.avg),
                kib(set.max)
            ),
            chunks_first,
            added[0],
            added[1..]
                .iter()
                .zip(&new_chunks[1..])
                .map(|(a, c)| format!(
                    "{:>30}",
                    format!("{:.2}% ({c} chunks)", *a as f64 / first * 100.0)
                ))
                .collect::<Vec<_>>()
                .join(""),
            speed
        );
    }
}

fn compressed(section: &[u8]) -> u64 {
    if section.is_empty() {
        return 0;
    }
    zstd::bulk::compress(section, DUMP_CHUNKS.level)
        .expect("zstd")
        .len() as u64
}

fn kib(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
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
