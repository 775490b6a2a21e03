//! Snapshots read back exactly: platform, site directory, bindings and the SQLite database of
//! several sites on one Drupal-like platform; a database written during the snapshot; dedup and
//! the files cache; repository permissions and secrets. Everything drives the real binary and
//! reads the result back through the library, the way a restore will.
use crate::support::*;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn paths(recs: &[Rec]) -> Vec<String> {
    recs.iter().map(Rec::path_str).collect()
}

#[test]
fn three_sites_on_one_platform_read_back_exactly() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 3000);
    decorate_platform(&p);
    let sites: Vec<Site> = ["example.com", "shop.example.org", "blog.example.net"]
        .iter()
        .map(|u| {
            let s = w.site(u, &p);
            decorate_site(&s.dir);
            s
        })
        .collect();
    let mut platform_trees = HashSet::new();
    for s in &sites {
        let j = w.snapshot(&s.uri);
        let id = j["id"].as_str().unwrap().to_string();
        let rb = assert_snapshot_matches_live(&w, &id, &p, s);
        platform_trees.insert(j["platform_tree"].as_str().unwrap().to_string());

        let plat = rb.platform.as_ref().unwrap();
        let names = paths(plat);
        for must in [
            "sites",
            "sites/sites.php",
            "sites/README.txt",
            "sites/example.sites.php",
            "sites/all/modules/views",
            "sites/all/libraries/empty",
            "sites/all/tmp-sticky",
            "sites/default/default.settings.php",
            "themes/garland/empty-a/empty-b",
            "modules/dangling",
            "includes/empty.inc",
        ] {
            assert!(
                names.iter().any(|n| n == must),
                "platform tree lacks {must}"
            );
        }
        for other in &sites {
            let pre = format!("sites/{}", other.uri);
            assert!(
                !names.iter().any(|n| n.starts_with(&pre)),
                "platform tree holds {pre}"
            );
        }
        assert!(
            !names.iter().any(|n| n == "includes/a-fifo"),
            "a FIFO is no content"
        );
        let get = |n: &str| plat.iter().find(|r| r.path_str() == n).unwrap();
        let suid = get("includes/suid-tool");
        assert_eq!((suid.mode, suid.uid, suid.gid), (0o6755, 1234, 5678));
        assert_eq!(get("includes/mode-000.txt").mode, 0);
        assert_eq!(get("includes/readonly.inc").mode, 0o440);
        assert_eq!(get("sites/all/tmp-sticky").mode, 0o1777);
        let link = get("modules/includes-link");
        assert_eq!((link.kind, link.uid), ("link", 1234));
        assert_eq!(
            get("modules/abs-link").target.as_deref(),
            Some(&b"/etc/hostname"[..])
        );
        assert!(
            plat.iter()
                .any(|r| r.path == b"modules/node/caf\xe9 menu.txt")
        );
        assert!(
            plat.iter()
                .filter(|r| r.mtime_ns % 1_000_000_000 != 0)
                .count()
                > 3000,
            "nanosecond mtimes are kept"
        );
        assert!(plat.iter().filter(|r| r.kind == "file").count() > 3000);

        let site = rb.site.as_ref().unwrap();
        let names = paths(site);
        assert!(
            !names.iter().any(|n| n.starts_with("site.sqlite")),
            "{names:?}"
        );
        for must in [
            "settings.php",
            "files/latest.bin",
            "private/empty",
            "files/empty.txt",
        ] {
            assert!(names.iter().any(|n| n == must), "site tree lacks {must}");
        }
        assert_eq!(
            site.iter()
                .find(|r| r.path == b"settings.php")
                .unwrap()
                .mode,
            0o440
        );
        let bind = rb.bindings.as_ref().unwrap();
        assert_eq!(bind.len(), 2);

        // The reported figures agree with what was stored.
        let all: Vec<&Rec> = plat.iter().chain(site).chain(bind).collect();
        let files = all.iter().filter(|r| r.kind == "file").count() as u64;
        let bytes: u64 = all.iter().map(|r| r.size).sum();
        let dump_len = rb.dump.as_ref().unwrap().len() as u64;
        assert_eq!(j["files"].as_u64().unwrap(), files);
        assert_eq!(j["db_bytes"].as_u64().unwrap(), dump_len);
        assert_eq!(j["bytes"].as_u64().unwrap(), bytes + dump_len);
        assert_eq!(j["db_kind"], "sqlite");
    }
    // The three sites share one platform: one platform tree.
    assert_eq!(platform_trees.len(), 1, "{platform_trees:?}");
    let list = w.run(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 3);
}

/// A writer that commits `BATCH` rows per transaction, numbered 1, 2, 3, ... without gaps,
/// until stopped. It counts rows twice: `attempted` before each COMMIT (an upper bound of what
/// is committed) and `committed` after it (a lower bound).
const BATCH: i64 = 7;

struct Writer {
    stop: Arc<AtomicBool>,
    attempted: Arc<AtomicU64>,
    committed: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<()>,
}

fn start_writer(db: &Path, wal: bool) -> Writer {
    let c = rusqlite::Connection::open(db).unwrap();
    let mode: String = c
        .query_row(
            &format!(
                "PRAGMA journal_mode = {}",
                if wal { "WAL" } else { "DELETE" }
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mode, if wal { "wal" } else { "delete" });
    c.execute_batch(
        "CREATE TABLE counter (seq INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB);",
    )
    .unwrap();
    // Make the database big enough that copying it takes a while.
    let tx = c.unchecked_transaction().unwrap();
    for i in 0..4000 {
        tx.execute(
            "INSERT INTO node (title, body) VALUES (?1, ?2)",
            rusqlite::params![format!("bulk {i}"), noise(1000 + i, 1500)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let attempted = Arc::new(AtomicU64::new(0));
    let committed = Arc::new(AtomicU64::new(0));
    let (s, a, n) = (stop.clone(), attempted.clone(), committed.clone());
    let handle = std::thread::spawn(move || {
        c.busy_timeout(std::time::Duration::from_secs(120)).unwrap();
        let mut batch: i64 = 0;
        while !s.load(Ordering::Relaxed) {
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            for k in 0..BATCH {
                c.execute(
                    "INSERT INTO counter (seq, batch, payload) VALUES (?1, ?2, ?3)",
                    rusqlite::params![batch * BATCH + k + 1, batch, noise(batch as u64, 300)],
                )
                .unwrap();
            }
            a.store(((batch + 1) * BATCH) as u64, Ordering::SeqCst);
            c.execute_batch("COMMIT").unwrap();
            batch += 1;
            n.store((batch * BATCH) as u64, Ordering::SeqCst);
        }
    });
    Writer {
        stop,
        attempted,
        committed,
        handle,
    }
}

fn database_written_during_snapshot(wal: bool) {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 1500);
    let s = w.site("busy.example.com", &p);
    let writer = start_writer(&s.db, wal);
    let committed = &writer.committed;
    // Wait until the writer is well under way (a condition, not a timing assertion).
    while committed.load(Ordering::SeqCst) < (20 * BATCH) as u64 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut ids = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let before = committed.load(Ordering::SeqCst);
        let j = w.snapshot(&s.uri);
        let after = writer.attempted.load(Ordering::SeqCst);
        eprintln!(
            "snapshot took {} ms; writer committed {before}..{after} rows meanwhile",
            j["duration_ms"]
        );
        ids.push(j["id"].as_str().unwrap().to_string());
        let rb = restore_read(&w.repo, &ids[ids.len() - 1]);
        let db = dump_to_db(
            rb.dump.as_deref().unwrap(),
            &w.path(&format!("dump{}.sqlite", ids.len())),
        );
        let c = rusqlite::Connection::open(&db).unwrap();
        let (count, max, batches): (i64, i64, i64) = c
            .query_row(
                "SELECT count(*), coalesce(max(seq), 0), count(DISTINCT batch) FROM counter",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        // Whole transactions only, and a prefix of what was committed: 1..=count, no gap.
        assert_eq!(
            count % BATCH,
            0,
            "a torn transaction in the dump: {count} rows"
        );
        assert_eq!(max, count, "rows of the dump are not a prefix");
        assert_eq!(batches * BATCH, count);
        assert!(
            before as i64 <= count && count as u64 <= after,
            "dump holds {count} rows; committed before the snapshot {before}, after {after}"
        );
        let nodes: i64 = c
            .query_row("SELECT count(*) FROM node", [], |r| r.get(0))
            .unwrap();
        assert_eq!(nodes, 4200);
        // The database file is captured only through the backup API, never as a file.
        let site = rb.site.unwrap();
        assert!(!paths(&site).iter().any(|n| n.starts_with("site.sqlite")));
        counts.push(count);
    }
    writer.stop.store(true, Ordering::Relaxed);
    writer.handle.join().unwrap();
    assert!(
        counts.windows(2).all(|c| c[0] <= c[1]),
        "later dumps hold at least as much: {counts:?}"
    );
    // The writer really ran while sitesnap worked (else this test proved nothing).
    assert!(
        counts[2] > counts[0],
        "the writer made no progress across three snapshots: {counts:?}"
    );
}

/// The dump runs beside the files: when a file cannot be read while the SQLite copy waits for
/// a database another process holds locked, the copy stops waiting at once, not at the end of
/// its 120 s or when the lock goes. The snapshot ends while the lock is still held, with the
/// file's error, and leaves the repository as it was.
#[test]
fn a_failed_file_stops_an_sqlite_copy_waiting_for_a_lock() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 50);
    let site = w.site("example.com", &p);
    let before = (w.state(), data_files(&w.repo));
    let released = Arc::new(AtomicBool::new(false));
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let (db, released) = (site.db.clone(), released.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch("PRAGMA journal_mode = DELETE; BEGIN EXCLUSIVE;")
                .unwrap();
            locked_tx.send(()).unwrap();
            // Held for 30 s, or until the snapshot is over.
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(30));
            released.store(true, Ordering::SeqCst);
            c.execute_batch("COMMIT;").unwrap();
        })
    };
    locked_rx.recv().unwrap();
    // The read fails 2 s late: the copy waits for the lock by then.
    let r = w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "read-file:3@late-error")],
    );
    let waited = released.load(Ordering::SeqCst);
    let _ = done_tx.send(());
    holder.join().unwrap();
    assert!(
        !waited,
        "the snapshot waited for the lock to go: {}",
        r.stderr
    );
    assert_one_line_error(&r, 1, &["Permission denied", "platforms/drupal-7.98/"]);
    assert_eq!((w.state(), data_files(&w.repo)), before);
    w.run(&["snapshot", "example.com"]).ok();
}

#[test]
fn sqlite_written_during_snapshot_rollback_journal() {
    database_written_during_snapshot(false);
}

#[test]
fn sqlite_written_during_snapshot_wal() {
    database_written_during_snapshot(true);
}

/// Chunks a snapshot refers to: file contents, tree blobs and the dump.
fn snapshot_chunks(repo: &Path, id: &str) -> (HashSet<[u8; 32]>, HashSet<[u8; 32]>) {
    let r = sitesnap::repo::Repo::open(repo, None).unwrap();
    let s = r.cat.resolve_snapshot(id).unwrap();
    let mut platform = HashSet::new();
    let mut own = HashSet::new();
    let add = |set: &mut HashSet<[u8; 32]>, tree: Option<sitesnap::hash::Hash>| {
        if let Some(t) = tree {
            for c in sitesnap::read::blob_chunks(&r, &t).unwrap().0 {
                set.insert(c.0);
            }
            for e in sitesnap::capture::load_tree(&r, &t).unwrap().entries {
                for c in e.chunks {
                    set.insert(c.0);
                }
            }
        }
    };
    add(&mut platform, s.platform_tree);
    add(&mut own, s.site_tree);
    add(&mut own, s.bindings_tree);
    if let Some(d) = s.db_dump {
        for c in sitesnap::read::blob_chunks(&r, &d).unwrap().0 {
            own.insert(c.0);
        }
    }
    (platform, own)
}

/// Stored bytes of the frames holding the chunks of `set` (each frame once; small chunks
/// share frames).
fn clen_sum(repo: &Path, set: &HashSet<[u8; 32]>) -> u64 {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    let mut st = c
        .prepare("SELECT pack_id, offset, clen FROM chunks WHERE hash = ?1")
        .unwrap();
    let frames: HashSet<(i64, i64, i64)> = set
        .iter()
        .map(|h| {
            st.query_row([&h[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
        })
        .collect();
    frames.iter().map(|f| f.2 as u64).sum()
}

fn file_bytes(recs: &[Rec]) -> u64 {
    recs.iter()
        .filter(|r| r.kind == "file")
        .map(|r| r.size)
        .sum()
}

#[test]
fn dedup_and_files_cache() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 3000);
    decorate_platform(&p);
    let a = w.site("example.com", &p);
    let a1 = w.snapshot("example.com");
    let platform_bytes = file_bytes(&live_records(&p, platform_keep));
    assert_eq!(
        a1["bytes_read"].as_u64().unwrap() + a1["db_bytes"].as_u64().unwrap(),
        a1["bytes"].as_u64().unwrap()
    );

    // A second site, added later, on the same platform.
    let b = w.site("shop.example.org", &p);
    let stored_before = stored_bytes(&w.repo);
    let b1 = w.snapshot("shop.example.org");
    let added = b1["bytes_added"].as_u64().unwrap();
    assert_eq!(
        added as i64,
        stored_bytes(&w.repo) - stored_before,
        "bytes_added is what the chunk index grew by"
    );
    let (a_plat, a_own) = snapshot_chunks(&w.repo, a1["id"].as_str().unwrap());
    let (b_plat, b_own) = snapshot_chunks(&w.repo, b1["id"].as_str().unwrap());
    let a_all: HashSet<_> = a_plat.union(&a_own).copied().collect();
    let own_new: HashSet<_> = b_own.difference(&a_all).copied().collect();
    let plat_new: HashSet<_> = b_plat
        .difference(&a_all)
        .filter(|h| !own_new.contains(*h))
        .copied()
        .collect();
    // Frames may hold chunks of both sets: the new frames are counted once, and the platform's
    // share is bounded by the frames its new chunks are in.
    let all_new: HashSet<_> = own_new.union(&plat_new).copied().collect();
    assert_eq!(clen_sum(&w.repo, &all_new), added);
    let own_new_bytes = clen_sum(&w.repo, &own_new);
    let plat_new_bytes = clen_sum(&w.repo, &plat_new);
    eprintln!(
        "second site: platform {platform_bytes} B; added {added} B = site's own {own_new_bytes} B + platform {plat_new_bytes} B ({:.3}%)",
        plat_new_bytes as f64 * 100.0 / platform_bytes as f64
    );
    assert!(
        (plat_new_bytes as f64) < 0.01 * platform_bytes as f64,
        "the second site added {plat_new_bytes} B of platform data, platform is {platform_bytes} B"
    );
    // Only the second site's own files were read: the platform came from the files cache.
    let b_own_files = file_bytes(&live_records(&b.dir, site_keep("site.sqlite")))
        + file_bytes(&live_bindings(&[&b.vhost, &b.alias]));
    assert_eq!(b1["bytes_read"].as_u64().unwrap(), b_own_files);

    // Nothing changed: nothing read, nothing added.
    let a2 = w.snapshot("example.com");
    assert_eq!(a2["bytes_read"], 0, "{a2}");
    assert_eq!(a2["bytes_added"], 0, "{a2}");
    assert!(a2["db_bytes"].as_u64().unwrap() > 0);
    assert_eq!(a2["site_tree"], a1["site_tree"]);
    assert_eq!(a2["db_dump"], a1["db_dump"]);
    assert_eq!(a2["platform_tree"], b1["platform_tree"]);
    assert_snapshot_matches_live(&w, a2["id"].as_str().unwrap(), &p, &a);

    // One platform file changes (same size, new content): exactly that file is read.
    let f = p.join("modules/node/file1001.php");
    let old = fs::read(&f).unwrap();
    let mut new = old.clone();
    new[10] ^= 0x20;
    fs::write(&f, &new).unwrap();
    let a3 = w.snapshot("example.com");
    assert_eq!(a3["bytes_read"].as_u64().unwrap(), new.len() as u64, "{a3}");
    assert_snapshot_matches_live(&w, a3["id"].as_str().unwrap(), &p, &a);

    // One site file grows: exactly that file is read.
    let g = a.dir.join("files/upload7.bin");
    let mut data = fs::read(&g).unwrap();
    data.extend_from_slice(&noise(4242, 5000));
    fs::write(&g, &data).unwrap();
    let a4 = w.snapshot("example.com");
    assert_eq!(
        a4["bytes_read"].as_u64().unwrap(),
        data.len() as u64,
        "{a4}"
    );
    assert_snapshot_matches_live(&w, a4["id"].as_str().unwrap(), &p, &a);

    // A big file with a change in the middle: only the chunks around it are new.
    let big = p.join("themes/bartik/images/hero.jpg");
    let mut hero = fs::read(&big).unwrap();
    hero[1_500_000] ^= 1;
    fs::write(&big, &hero).unwrap();
    let a5 = w.snapshot("example.com");
    assert_eq!(a5["bytes_read"].as_u64().unwrap(), hero.len() as u64);
    assert!(
        a5["bytes_added"].as_u64().unwrap() < (hero.len() as u64) * 3 / 4,
        "a one-byte change re-stored most of a 3 MiB file: {a5}"
    );
    assert_snapshot_matches_live(&w, a5["id"].as_str().unwrap(), &p, &a);
}

/// Runs the binary with umask 000, so nothing it creates is private by accident.
fn run_umask0(w: &World, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sitesnap"));
    c.args(args)
        .env("SITESNAP_REPO", &w.repo)
        .env_remove("SITESNAP_FAILPOINT");
    for (k, v) in env {
        c.env(k, v);
    }
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn repository_is_private_and_secrets_stay_out_of_output() {
    let w = World::new();
    let repo2 = w.path("private-repo");
    let o = run_umask0(&w, &["--repo", repo2.to_str().unwrap(), "init"], &[]);
    assert!(o.status.success());
    assert_private_repo(&repo2);

    let p = w.platform("platforms/drupal-7.98", 400);
    let s = w.site("example.com", &p);
    let w2 = World {
        dir: tempfile::tempdir().unwrap(),
        repo: repo2.clone(),
        pass: None,
    };
    w2.run(&[
        "site",
        "add",
        "example.com",
        "--platform",
        p.to_str().unwrap(),
        "--db",
        &format!("sqlite://{}", s.db.display()),
        "--bind",
        s.vhost.to_str().unwrap(),
        "--bind",
        s.alias.to_str().unwrap(),
    ])
    .ok();
    // A server database whose URL holds a password (its snapshot fails: not supported yet).
    w2.run(&[
        "site",
        "add",
        "db.example.com",
        "--platform",
        p.to_str().unwrap(),
        "--db",
        "mysql://aegir:hunter2@127.0.0.1:3306/site_db",
    ])
    .ok();
    for _ in 0..2 {
        let o = run_umask0(&w2, &["snapshot", "example.com", "--json"], &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        fs::write(s.dir.join("files/new.txt"), fs::read(&s.vhost).unwrap()).unwrap();
    }
    // A crash in the middle of the database dump leaves its temporary copy behind (a new row
    // first: an unchanged SQLite database is not copied again).
    rusqlite::Connection::open(&s.db)
        .unwrap()
        .execute("INSERT INTO variable VALUES ('changed', 'yes')", [])
        .unwrap();
    let o = run_umask0(
        &w2,
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "db-copied")],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("fail point db-copied"));
    assert_private_repo(&repo2);
    for f in ["catalog.sqlite", "lock"] {
        assert!(repo2.join(f).is_file(), "{f}");
    }
    let packs = walkdir::WalkDir::new(repo2.join("data"))
        .min_depth(2)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    assert!(packs >= 2, "packs were written");

    // The vhost's password and the database password never reach any output.
    let id = w2.run(&["list", "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = [
        w2.run(&["list"]),
        w2.run(&["list", "--json"]),
        w2.run(&["list", "example.com"]),
        w2.run(&["show", &id]),
        w2.run(&["show", &id, "--json"]),
        w2.run(&["site", "list"]),
        w2.run(&["site", "list", "--json"]),
        w2.run(&["site", "show", "example.com"]),
        w2.run(&["site", "show", "example.com", "--json"]),
        w2.run(&["site", "show", "db.example.com"]),
        w2.run(&["site", "show", "db.example.com", "--json"]),
        w2.run(&["-v", "snapshot", "example.com"]),
        w2.run(&["snapshot", "example.com", "--json"]),
        w2.run(&["snapshot", "db.example.com"]),
        w2.run(&["snapshot", "--all", "--json"]),
    ];
    for r in &runs {
        for secret in ["s3cret", "hunter2"] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{secret} in output:\n{}\n{}",
                r.stdout,
                r.stderr
            );
        }
    }
    assert!(
        runs[9]
            .stdout
            .contains("mysql://aegir:***@127.0.0.1:3306/site_db"),
        "{}",
        runs[9].stdout
    );
    assert_eq!(runs[13].code, 1);
    // The catalogue (and its WAL) never holds the vhost's content in clear.
    for f in ["catalog.sqlite", "catalog.sqlite-wal"] {
        let path = repo2.join(f);
        if path.exists() {
            let bytes = fs::read(&path).unwrap();
            assert!(
                !bytes.windows(6).any(|x| x == b"s3cret"),
                "{f} holds the vhost password in clear"
            );
        }
    }
    assert_private_repo(&repo2);
}

/// Files change between the walk and the read, as on any live site: some vanish, one becomes a
/// symlink to a secret outside the site, one a FIFO, one is replaced by another file (atomic
/// rename), one shrinks. The snapshot succeeds, never follows the symlink or blocks on the
/// FIFO, and records what it read with the metadata of what it read; a folder that became a
/// symlink to one outside the site is not followed either, nor is one higher up the path. `walked@stop` stops the
/// process (SIGSTOP) right after the walk so the test can change the tree at that moment.
#[test]
fn files_changing_between_walk_and_read() {
    use std::os::unix::fs::symlink;
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    let s = w.site("example.com", &p);
    let churn = s.dir.join("files/churn");
    fs::create_dir_all(&churn).unwrap();
    for i in 0..20 {
        fs::write(churn.join(format!("f{i}")), noise(300 + i, 3000)).unwrap();
    }
    let secret = w.path("secret.txt");
    fs::write(&secret, "TOP SECRET: root's eyes only\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();

    // A folder that becomes a symlink to a folder outside the site, holding files of the
    // same names.
    let moved = s.dir.join("files/moved");
    fs::create_dir_all(&moved).unwrap();
    for i in 0..4 {
        fs::write(moved.join(format!("g{i}")), noise(400 + i, 3000)).unwrap();
    }
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    for i in 0..4 {
        fs::copy(&secret, outside.join(format!("g{i}"))).unwrap();
    }

    // A folder higher up that becomes a symlink: files/deep/sub/h* are read through
    // files/deep, which then leads outside the site to a copy of sub/ holding secrets.
    let deep = s.dir.join("files/deep");
    fs::create_dir_all(deep.join("sub")).unwrap();
    let outside_deep = w.path("outside-deep");
    fs::create_dir_all(outside_deep.join("sub")).unwrap();
    for i in 0..4 {
        fs::write(deep.join(format!("sub/h{i}")), noise(500 + i, 3000)).unwrap();
        fs::copy(&secret, outside_deep.join(format!("sub/h{i}"))).unwrap();
    }

    let stopped = Stopped::at(&w, &["snapshot", "example.com", "--json"], "walked@stop");

    fs::rename(&moved, w.path("moved-away")).unwrap();
    symlink(&outside, &moved).unwrap();
    fs::rename(&deep, w.path("deep-away")).unwrap();
    symlink(&outside_deep, &deep).unwrap();

    for i in 0..10 {
        fs::remove_file(churn.join(format!("f{i}"))).unwrap();
    }
    fs::remove_file(churn.join("f10")).unwrap();
    symlink(&secret, churn.join("f10")).unwrap();
    fs::remove_file(churn.join("f11")).unwrap();
    let fifo = std::ffi::CString::new(churn.join("f11").as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let replacement = churn.join(".f12.new");
    fs::write(&replacement, b"replaced by an atomic rename").unwrap();
    fs::set_permissions(&replacement, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&replacement, churn.join("f12")).unwrap();
    fs::write(churn.join("f13"), b"short").unwrap();

    let out = stopped.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "snapshot failed: {stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rb = restore_read(&w.repo, j[0]["id"].as_str().unwrap());
    let site = rb.site.unwrap();
    let get = |n: &str| {
        site.iter()
            .find(|r| r.path_str() == format!("files/churn/{n}"))
    };
    for i in 0..12 {
        assert!(
            get(&format!("f{i}")).is_none(),
            "f{i} is no longer a regular file"
        );
    }
    let secret_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(fs::read(&secret).unwrap()))
    };
    assert!(
        !site.iter().any(|r| r.sha.as_deref() == Some(&secret_sha)),
        "the snapshot followed a symlink out of the site"
    );
    for gone in ["files/moved/g", "files/deep/sub/h"] {
        assert!(
            !site.iter().any(|r| r.path_str().starts_with(gone)),
            "{gone}*: the files of a folder swapped for a symlink are no longer there"
        );
    }
    let live = live_records(&churn, |_, _| true);
    let live_get = |n: &str| live.iter().find(|r| r.path_str() == n).unwrap().clone();
    for n in ["f12", "f13", "f14", "f19"] {
        let mut want = live_get(n);
        want.path = format!("files/churn/{n}").into_bytes();
        assert_eq!(get(n).unwrap(), &want, "{n} is recorded as it was read");
    }
    // The next snapshot sees the tree as it is now, symlink included (it is not followed).
    let j = w.snapshot("example.com");
    let rb = assert_snapshot_matches_live(&w, j["id"].as_str().unwrap(), &p, &s);
    let f10 = rb
        .site
        .unwrap()
        .into_iter()
        .find(|r| r.path_str() == "files/churn/f10")
        .unwrap();
    assert_eq!(f10.kind, "link");
}

/// Moves `dir` away (beside the world) and puts a symlink to `outside` in its place.
fn swap_for_symlink(w: &World, dir: &Path, outside: &Path, away: &str) {
    fs::rename(dir, w.path(away)).unwrap();
    std::os::unix::fs::symlink(outside, dir).unwrap();
}

/// A folder two levels above platform files (`modules`), and one two levels above files of an
/// extra path (`private/a.test/deep`), each swapped for a symlink to an outside folder holding
/// secrets under the same names, between the walk and the reads: neither the platform tree nor
/// the extra-paths tree holds an outside file, and the files under the swapped folders are left
/// out. The extra path is reached through a symlinked folder inside the platform
/// (`private` -> `store/private`) and its other files are still captured.
#[test]
fn platform_and_extra_folders_swapped_between_walk_and_read() {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", "web");
    let _a = w.composer_site("a.test", &p, "web", &[]);
    // private/ becomes a symlinked folder inside the platform (the extra path goes through it).
    fs::create_dir_all(p.join("store")).unwrap();
    fs::rename(p.join("private"), p.join("store/private")).unwrap();
    std::os::unix::fs::symlink("store/private", p.join("private")).unwrap();
    let secret = w.path("secret.txt");
    fs::write(&secret, "TOP SECRET: root's eyes only\n").unwrap();
    // Platform code two levels below `modules`.
    let modules = p.join("modules");
    let outside_modules = w.path("outside-modules");
    // Extra-path files two levels below private/a.test/deep.
    let deep = p.join("store/private/a.test/deep");
    let outside_deep = w.path("outside-deep");
    for i in 0..4 {
        for (dir, out) in [(&modules, &outside_modules), (&deep, &outside_deep)] {
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::create_dir_all(out.join("sub")).unwrap();
            fs::write(dir.join(format!("sub/h{i}")), noise(600 + i, 3000)).unwrap();
            fs::copy(&secret, out.join(format!("sub/h{i}"))).unwrap();
        }
    }

    let stopped = Stopped::at(&w, &["snapshot", "a.test", "--json"], "walked@stop");
    swap_for_symlink(&w, &modules, &outside_modules, "modules-away");
    swap_for_symlink(&w, &deep, &outside_deep, "deep-away");
    let out = stopped.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "snapshot failed: {stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = stored(&w.repo, j[0]["id"].as_str().unwrap());
    let secret_sha = sha_hex(&fs::read(&secret).unwrap());
    let leaked: Vec<&String> = st
        .iter()
        .filter(|(_, sha)| **sha == secret_sha)
        .map(|(k, _)| k)
        .collect();
    assert!(
        leaked.is_empty(),
        "the snapshot followed a symlink out of the platform: {leaked:?}"
    );
    for gone in ["platform:modules/sub/h", "extra:private/a.test/deep/sub/h"] {
        assert!(
            !st.keys().any(|k| k.starts_with(gone)),
            "{gone}*: the files of a folder swapped for a symlink are no longer there"
        );
    }
    for kept in [
        "extra:private/a.test/secret.txt",
        "extra:private/a.test/exports/report.csv",
        "platform:composer.json",
    ] {
        assert!(st.contains_key(kept), "{kept} missing from {:?}", st.keys());
    }
}

/// The database URL reaches the site through a symlinked platform path: the database file is
/// still captured only through the backup API, never as a plain file.
#[test]
fn database_named_through_a_symlink_is_not_captured_as_a_file() {
    use std::os::unix::fs::symlink;
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 50);
    let s = make_site(w.dir.path(), "example.com", &p);
    let current = w.path("platforms/current");
    symlink(&p, &current).unwrap();
    let db = format!(
        "sqlite://{}/sites/example.com/site.sqlite",
        current.display()
    );
    w.run(&[
        "site",
        "add",
        "example.com",
        "--platform",
        p.to_str().unwrap(),
        "--db",
        &db,
    ])
    .ok();
    let j = w.snapshot("example.com");
    let rb = restore_read(&w.repo, j["id"].as_str().unwrap());
    let names = paths(rb.site.as_ref().unwrap());
    assert!(
        !names.iter().any(|n| n.starts_with("site.sqlite")),
        "{names:?}"
    );
    assert_same_records(
        "site tree",
        rb.site.as_deref().unwrap(),
        &live_records(&s.dir, site_keep("site.sqlite")),
    );
    let dump = dump_to_db(rb.dump.as_deref().unwrap(), &w.path("dump.sqlite"));
    assert_eq!(sqlite_rows(&dump, "node"), sqlite_rows(&s.db, "node"));
}

/// The files-cache rows of the platform load on a second catalogue connection while the walk
/// runs. When that loader fails on its own, the snapshot fails with one line saying why, and
/// the repository is exactly as before: the failure comes before any write.
#[test]
fn a_failing_files_cache_loader_fails_the_snapshot_and_changes_nothing() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    w.site("example.com", &p);
    w.run(&["snapshot", "example.com"]).ok();
    fs::write(
        p.join("index.php"),
        "<?php // changed since the first snapshot\n",
    )
    .unwrap();
    let before = w.state();
    // Every file but the writer lock, whose mtime each locking command moves (it writes its
    // name there and empties it again): in a run that crossed a second, it differed.
    let repo_files = || listing_filtered(&w.repo, |p| p != Path::new("lock"));
    let files_before = repo_files();

    let r = w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "cache-loader@error")],
    );
    assert_one_line_error(&r, 1, &["cache-loader"]);
    assert_eq!(w.state(), before, "the catalogue changed");
    assert_eq!(repo_files(), files_before, "the repository's files changed");
    assert_eq!(
        fs::read(w.repo.join("lock")).unwrap(),
        b"",
        "the lock was left held"
    );

    // Without the failure the same snapshot goes through, and the repository verifies.
    w.run(&["snapshot", "example.com"]).ok();
    w.run(&["verify"]).ok();
}

/// The files cache is only a shortcut: when folders' cache blobs are damaged (cut short, a
/// wrong version, garbage), the next snapshot reads those files again, stores the same trees,
/// and writes the blobs anew, so the one after reads nothing.
#[test]
fn damaged_files_cache_blobs_mean_reading_again() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 300);
    let a = w.site("example.com", &p);
    let s1 = w.snapshot("example.com");
    let all = s1["bytes_read"].as_u64().unwrap();
    assert!(all > 0);
    let c = rusqlite::Connection::open(w.repo.join("catalog.sqlite")).unwrap();
    let damaged = c
        .execute(
            "UPDATE cache_dirs SET files = CASE id % 3
                 WHEN 0 THEN substr(files, 1, length(files) - 5)
                 WHEN 1 THEN X'02' || substr(files, 2)
                 ELSE X'01FFFFFFFFFFFFFFFFFFFF01' END
             WHERE files IS NOT NULL",
            [],
        )
        .unwrap();
    assert!(damaged > 3, "{damaged} folders");
    drop(c);
    let s2 = w.snapshot("example.com");
    assert!(s2["bytes_read"].as_u64().unwrap() > 0, "{s2}");
    assert_eq!(s2["bytes_added"], 0, "{s2}");
    assert_eq!(s2["platform_tree"], s1["platform_tree"]);
    assert_eq!(s2["site_tree"], s1["site_tree"]);
    assert_snapshot_matches_live(&w, s2["id"].as_str().unwrap(), &p, &a);
    let s3 = w.snapshot("example.com");
    assert_eq!(s3["bytes_read"], 0, "{s3}");
    w.run(&["verify"]).ok();
}

/// The store objects of a repository but its packs (`data/<xx>/`, gc's to remove): blob
/// lists, pins, site objects and manifests, files only (an emptied fan-out folder stays).
fn store_objects(w: &World) -> Vec<String> {
    let mut l = listing_filtered(&w.repo.join("data"), |p| {
        let s = p.to_string_lossy();
        ["blobs", "pins", "sites", "snapshots"]
            .iter()
            .any(|k| s.starts_with(k))
    });
    l.retain(|e| !e.contains(" dir "));
    l
}

/// The catalogue's state but for packs and chunks: packs a failed run wrote stay indexed, and
/// are garbage for gc (invariant 1).
fn state_but_packs(w: &World) -> CatalogState {
    let mut s = w.state();
    s.counts.retain(|(t, _)| t != "packs" && t != "chunks");
    s
}

/// The files-cache rows are written inside the snapshot's catalogue transaction, after its
/// manifest and blob lists are durable in the store. When that write FAILS, the snapshot
/// fails with one line naming the step, and neither the catalogue nor the store tells of it:
/// no snapshot row, the files cache as before, and the manifest and blob lists written for it
/// taken back (else `verify` would report the two out of step, `gc` would refuse, and `repair
/// catalog` would bring back a snapshot the command said failed).
#[test]
fn a_failing_files_cache_write_in_the_commit_leaves_no_snapshot_anywhere() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    w.site("example.com", &p);
    w.run(&["snapshot", "example.com"]).ok();
    fs::write(p.join("index.php"), "<?php // changed\n").unwrap();
    let before = state_but_packs(&w);
    let objects_before = store_objects(&w);

    let r = w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "cache-written@error")],
    );
    assert_one_line_error(&r, 1, &["cache-written"]);
    assert_eq!(state_but_packs(&w), before, "the catalogue changed");
    assert_eq!(
        store_objects(&w),
        objects_before,
        "objects of the failed snapshot were left"
    );
    w.run(&["verify"]).ok();
    w.run(&["gc"]).ok();
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(
        w.snapshot_count(),
        1,
        "repair brought a failed snapshot back"
    );

    w.run(&["snapshot", "example.com"]).ok();
    assert_eq!(w.snapshot_count(), 2);
    w.run(&["verify"]).ok();
}

/// A `snapshot --all` batch commits its sites' rows in one transaction: when the second
/// site's files-cache write fails, no site's snapshot lands, in the catalogue or the store.
#[test]
fn a_failing_commit_of_a_batch_takes_back_every_site_of_it() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 100);
    w.site("a.example", &p);
    w.site("b.example", &p);
    w.run(&["snapshot", "--all"]).ok();
    fs::write(p.join("index.php"), "<?php // changed\n").unwrap();
    let before = state_but_packs(&w);
    let objects_before = store_objects(&w);

    let r = w.run_env(
        &["snapshot", "--all"],
        &[("SITESNAP_FAILPOINT", "cache-written:2@error")],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cache-written"), "{}", r.stderr);
    assert_eq!(state_but_packs(&w), before, "the catalogue changed");
    assert_eq!(
        store_objects(&w),
        objects_before,
        "objects of the failed batch were left"
    );
    w.run(&["verify"]).ok();
    w.run(&["snapshot", "--all"]).ok();
    assert_eq!(w.snapshot_count(), 4);
}

/// When taking the objects back fails too, the one line says both and what to run; the store
/// is then ahead of the catalogue (as after a kill), `verify` says so, and `repair catalog`
/// adopts the snapshot, whose data is complete.
#[test]
fn a_take_back_that_fails_too_is_named_and_repair_adopts_the_snapshot() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 100);
    w.site("example.com", &p);
    w.run(&["snapshot", "example.com"]).ok();
    fs::write(p.join("index.php"), "<?php // changed\n").unwrap();
    let r = w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "cache-written@error,store-undo@error")],
    );
    assert_one_line_error(
        &r,
        1,
        &[
            "cache-written",
            "taking back",
            "store-undo",
            "repair catalog",
        ],
    );
    assert_eq!(w.snapshot_count(), 1);
    let v = w.run(&["verify"]).fails(1);
    assert!(
        v.stdout.contains("unknown to the catalogue"),
        "{}",
        v.stdout
    );
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(w.snapshot_count(), 2);
    w.run(&["verify", "--read-data"]).ok();
}
