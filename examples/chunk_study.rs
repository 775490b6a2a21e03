//! The benchmark behind sitesnap's chunk parameters and zstd level (figures in
//! docs/performance.md). Single-threaded, so figures are per core.
//!
//! `cargo run --release --example chunk_study -- [--tree DIR] [--dump-mb N] [--levels]`
//!
//! - files: for each FILE_CHUNKS candidate, chunks of the tree (index rows), unique chunks,
//!   stored bytes (at sitesnap's zstd level), chunk+hash+compress speed; and the new bytes after editing every
//!   file larger than 4 MiB in its middle.
//! - dumps: a mysqldump-like SQL dump and an SQLite database file (the form sitesnap stores
//!   SQLite sites in), each captured on day 1 and again on day 2 after 0.2% of rows were
//!   edited, a few deleted and some added; for each DUMP_CHUNKS candidate: chunks per dump (index
//!   rows, and 32 bytes each in every snapshot's chunk list), stored bytes on day 1, bytes day
//!   2 adds, what day 2 costs in all (data + chunk list + index rows), speed.
//! - `--levels`: stored bytes and speed of zstd levels on the tree's unique chunks.

#[path = "../benches/common/tree_gen.rs"]
mod tree_gen;

use sitesnap::hash::Hash;
use sitesnap::store::{ChunkParams, Cut, DUMP_CHUNKS, FILE_CHUNKS};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tree_gen::Rng;

const KI: usize = 1 << 10;
const MI: usize = 1 << 20;

fn p(min: usize, avg: usize, max: usize, level: i32) -> ChunkParams {
    ChunkParams {
        cut: Cut::Bytes,
        min,
        avg,
        max,
        level,
    }
}

fn label(c: &ChunkParams) -> String {
    let f = |n: usize| {
        if n >= MI {
            format!("{}M", n / MI)
        } else {
            format!("{}K", n / KI)
        }
    };
    format!("{}/{}/{}", f(c.min), f(c.avg), f(c.max))
}

fn cuts(data: &[u8], c: &ChunkParams) -> Vec<(usize, usize)> {
    if data.len() <= c.min {
        return vec![(0, data.len())];
    }
    fastcdc::v2020::FastCDC::new(data, c.min, c.avg, c.max)
        .map(|x| (x.offset, x.length))
        .collect()
}

/// A content store simulation: unique chunks and their compressed bytes.
#[derive(Default)]
struct Store {
    seen: HashSet<Hash>,
    stored: u64,
    chunks: u64,
}

impl Store {
    /// Adds `data` cut with `c`; returns compressed bytes added.
    fn add(&mut self, data: &[u8], c: &ChunkParams, level: i32) -> u64 {
        let mut added = 0;
        for (o, l) in cuts(data, c) {
            let chunk = &data[o..o + l];
            self.chunks += 1;
            if self.seen.insert(Hash::of(chunk)) {
                added += zstd::bulk::compress(chunk, level).expect("zstd").len() as u64;
            }
        }
        self.stored += added;
        added
    }
}

fn tree_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn files_study(root: &Path) {
    let files = tree_files(root);
    let contents: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect();
    let total: usize = contents.iter().map(|c| c.len()).sum();
    println!(
        "\n== files: {} files, {:.1} MB ({} larger than 512 KiB, {} larger than 8 MiB)",
        files.len(),
        total as f64 / 1e6,
        contents.iter().filter(|c| c.len() > 512 * KI).count(),
        contents.iter().filter(|c| c.len() > 8 * MI).count()
    );
    println!(
        "{:<12} {:>9} {:>9} {:>11} {:>8} {:>14}",
        "min/avg/max", "chunks", "unique", "stored MB", "MB/s", "edit adds MB"
    );
    for c in [
        p(256 * KI, 512 * KI, 2 * MI, FILE_CHUNKS.level),
        p(512 * KI, MI, 8 * MI, FILE_CHUNKS.level),
        p(MI, 2 * MI, 8 * MI, FILE_CHUNKS.level),
        p(2 * MI, 4 * MI, 16 * MI, FILE_CHUNKS.level),
    ] {
        let mut st = Store::default();
        let t = Instant::now();
        for d in &contents {
            st.add(d, &c, c.level);
        }
        let secs = t.elapsed().as_secs_f64();
        let (chunks, unique, stored) = (st.chunks, st.seen.len(), st.stored);
        // Edit: 64 bytes inserted in the middle of every file above 4 MiB.
        let mut edit = 0;
        for d in contents.iter().filter(|d| d.len() > 4 * MI) {
            let mut e = d.clone();
            let mid = e.len() / 2;
            e.splice(mid..mid, [b'x'; 64]);
            edit += st.add(&e, &c, c.level);
        }
        println!(
            "{:<12} {:>9} {:>9} {:>11.1} {:>8.0} {:>14.2}",
            label(&c),
            chunks,
            unique,
            stored as f64 / 1e6,
            total as f64 / 1e6 / secs,
            edit as f64 / 1e6
        );
    }
}

fn levels_study(root: &Path) {
    let files = tree_files(root);
    let mut seen = HashSet::new();
    let mut text = Vec::new();
    let mut media = Vec::new();
    for f in &files {
        let d = std::fs::read(f).expect("read");
        for (o, l) in cuts(&d, &FILE_CHUNKS) {
            let chunk = d[o..o + l].to_vec();
            if seen.insert(Hash::of(&chunk)) {
                if f.to_string_lossy().contains("/files/20")
                    || f.to_string_lossy().contains("/files/inline")
                    || f.to_string_lossy().contains("/files/styles")
                    || f.to_string_lossy().contains("/files/documents")
                {
                    media.push(chunk);
                } else {
                    text.push(chunk);
                }
            }
        }
    }
    let buckets: [(&str, usize, usize); 4] = [
        ("code < 4 KiB", 0, 4 * KI),
        ("code 4-16 KiB", 4 * KI, 16 * KI),
        ("code 16-128 KiB", 16 * KI, 128 * KI),
        ("code >= 128 KiB", 128 * KI, usize::MAX),
    ];
    let mut sets: Vec<(String, Vec<&Vec<u8>>)> = vec![
        ("all code".into(), text.iter().collect()),
        ("media".into(), media.iter().collect()),
    ];
    for (name, lo, hi) in buckets {
        sets.push((
            name.into(),
            text.iter()
                .filter(|c| c.len() >= lo && c.len() < hi)
                .collect(),
        ));
    }
    for (what, set) in &sets {
        let total: usize = set.iter().map(|c| c.len()).sum();
        println!(
            "\n== zstd levels on {} unique chunks ({what}), {:.1} MB (one reused context)",
            set.len(),
            total as f64 / 1e6
        );
        println!(
            "{:<6} {:>11} {:>7} {:>8}",
            "level", "stored MB", "ratio", "MB/s"
        );
        for level in [1, 2, 3, 4, 5, 6, 7, 9] {
            let mut cx = zstd::bulk::Compressor::new(level).expect("zstd");
            let t = Instant::now();
            let n: usize = set
                .iter()
                .map(|c| cx.compress(c).expect("zstd").len())
                .sum();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{:<6} {:>11.2} {:>7.3} {:>8.0}",
                level,
                n as f64 / 1e6,
                total as f64 / n as f64,
                total as f64 / 1e6 / secs
            );
        }
    }
}

/// Rows of a Drupal-ish database: (table, row text) with stable ids.
struct Db {
    tables: Vec<(String, Vec<(u64, String)>)>,
}

fn make_db(rng: &mut Rng, bytes: usize) -> Db {
    const WORDS: &[&str] = &[
        "the", "site", "node", "update", "page", "content", "user", "article", "drupal", "views",
        "field", "block", "menu", "cache", "render", "theme", "form", "entity", "and", "of",
    ];
    let text = |rng: &mut Rng, n: usize| {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(WORDS[rng.below(WORDS.len())]);
            s.push(' ');
        }
        s
    };
    let mut tables = Vec::new();
    // Share of the dump per table: nodes with bodies, revisions, users, watchdog, cache.
    let plan: [(&str, f64); 5] = [
        ("node_field_data", 0.15),
        ("node__body", 0.40),
        ("users_field_data", 0.05),
        ("watchdog", 0.20),
        ("cache_render", 0.20),
    ];
    for (name, share) in plan {
        let mut rows = Vec::new();
        let mut size = 0usize;
        let mut id = 1u64;
        while (size as f64) < bytes as f64 * share {
            let row = match name {
                "node_field_data" => format!(
                    "({id},'article','{}',{},1,{},{})",
                    text(rng, 40).trim(),
                    rng.below(500),
                    1_600_000_000 + rng.below(100_000_000),
                    1_600_000_000 + rng.below(100_000_000)
                ),
                "node__body" => {
                    let n = rng.lognormal(1500.0, 0.8) as usize;
                    format!("({id},'{}','full_html')", text(rng, n))
                }
                "users_field_data" => format!(
                    "({id},'user{id}','user{id}@example.com','$S$E{:016x}{:016x}',{})",
                    rng.next(),
                    rng.next(),
                    1_600_000_000 + rng.below(100_000_000)
                ),
                "watchdog" => format!(
                    "({id},{},'php','{}',{},'/node/{}')",
                    rng.below(500),
                    text(rng, 80).trim(),
                    1_600_000_000 + rng.below(100_000_000),
                    rng.below(10_000)
                ),
                _ => {
                    let mut blob = Vec::new();
                    let n = rng.lognormal(1200.0, 0.7) as usize;
                    rng.fill_noise(&mut blob, n);
                    let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
                    format!(
                        "('render:{id}',0x{hex},-1,{})",
                        1_600_000_000 + rng.below(1000)
                    )
                }
            };
            size += row.len() + 1;
            rows.push((id, row));
            id += 1;
        }
        tables.push((name.to_string(), rows));
    }
    Db { tables }
}

/// Day 2: 0.2% of rows edited in place, 0.02% deleted, 0.5% appended per table.
fn next_day(db: &Db, rng: &mut Rng) -> Db {
    let mut out = Db { tables: Vec::new() };
    for (name, rows) in &db.tables {
        let mut new_rows = Vec::with_capacity(rows.len());
        for (id, r) in rows {
            let x = rng.below(10_000);
            if x < 2 {
                continue;
            }
            if x < 22 {
                let mut r = r.clone();
                let at = r.len() / 2;
                r.insert_str(at, "EDITED");
                new_rows.push((*id, r));
            } else {
                new_rows.push((*id, r.clone()));
            }
        }
        let last = rows.last().map(|r| r.0).unwrap_or(0);
        for k in 0..(rows.len() / 200).max(1) {
            let id = last + 1 + k as u64;
            let proto = &rows[rng.below(rows.len())].1;
            new_rows.push((id, format!("{proto} /*{id}*/")));
        }
        out.tables.push((name.clone(), new_rows));
    }
    out
}

/// mysqldump --extended-insert style: one INSERT line per ~1 MiB of rows.
fn sql_dump(db: &Db) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n");
    for (name, rows) in &db.tables {
        out.extend_from_slice(
            format!("DROP TABLE IF EXISTS `{name}`;\nCREATE TABLE `{name}` (id int);\n").as_bytes(),
        );
        let mut line = 0;
        for (i, (_, r)) in rows.iter().enumerate() {
            if line == 0 {
                out.extend_from_slice(format!("INSERT INTO `{name}` VALUES ").as_bytes());
            } else {
                out.push(b',');
            }
            out.extend_from_slice(r.as_bytes());
            line += r.len();
            if line > MI || i + 1 == rows.len() {
                out.extend_from_slice(b";\n");
                line = 0;
            }
        }
    }
    out
}

/// The same rows in an SQLite file (what sitesnap stores for SQLite sites: a page image).
fn sqlite_file(db: &Db, path: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(path);
    let c = rusqlite::Connection::open(path).expect("sqlite");
    c.execute_batch("PRAGMA journal_mode=DELETE; BEGIN;")
        .expect("begin");
    for (name, rows) in &db.tables {
        c.execute(
            &format!("CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT)"),
            [],
        )
        .expect("create");
        let mut st = c
            .prepare(&format!("INSERT INTO {name} (id, v) VALUES (?1, ?2)"))
            .expect("prepare");
        for (id, r) in rows {
            st.execute(rusqlite::params![*id as i64, r])
                .expect("insert");
        }
    }
    c.execute_batch("COMMIT;").expect("commit");
    drop(c);
    std::fs::read(path).expect("read db")
}

/// The SQLite file after day 2's changes applied in place (as a live site would).
fn sqlite_update(day1: &Db, day2: &Db, path: &Path) -> Vec<u8> {
    let c = rusqlite::Connection::open(path).expect("sqlite");
    c.execute_batch("BEGIN;").expect("begin");
    for ((name, old), (_, new)) in day1.tables.iter().zip(&day2.tables) {
        let old_ids: std::collections::HashMap<u64, &String> =
            old.iter().map(|(i, r)| (*i, r)).collect();
        let new_ids: HashSet<u64> = new.iter().map(|r| r.0).collect();
        for (id, _) in old {
            if !new_ids.contains(id) {
                c.execute(&format!("DELETE FROM {name} WHERE id = ?1"), [*id as i64])
                    .expect("delete");
            }
        }
        for (id, r) in new {
            match old_ids.get(id) {
                Some(o) if *o == r => {}
                _ => {
                    c.execute(
                        &format!("INSERT OR REPLACE INTO {name} (id, v) VALUES (?1, ?2)"),
                        rusqlite::params![*id as i64, r],
                    )
                    .expect("upsert");
                }
            }
        }
    }
    c.execute_batch("COMMIT;").expect("commit");
    drop(c);
    std::fs::read(path).expect("read db")
}

fn dump_study(mb: usize) {
    let mut rng = Rng::new(2024);
    let day1 = make_db(&mut rng, mb * MI);
    let day2 = next_day(&day1, &mut rng);
    let dir = tempfile::tempdir().expect("tempdir");
    let dbp = dir.path().join("site.sqlite");
    let cases = [
        ("SQL dump", sql_dump(&day1), sql_dump(&day2)),
        (
            "SQLite file",
            sqlite_file(&day1, &dbp),
            sqlite_update(&day1, &day2, &dbp),
        ),
    ];
    for (what, d1, d2) in &cases {
        println!(
            "\n== {what}: day 1 {:.1} MB, day 2 {:.1} MB (0.2% rows edited, 0.02% deleted, 0.5% added)",
            d1.len() as f64 / 1e6,
            d2.len() as f64 / 1e6
        );
        println!(
            "{:<12} {:>8} {:>9} {:>12} {:>8} {:>12} {:>6}",
            "min/avg/max", "chunks", "day1 MB", "day2 adds MB", "adds %", "day2 all MB", "MB/s"
        );
        for c in [
            p(KI, 4 * KI, 32 * KI, DUMP_CHUNKS.level),
            p(2 * KI, 8 * KI, 64 * KI, DUMP_CHUNKS.level),
            p(4 * KI, 16 * KI, 128 * KI, DUMP_CHUNKS.level),
            p(8 * KI, 32 * KI, 256 * KI, DUMP_CHUNKS.level),
            p(16 * KI, 64 * KI, 512 * KI, DUMP_CHUNKS.level),
            p(64 * KI, 256 * KI, 2 * MI, DUMP_CHUNKS.level),
            p(512 * KI, MI, 8 * MI, DUMP_CHUNKS.level),
        ] {
            let mut st = Store::default();
            let t = Instant::now();
            let a1 = st.add(d1, &c, c.level);
            let secs = t.elapsed().as_secs_f64();
            let chunks = st.chunks;
            let new_before = st.seen.len();
            let a2 = st.add(d2, &c, c.level);
            let new_chunks = st.seen.len() - new_before;
            // What the second snapshot costs in all: new chunk data, its chunk list in the
            // catalogue (32 bytes a chunk), and index rows for the new chunks (about 100 bytes
            // each with the by-pack index, measured on the catalogue).
            let day2_chunks = cuts(d2, &c).len();
            let all = a2 as f64 + 32.0 * day2_chunks as f64 + 100.0 * new_chunks as f64;
            println!(
                "{:<12} {:>8} {:>9.2} {:>12.2} {:>7.1}% {:>12.2} {:>6.0}",
                label(&c),
                chunks,
                a1 as f64 / 1e6,
                a2 as f64 / 1e6,
                100.0 * a2 as f64 / a1 as f64,
                all / 1e6,
                d1.len() as f64 / 1e6 / secs
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut tree: Option<PathBuf> = None;
    let mut dump_mb = 128;
    let mut levels = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tree" => tree = args.next().map(PathBuf::from),
            "--dump-mb" => {
                dump_mb = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--dump-mb N")
            }
            "--levels" => levels = true,
            _ => {
                eprintln!("usage: chunk_study [--tree DIR] [--dump-mb N] [--levels]");
                std::process::exit(2);
            }
        }
    }
    if let Some(t) = &tree {
        files_study(t);
        if levels {
            levels_study(t);
        }
    }
    if dump_mb > 0 {
        dump_study(dump_mb);
    }
}
