//! Helpers for the operations tests (retention, gc, verify, locking, cron): spawning the real
//! binary in the background, measuring the repository, and checking a snapshot's content byte
//! for byte against what was on disk when it was taken (read back through the library).
#![allow(dead_code)]

use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sitesnap"))
}

/// Starts the binary in the background with the repository and extra environment.
pub fn spawn(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(bin());
    c.env("SITESNAP_REPO", repo)
        .env_remove("SITESNAP_FAILPOINT")
        .env_remove("SITESNAP_TEST_NOW")
        .env_remove("SITESNAP_PAUSE")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn sitesnap")
}

pub struct Done {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(c: Child) -> Done {
    let o = c.wait_with_output().expect("wait for sitesnap");
    Done {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Waits until `path` exists (a process reached its pause point). Panics after a minute: that
/// is a hung test, not a timing assertion.
pub fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Total bytes of the files under `repo/data` (packs and leftovers).
pub fn data_size(repo: &Path) -> u64 {
    walkdir::WalkDir::new(repo.join("data"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Pack files under `repo/data/xx/`.
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(repo.join("data"))
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file() && e.file_name().len() == 64)
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// What a snapshot of a site should hold, taken from disk right after the snapshot: regular
/// files of the platform (platform filter), of the site directory (without the SQLite files)
/// and the binding files, as `part:path -> sha256`.
pub fn expected(platform: &Path, uri: &str, bindings: &[&Path]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let site_dir = platform.join("sites").join(uri);
    for e in walkdir::WalkDir::new(platform)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(platform).unwrap();
            sitesnap::tree::in_platform(rel, e.file_type().is_dir())
        })
    {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e
                .path()
                .strip_prefix(platform)
                .unwrap()
                .display()
                .to_string();
            m.insert(format!("platform:{rel}"), sha(&fs::read(e.path()).unwrap()));
        }
    }
    for e in walkdir::WalkDir::new(&site_dir).min_depth(1) {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy();
        if e.file_type().is_file() && !name.starts_with("site.sqlite") {
            let rel = e
                .path()
                .strip_prefix(&site_dir)
                .unwrap()
                .display()
                .to_string();
            m.insert(format!("site:{rel}"), sha(&fs::read(e.path()).unwrap()));
        }
    }
    for b in bindings {
        let rel = b.display().to_string();
        m.insert(
            format!("binding:{}", rel.trim_start_matches('/')),
            sha(&fs::read(b).unwrap()),
        );
    }
    m
}

/// Reads every file of snapshot `id` back through the library (every chunk checked against its
/// hash) and returns `part:path -> sha256`; also reads the whole database dump and checks its
/// size against the record.
pub fn stored(repo: &Path, id: &str) -> BTreeMap<String, String> {
    use sitesnap::store::ChunkReader;
    use sitesnap::tree::Kind;
    let r = sitesnap::repo::Repo::open(repo).unwrap();
    let s = r.cat.resolve_snapshot(id).unwrap();
    let mut m = BTreeMap::new();
    let mut reader = ChunkReader::new(&r.data_dir(), &r.cat);
    for (part, tree) in [
        ("platform", s.platform_tree),
        ("site", s.site_tree),
        ("binding", s.bindings_tree),
    ] {
        let Some(tree) = tree else { continue };
        let t = sitesnap::capture::load_tree(&r, &tree).unwrap();
        for e in &t.entries {
            if e.kind != Kind::File {
                continue;
            }
            let mut buf = Vec::new();
            reader.copy_chunks(&e.chunks, &mut buf).unwrap();
            assert_eq!(buf.len() as u64, e.size, "{part}:{}", e.path_str());
            m.insert(format!("{part}:{}", e.path_str()), sha(&buf));
        }
    }
    if let Some(d) = s.db_dump {
        let dump = sitesnap::capture::read_blob(&r, &d).unwrap();
        assert_eq!(dump.len() as u64, s.db_bytes);
    }
    m
}
