//! Reading snapshots back through the library and comparing them with what was on disk.

use super::db::{sqlite_rows, sqlite_tables};
use super::trees::{Rec, live_bindings, live_records, platform_keep, sha_hex, site_keep};
use super::world::{Site, World};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A snapshot read back through the library, as a restore would see it.
pub struct ReadBack {
    pub snap: sitesnap::catalog::SnapshotRecord,
    pub platform: Option<Vec<Rec>>,
    pub site: Option<Vec<Rec>>,
    pub bindings: Option<Vec<Rec>>,
    pub dump: Option<Vec<u8>>,
}

fn tree_records(repo: &sitesnap::repo::Repo, id: &sitesnap::hash::Hash) -> Vec<Rec> {
    use sitesnap::tree::Kind;
    let t = sitesnap::capture::load_tree(repo, id).expect("tree loads");
    let mut reader = sitesnap::store::ChunkReader::new(&repo.data_dir(), &repo.cat);
    let mut out = Vec::new();
    for e in &t.entries {
        let (kind, sha) = match e.kind {
            Kind::File => {
                let mut buf = Vec::with_capacity(e.size as usize);
                let n = reader
                    .copy_chunks(&e.chunks, &mut buf)
                    .unwrap_or_else(|err| panic!("reading {}: {err}", e.path_str()));
                assert_eq!(n, e.size, "stored size of {}", e.path_str());
                ("file", Some(sha_hex(&buf)))
            }
            Kind::Dir => ("dir", None),
            Kind::Symlink => ("link", None),
        };
        out.push(Rec {
            path: e.path.clone(),
            kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime_ns: e.mtime_ns,
            size: e.size,
            target: e.target.clone(),
            sha,
        });
    }
    let mut sorted = out.clone();
    sorted.sort();
    assert_eq!(out, sorted, "a stored tree is sorted by path");
    out
}

/// Reads every part of snapshot `id` (any unique prefix) back through the library: the trees
/// with every file's content read and hash-checked chunk by chunk, and the database dump.
pub fn restore_read(repo_root: &Path, id: &str) -> ReadBack {
    let repo = sitesnap::repo::Repo::open(repo_root, None).expect("repo opens");
    let snap = repo.cat.resolve_snapshot(id).expect("snapshot resolves");
    let platform = snap.platform_tree.map(|h| tree_records(&repo, &h));
    let site = snap.site_tree.map(|h| tree_records(&repo, &h));
    let bindings = snap.bindings_tree.map(|h| tree_records(&repo, &h));
    let dump = snap.db_dump.map(|h| {
        let (chunks, size) = sitesnap::read::blob_chunks(&repo, &h).expect("dump blob");
        let mut reader = sitesnap::store::ChunkReader::new(&repo.data_dir(), &repo.cat);
        let mut buf = Vec::new();
        reader.copy_chunks(&chunks, &mut buf).expect("dump reads");
        assert_eq!(buf.len() as u64, size, "dump size");
        buf
    });
    ReadBack {
        snap,
        platform,
        site,
        bindings,
        dump,
    }
}

/// Asserts two record lists are equal, naming the first differences.
pub fn assert_same_records(what: &str, got: &[Rec], want: &[Rec]) {
    if got == want {
        return;
    }
    let g: std::collections::BTreeMap<&[u8], &Rec> = got.iter().map(|r| (&r.path[..], r)).collect();
    let w: std::collections::BTreeMap<&[u8], &Rec> =
        want.iter().map(|r| (&r.path[..], r)).collect();
    let mut diffs = Vec::new();
    for (p, r) in &w {
        match g.get(p) {
            None => diffs.push(format!("missing from snapshot: {}", r.path_str())),
            Some(x) if x != r => {
                diffs.push(format!("differs:\n  snapshot {x:?}\n  live     {r:?}"))
            }
            _ => {}
        }
    }
    for (p, r) in &g {
        if !w.contains_key(p) {
            diffs.push(format!("only in snapshot: {}", r.path_str()));
        }
    }
    diffs.truncate(15);
    panic!(
        "{what}: snapshot ({} entries) differs from live ({} entries):\n{}",
        got.len(),
        want.len(),
        diffs.join("\n")
    );
}

/// Writes a dump to a file so rusqlite can open it; checks it is a sound SQLite database.
pub fn dump_to_db(dump: &[u8], at: &Path) -> PathBuf {
    fs::write(at, dump).unwrap();
    let c = rusqlite::Connection::open(at).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("the dump opens as an SQLite database");
    assert_eq!(ok, "ok", "integrity_check of the dump");
    at.to_path_buf()
}

/// Compares every part of snapshot `id` of `site` with the live trees.
pub fn assert_snapshot_matches_live(w: &World, id: &str, platform: &Path, site: &Site) -> ReadBack {
    let rb = restore_read(&w.repo, id);
    assert_eq!(rb.snap.platform_path, platform);
    assert_same_records(
        "platform tree",
        rb.platform.as_deref().expect("platform tree"),
        &live_records(platform, platform_keep),
    );
    assert_same_records(
        "site tree",
        rb.site.as_deref().expect("site tree"),
        &live_records(&site.dir, site_keep("site.sqlite")),
    );
    assert_same_records(
        "bindings tree",
        rb.bindings.as_deref().expect("bindings tree"),
        &live_bindings(&[&site.vhost, &site.alias]),
    );
    let dump = rb.dump.as_deref().expect("database dump");
    let db = dump_to_db(dump, &w.path(&format!("dump-{id}.sqlite")));
    assert_eq!(sqlite_tables(&db), sqlite_tables(&site.db));
    for t in sqlite_tables(&site.db) {
        assert_eq!(sqlite_rows(&db, &t), sqlite_rows(&site.db, &t), "table {t}");
    }
    fs::remove_file(db).unwrap();
    rb
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
    let r = sitesnap::repo::Repo::open(repo, None).unwrap();
    let s = r.cat.resolve_snapshot(id).unwrap();
    let mut m = BTreeMap::new();
    let mut reader = ChunkReader::new(&r.data_dir(), &r.cat);
    for (part, tree) in [
        ("platform", s.platform_tree),
        ("site", s.site_tree),
        ("binding", s.bindings_tree),
        ("extra", s.extra_tree),
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
