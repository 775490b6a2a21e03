//! Invariant 1: a snapshot becomes visible only when all its data is durable. `sitesnap
//! snapshot` is killed with SIGKILL at every fail point (env `SITESNAP_FAILPOINT`, debug builds)
//! and at random moments of a multi-pack snapshot. After each kill: every earlier snapshot
//! reads back exactly as it was, no half snapshot is listed (`after-commit` leaves exactly one
//! complete new one), the chunk index names only chunks that are in durable pack files at the
//! place the pack's own header says, and the next snapshot succeeds despite the stale lock.
use crate::support::*;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// What a snapshot reads back as.
#[derive(Debug, PartialEq)]
struct Snap {
    platform: Option<Vec<Rec>>,
    site: Option<Vec<Rec>>,
    bindings: Option<Vec<Rec>>,
    dump: Option<Vec<u8>>,
}

fn read_snap(w: &World, id: &str) -> Snap {
    let rb = restore_read(&w.repo, id);
    Snap {
        platform: rb.platform,
        site: rb.site,
        bindings: rb.bindings,
        dump: rb.dump,
    }
}

/// Snapshots known to be committed, by id, with what they read back as when taken.
type Known = BTreeMap<String, Snap>;

/// The chunk index only names chunks that exist: each chunk row's pack row exists, its pack
/// file exists with the recorded size, the pack's own header lists the chunk at the same place,
/// and the chunk reads back and matches its hash.
fn check_index(repo: &Path) {
    let c = rusqlite::Connection::open(repo.join("catalog.sqlite")).unwrap();
    let orphans: i64 = c
        .query_row(
            "SELECT count(*) FROM chunks WHERE pack_id NOT IN (SELECT id FROM packs)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "chunks whose pack is not indexed");
    let mut st = c.prepare("SELECT id, name, size FROM packs").unwrap();
    let packs: Vec<(i64, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let r = sitesnap::repo::Repo::open(repo, None).unwrap();
    let mut reader = sitesnap::store::ChunkReader::new(&r.data_dir(), &r.cat);
    let mut n = 0;
    for (id, name, size) in packs {
        let path = sitesnap::store::pack_path(&repo.join("data"), &name);
        let md =
            fs::metadata(&path).unwrap_or_else(|e| panic!("indexed pack {name} has no file: {e}"));
        assert_eq!(md.len() as i64, size, "size of pack {name}");
        let header: HashMap<[u8; 32], sitesnap::store::PackEntry> =
            sitesnap::store::read_pack_header(&path)
                .unwrap()
                .into_iter()
                .map(|e| (e.hash.0, e))
                .collect();
        let mut st = c
            .prepare("SELECT hash, offset, clen, ulen, inner_offset FROM chunks WHERE pack_id = ?1")
            .unwrap();
        let rows: Vec<(Vec<u8>, i64, i64, i64, i64)> = st
            .query_map([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (hash, offset, clen, ulen, inner) in rows {
            let h: [u8; 32] = hash.try_into().unwrap();
            let e = header
                .get(&h)
                .unwrap_or_else(|| panic!("pack {name}'s header lacks an indexed chunk"));
            assert_eq!(
                (
                    e.offset as i64,
                    e.clen as i64,
                    e.ulen as i64,
                    e.inner as i64
                ),
                (offset, clen, ulen, inner)
            );
            let data = reader.read(&sitesnap::hash::Hash(h)).unwrap();
            assert_eq!(data.len() as i64, ulen);
            n += 1;
        }
    }
    assert!(n > 0);
}

/// Every known snapshot is listed and reads back as it did; nothing else is listed.
fn check_known(w: &World, known: &Known) {
    let list = w.run(&["list", "--json"]).ok().json();
    let mut listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        known.keys().cloned().collect::<Vec<_>>(),
        "listed snapshots"
    );
    for (id, want) in known {
        assert!(
            read_snap(w, id) == *want,
            "snapshot {id} no longer reads back as taken"
        );
    }
    check_index(&w.repo);
}

fn ids(w: &World) -> Vec<String> {
    w.state().snapshot_ids
}

/// Takes a normal snapshot after a crash: it succeeds, reads back as the live site, and is
/// added to `known`. Returns its JSON record.
fn snapshot_after_crash(
    w: &World,
    p: &Path,
    site: &Site,
    known: &mut Known,
    stale_lock: bool,
) -> serde_json::Value {
    let r = w.run(&["snapshot", &site.uri, "--json"]).ok();
    if stale_lock {
        assert!(
            r.stderr.contains("stale lock"),
            "no stale-lock notice: {}",
            r.stderr
        );
    }
    let j = r.json()[0].clone();
    let id = j["id"].as_str().unwrap().to_string();
    assert_snapshot_matches_live(w, &id, p, site);
    known.insert(id.clone(), read_snap(w, &id));
    j
}

/// New content for the next round: files in the site and rows in its database.
fn grow(site: &Site, round: u64, files: usize, size: usize) -> u64 {
    let d = site.dir.join(format!("files/round{round}"));
    fs::create_dir_all(&d).unwrap();
    let mut total = 0;
    for i in 0..files {
        let data = noise(round * 1000 + i as u64, size + i * 37);
        total += data.len() as u64;
        fs::write(d.join(format!("f{i}.bin")), data).unwrap();
    }
    let c = rusqlite::Connection::open(&site.db).unwrap();
    for i in 0..50 {
        c.execute(
            "INSERT INTO node (title, body) VALUES (?1, ?2)",
            rusqlite::params![
                format!("round {round} node {i}"),
                noise(round * 77 + i, 400)
            ],
        )
        .unwrap();
    }
    total
}

#[test]
fn sigkill_at_every_fail_point() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 600);
    let site = w.site("example.com", &p);
    let mut known = Known::new();
    let first = w.snapshot("example.com");
    let id = first["id"].as_str().unwrap().to_string();
    assert_snapshot_matches_live(&w, &id, &p, &site);
    known.insert(id.clone(), read_snap(&w, &id));

    let points = [
        "chunk-stored:1",
        "chunk-stored:17",
        "pack-written",
        "pack-indexed",
        "files-stored",
        "db-copied",
        "db-stored",
        "before-commit",
        "after-commit",
    ];
    for (round, point) in points.iter().enumerate() {
        let new_bytes = grow(&site, round as u64 + 1, 30, 20_000);
        let before = ids(&w);
        let (status, _, stderr) = w.run_status(
            &["snapshot", "example.com", "--json"],
            &[("SITESNAP_FAILPOINT", point)],
        );
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{point}: the fail point did not fire: {stderr}"
        );
        let name = point.split(':').next().unwrap();
        assert!(
            stderr.contains(&format!("fail point {name} reached")),
            "{stderr}"
        );
        let lock = fs::read_to_string(w.repo.join("lock")).unwrap();
        assert!(
            lock.contains("snapshot"),
            "the killed holder is still named: {lock}"
        );
        let after = ids(&w);
        if *point == "after-commit" {
            let new: Vec<&String> = after.iter().filter(|i| !before.contains(i)).collect();
            assert_eq!(new.len(), 1, "after-commit leaves exactly one new snapshot");
            let id = new[0].clone();
            assert_snapshot_matches_live(&w, &id, &p, &site);
            known.insert(id.clone(), read_snap(&w, &id));
        } else {
            assert_eq!(
                after, before,
                "{point}: a half snapshot is in the catalogue"
            );
        }
        check_known(&w, &known);
        let j = snapshot_after_crash(&w, &p, &site, &mut known, true);
        // The files cache becomes valid only with its snapshot: after a crash before the
        // commit the new files are read again; after the commit nothing is.
        let want_read = if *point == "after-commit" {
            0
        } else {
            new_bytes
        };
        assert_eq!(j["bytes_read"].as_u64().unwrap(), want_read, "{point}: {j}");
        check_known(&w, &known);
    }
    assert_private_repo(&w.repo);
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n.max(1)
}

#[test]
fn sigkill_during_a_multi_pack_snapshot() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    let site = w.site("example.com", &p);
    let mut known = Known::new();
    let big = site.dir.join("files/video.bin");
    // More than two packs (16 MiB each) of new, incompressible data per round.
    let put_big = |round: u64| fs::write(&big, noise(round + 5000, 36 << 20)).unwrap();
    put_big(0);
    let first = w.snapshot("example.com");
    let id = first["id"].as_str().unwrap().to_string();
    assert_snapshot_matches_live(&w, &id, &p, &site);
    known.insert(id.clone(), read_snap(&w, &id));
    let packs_first: i64 = w.state().counts.iter().find(|c| c.0 == "packs").unwrap().1;
    assert!(
        packs_first >= 2,
        "the first snapshot filled more than one pack"
    );

    // Fail points in the middle: the first pack is durable (and maybe indexed), more follow.
    for (round, point) in ["pack-written:1", "pack-indexed:1", "chunk-stored:19"]
        .iter()
        .enumerate()
    {
        put_big(round as u64 + 1);
        let before = ids(&w);
        let (status, _, stderr) = w.run_status(
            &["snapshot", "example.com"],
            &[("SITESNAP_FAILPOINT", point)],
        );
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{point}: {stderr}");
        assert_eq!(ids(&w), before, "{point}: a half snapshot is listed");
        check_known(&w, &known);
        let j = snapshot_after_crash(&w, &p, &site, &mut known, true);
        if *point == "pack-indexed:1" {
            // The pack indexed before the crash is reused, not written again.
            assert!(
                j["bytes_added"].as_u64().unwrap() < (36 << 20) - (8 << 20),
                "{j}"
            );
        }
        check_known(&w, &known);
    }

    // External SIGKILLs at random moments of the same kind of snapshot: one in each quarter
    // of the time the first one took.
    let span = first["duration_ms"].as_u64().unwrap().max(40);
    for round in 10..14u64 {
        put_big(round);
        let before = ids(&w);
        let quarter = span / 4;
        let delay = (round - 10) * quarter + random_below(quarter);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sitesnap"))
            .args(["snapshot", "example.com"])
            .env("SITESNAP_REPO", &w.repo)
            .env_remove("SITESNAP_FAILPOINT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let after = ids(&w);
        let new: Vec<&String> = after.iter().filter(|i| !before.contains(i)).collect();
        eprintln!(
            "random kill after {delay} ms of ~{span}: {:?}, {} new snapshot(s)",
            out.status,
            new.len()
        );
        if out.status.success() || !new.is_empty() {
            // It finished (or committed) before the kill: the snapshot is complete.
            assert_eq!(new.len(), 1);
            let id = new[0].clone();
            assert_snapshot_matches_live(&w, &id, &p, &site);
            known.insert(id.clone(), read_snap(&w, &id));
        } else {
            assert_eq!(out.status.signal(), Some(libc::SIGKILL));
        }
        check_known(&w, &known);
        snapshot_after_crash(&w, &p, &site, &mut known, false);
        check_known(&w, &known);
    }
    assert_private_repo(&w.repo);
}
