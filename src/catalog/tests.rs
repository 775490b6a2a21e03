//! Unit tests of the catalogue.

use super::*;
use rusqlite::params;
use std::path::Path;

fn entry(n: u8) -> CacheEntry {
    CacheEntry {
        dev: 1,
        ino: n as u64,
        size: 10 * n as u64,
        mtime_ns: 1_700_000_000_000_000_000 + n as i64,
        ctime_ns: 1_700_000_000_000_000_001 + n as i64,
        chunks: vec![Hash([n; 32])],
    }
}

/// Rows written by absolute path come back by absolute path, for a root folder (every file
/// under it, however deep), for a single file (a binding), after a restore rewrote some, and
/// each folder's path is stored once.
#[test]
fn files_cache_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&d.path().join("c.sqlite")).unwrap();
    let rows: Vec<(Vec<u8>, CacheEntry)> = [
        "/srv/p/index.php",
        "/srv/p/core/a.php",
        "/srv/p/core/lib/b.php",
        "/srv/p/sites/x.com/files/c.jpg",
        "/srv/p2/other.php",
        "/etc/nginx/vhost.d/x.com",
        "/etc/nginx/vhost.d/y.com",
        "/top",
    ]
    .iter()
    .enumerate()
    .map(|(i, p)| (p.as_bytes().to_vec(), entry(i as u8)))
    .collect();
    let snap = |id: &str| SnapshotRecord {
        id: id.into(),
        site: "x.com".into(),
        kind: super::SnapshotKind::Manual,
        label: None,
        pinned: false,
        time: Utc::now(),
        platform_path: "/srv/p".into(),
        platform_tree: None,
        site_dir: "sites/x.com".into(),
        site_tree: None,
        bindings_tree: None,
        db_kind: None,
        db_url: None,
        db_dump: None,
        files: 0,
        bytes: 0,
        bytes_read: 0,
        db_bytes: 0,
        bytes_added: 0,
        duration_ms: 0,
        note: None,
        web_root: Some("web".into()),
        extra_paths: vec!["private/x.com".into()],
        extra_tree: Some(Hash([9; 32])),
    };
    cat.commit_snapshot(&snap("aa"), &[], &rows).unwrap();
    let back = cat.resolve_snapshot("aa").unwrap();
    assert_eq!(back.web_root.as_deref(), Some("web"));
    assert_eq!(back.extra_paths, vec!["private/x.com".to_string()]);
    assert_eq!(back.extra_tree, Some(Hash([9; 32])));
    let p = cat.load_cache(Path::new("/srv/p")).unwrap();
    let keys: Vec<_> = p
        .paths()
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect();
    // Every file under the folder, and only those (not /srv/p2's).
    assert_eq!(
        keys,
        [
            "/srv/p/core/a.php",
            "/srv/p/core/lib/b.php",
            "/srv/p/index.php",
            "/srv/p/sites/x.com/files/c.jpg",
        ]
    );
    assert_eq!(
        p.get(b"/srv/p/core/lib/b.php").unwrap().to_entry(),
        entry(2)
    );
    let b = cat
        .load_cache(Path::new("/etc/nginx/vhost.d/x.com"))
        .unwrap();
    assert_eq!(b.paths(), [b"/etc/nginx/vhost.d/x.com".to_vec()]);
    assert_eq!(
        b.get(b"/etc/nginx/vhost.d/x.com").unwrap().to_entry(),
        entry(5)
    );
    assert_eq!(cat.load_cache(Path::new("/top")).unwrap().len(), 1);
    assert_eq!(cat.load_cache(Path::new("/")).unwrap().len(), 8);
    assert!(cat.load_cache(Path::new("/nothing")).unwrap().is_empty());
    assert!(
        cat.load_cache(Path::new("/srv/p/index"))
            .unwrap()
            .is_empty()
    );

    // A restore rewrites two rows; a new folder appears; the folder's other files stay.
    cat.insert_cache(&[
        (b"/srv/p/core/a.php".to_vec(), entry(42)),
        (b"/srv/p/new/d.php".to_vec(), entry(43)),
        (b"/etc/nginx/vhost.d/z.com".to_vec(), entry(44)),
    ])
    .unwrap();
    let p = cat.load_cache(Path::new("/srv/p/")).unwrap();
    assert_eq!(p.get(b"/srv/p/core/a.php").unwrap().to_entry(), entry(42));
    assert_eq!(p.get(b"/srv/p/new/d.php").unwrap().to_entry(), entry(43));
    assert_eq!(p.get(b"/srv/p/index.php").unwrap().to_entry(), entry(0));
    assert_eq!(p.len(), 5);
    assert_eq!(cat.load_cache(Path::new("/etc/nginx")).unwrap().len(), 3);
    // One row per folder.
    let dirs: i64 = cat
        .conn
        .query_row("SELECT count(*) FROM cache_dirs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dirs, 8);

    cat.clear_cache().unwrap();
    assert!(cat.load_cache(Path::new("/srv")).unwrap().is_empty());
}

/// A version 1 catalogue is migrated: its files cache (absolute path keys) is dropped.
#[test]
fn version_1_catalogue_is_migrated() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO files_cache VALUES (?1, 1, 2, 3, 4, 5, ?2)",
            params![b"/srv/p/a.php".to_vec(), vec![7u8; 32]],
        )
        .unwrap();
    }
    let cat = Catalog::open(&path).unwrap();
    let v: i64 = cat
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert!(cat.load_cache(Path::new("/srv/p")).unwrap().is_empty());
    cat.insert_cache(&[(b"/srv/p/a.php".to_vec(), entry(1))])
        .unwrap();
    assert_eq!(cat.load_cache(Path::new("/srv/p")).unwrap().len(), 1);
}

/// A version 2 catalogue with a site and a snapshot is migrated through version 3 to the
/// current one: the old rows read back with no extra paths and no recorded web root; web roots
/// are stored per platform; the rows are marked as not yet in the store (format 1).
#[test]
fn version_2_catalogue_is_migrated_to_3() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.execute_batch(SCHEMA_V2).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute_batch(
            "INSERT INTO sites (uri, platform, site_dir, bindings, created)
                 VALUES ('x.com', '/srv/p', 'sites/x.com', '[]', '2026-01-01T00:00:00Z');
             INSERT INTO snapshots (id, site, kind, time, platform_path, site_dir, files, bytes,
                 bytes_read, db_bytes, bytes_added, duration_ms)
                 VALUES ('ab', 'x.com', 'manual', '2026-01-01T00:00:00Z', '/srv/p', 'sites/x.com',
                 0, 0, 0, 0, 0, 0);",
        )
        .unwrap();
    }
    let cat = Catalog::open(&path).unwrap();
    let v: i64 = cat
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(cat.store_format().unwrap(), super::StoreFormat::V1);
    assert!(cat.site("x.com").unwrap().extra_paths.is_empty());
    let s = cat.resolve_snapshot("ab").unwrap();
    assert_eq!(
        (s.web_root, s.extra_paths, s.extra_tree),
        (None, vec![], None)
    );
    let p = Path::new("/srv/p");
    assert_eq!(cat.platform_web_root(p).unwrap(), None);
    cat.set_platform_web_root(p, "web").unwrap();
    cat.set_platform_web_root(p, "docroot").unwrap();
    assert_eq!(
        cat.platform_web_root(p).unwrap().as_deref(),
        Some("docroot")
    );
}

/// With sealing on, a site's database URL (and the password in it) is not in the file in
/// clear; it reads back whole with the key, and not at all without it.
#[test]
fn sealed_database_url_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.sqlite");
    let mut cat = Catalog::open(&path).unwrap();
    let key = std::sync::Arc::new(crate::crypto::MasterKey::generate().unwrap());
    cat.set_sealing(Some(key.clone()));
    let url = "mysql://drupal:PW-4e1f-secret@127.0.0.1:3306/site";
    let mut s = SiteRecord {
        uri: "x.com".into(),
        platform: "/srv/p".into(),
        site_dir: "sites/x.com".into(),
        db_url: Some(url.into()),
        bindings: vec![],
        policy: None,
        extra_paths: vec![],
        structure_tables: None,
    };
    cat.add_site(&s).unwrap();
    assert_eq!(cat.site("x.com").unwrap().db_url.as_deref(), Some(url));
    s.db_url = Some(url.replace("site", "site2"));
    cat.update_site(&s).unwrap();
    assert_eq!(cat.sites().unwrap()[0].db_url, s.db_url);
    cat.make_self_contained().unwrap();
    drop(cat);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(14).any(|w| w == b"PW-4e1f-secret"));
    let plain = Catalog::open(&path).unwrap();
    let e = plain.site("x.com").unwrap_err().to_string();
    assert!(e.contains("sealed"), "{e}");
}

/// The batched lookup a restore uses agrees with the one-chunk lookup, across the 500-hash
/// query boundary, and leaves out hashes the index does not hold (and no others).
#[test]
fn chunk_locations_match_single_lookups() {
    use crate::store::pack::{PackEntry, PackFormat, PackInfo};
    let d = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&d.path().join("c.sqlite")).unwrap();
    let hash = |i: u32| {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        Hash(h)
    };
    for (p, range) in [("aa", 0..700u32), ("bb", 700..1203u32)] {
        let entries = range
            .map(|i| PackEntry {
                hash: hash(i),
                offset: u64::from(i) * 10,
                clen: 10,
                ulen: 100 + i,
                inner: i % 7,
            })
            .collect();
        cat.insert_pack(&PackInfo {
            name: p.repeat(32),
            size: 20_000,
            format: PackFormat::V2,
            entries,
        })
        .unwrap();
    }
    // 1,203 indexed hashes and 40 unknown ones, in no particular order.
    let mut wanted: Vec<Hash> = (0..1243u32).rev().map(hash).collect();
    wanted.swap(3, 900);
    let locs = cat.chunk_locations(&wanted).unwrap();
    assert_eq!(locs.len(), 1203);
    for h in &wanted {
        let single = cat.chunk_location(h).unwrap();
        match (locs.get(h), single) {
            (Some(a), Some(b)) => {
                assert_eq!(
                    (&a.pack, a.format, a.offset, a.clen, a.ulen, a.inner),
                    (&b.pack, b.format, b.offset, b.clen, b.ulen, b.inner)
                );
            }
            (None, None) => {}
            (a, b) => panic!("{h:?}: batched {a:?}, single {b:?}"),
        }
    }
    assert!(cat.chunk_locations(&[]).unwrap().is_empty());
}

/// The per-chunk lookups (a capture's dedup check, a read's location) run from their cached
/// statements without being prepared again at each call (they were, for the join, 199 times in
/// 200 calls before the catalogue asked for a stable query plan).
#[test]
fn chunk_lookups_are_not_prepared_again_per_call() {
    let d = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&d.path().join("c.sqlite")).unwrap();
    for i in 0..200u32 {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        assert!(!cat.chunk_exists(&Hash(h)).unwrap());
        assert!(cat.chunk_location(&Hash(h)).unwrap().is_none());
    }
    for sql in [
        "SELECT 1 FROM chunks WHERE hash = ?1
                 AND NOT EXISTS (SELECT 1 FROM damaged_chunks d
                                 WHERE d.hash = ?1 AND d.healed IS NULL)",
        "SELECT p.name, p.format, c.offset, c.clen, c.ulen, c.inner_offset
             FROM chunks c JOIN packs p ON p.id = c.pack_id WHERE c.hash = ?1",
    ] {
        let st = cat.conn.prepare_cached(sql).unwrap();
        assert_eq!(st.get_status(rusqlite::StatementStatus::Run), 200, "{sql}");
        assert_eq!(
            st.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "{sql}"
        );
    }
}

/// Index connections of one capture read inside a transaction, yet a chunk indexed through any
/// of them is found by the others at their next lookup (a stale read would store it twice), and
/// their lookups no longer take the file locks at each query.
#[test]
fn index_connections_see_every_pack_indexed_through_them() {
    use crate::store::IndexOpener;
    use crate::store::pack::{PackEntry, PackFormat, PackInfo};
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.sqlite");
    drop(Catalog::open(&path).unwrap());
    let index = CatalogIndex::new(path.clone());
    let (reader, writer) = (index.open_index().unwrap(), index.open_index().unwrap());
    let pack = |name: &str, n: u8| PackInfo {
        name: name.repeat(32),
        size: 100,
        format: PackFormat::V2,
        entries: vec![PackEntry {
            hash: Hash([n; 32]),
            offset: 8,
            clen: 10,
            ulen: 10,
            inner: 0,
        }],
    };
    // The reader's transaction is open (it has looked up), then a pack is indexed elsewhere.
    assert!(!reader.chunk_exists(&Hash([1; 32])).unwrap());
    writer.insert_pack(&pack("aa", 1)).unwrap();
    assert!(reader.chunk_exists(&Hash([1; 32])).unwrap());
    assert!(reader.chunk_location(&Hash([1; 32])).unwrap().is_some());
    // And the other way round: a connection that indexes ends its own read first.
    assert!(!writer.chunk_exists(&Hash([2; 32])).unwrap());
    reader.insert_pack(&pack("bb", 2)).unwrap();
    assert!(writer.chunk_exists(&Hash([2; 32])).unwrap());
    // A plain connection sees both (they were committed).
    let plain = Catalog::open(&path).unwrap();
    assert!(plain.chunk_exists(&Hash([1; 32])).unwrap());
    assert!(plain.chunk_exists(&Hash([2; 32])).unwrap());
}

/// A version 9 catalogue's files cache (a row per file, keyed by folder id + name) is carried
/// over into one blob per folder: every entry reads back the same, a row of a damaged shape is
/// left out (its file is read again), and the old table is gone.
#[test]
fn version_9_files_cache_becomes_one_blob_per_folder() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("c.sqlite");
    {
        let c = Connection::open(&path).unwrap();
        for sql in [
            SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
            SCHEMA_V9,
        ] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 9).unwrap();
        for (id, dir) in [(1, "/srv/p"), (2, "/srv/p/core")] {
            c.execute(
                "INSERT INTO cache_dirs (id, path) VALUES (?1, ?2)",
                params![id, dir.as_bytes()],
            )
            .unwrap();
        }
        let mut put = c
            .prepare("INSERT INTO files_cache VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        for (id, name, n) in [(2u32, "b.php", 2u8), (1, "index.php", 1), (2, "a.php", 3)] {
            let e = entry(n);
            let key = [&id.to_be_bytes()[..], name.as_bytes()].concat();
            put.execute(params![
                key,
                e.dev as i64,
                e.ino as i64,
                e.size as i64,
                e.mtime_ns,
                e.ctime_ns,
                hashes_to_blob(&e.chunks)
            ])
            .unwrap();
        }
        let odd = [&1u32.to_be_bytes()[..], b"odd.php"].concat();
        put.execute(params![odd, 1, 2, 3, 4, 5, vec![7u8; 31]])
            .unwrap();
        // Columns of other types than v9 wrote (a catalogue edited by hand).
        let texts = [&1u32.to_be_bytes()[..], b"text.php"].concat();
        put.execute(params![texts, "one", 2, 3, 4, 5, vec![7u8; 32]])
            .unwrap();
        let short = [&1u32.to_be_bytes()[..], b"short.php"].concat();
        put.execute(params![short, 1, 2, 3, 4, 5, "not bytes"])
            .unwrap();
    }
    let cat = Catalog::open(&path).unwrap();
    let c = cat.load_cache(Path::new("/srv/p")).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(b"/srv/p/index.php").unwrap().to_entry(), entry(1));
    assert_eq!(c.get(b"/srv/p/core/b.php").unwrap().to_entry(), entry(2));
    assert_eq!(c.get(b"/srv/p/core/a.php").unwrap().to_entry(), entry(3));
    assert!(c.get(b"/srv/p/odd.php").is_none());
    assert!(c.get(b"/srv/p/text.php").is_none());
    let old: i64 = cat
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'files_cache'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
}

/// Entries written in any order land sorted in their folder's blob; of one path given twice in
/// one write, the last counts; a later write replaces what it names and keeps the rest.
#[test]
fn files_cache_writes_merge_by_name() {
    let d = tempfile::tempdir().unwrap();
    let cat = Catalog::open(&d.path().join("c.sqlite")).unwrap();
    let row = |p: &str, n: u8| (p.as_bytes().to_vec(), entry(n));
    cat.insert_cache(&[
        row("/p/c", 1),
        row("/p/a", 2),
        row("/p/c", 3),
        row("/p/b/x", 4),
    ])
    .unwrap();
    cat.insert_cache(&[row("/p/d", 5), row("/p/a", 6), row("/p/0", 7)])
        .unwrap();
    let c = cat.load_cache(Path::new("/p")).unwrap();
    let got: Vec<(Vec<u8>, u64)> = c
        .paths()
        .into_iter()
        .map(|p| {
            let ino = c.get(&p).unwrap().key.ino;
            (p, ino)
        })
        .collect();
    let want: Vec<(Vec<u8>, u64)> = [
        ("/p/0", 7),
        ("/p/a", 6),
        ("/p/b/x", 4),
        ("/p/c", 3),
        ("/p/d", 5),
    ]
    .iter()
    .map(|(p, n)| (p.as_bytes().to_vec(), *n))
    .collect();
    assert_eq!(got, want);
}
