//! What a capture skips because it provably has not changed: a platform is walked and read once
//! per `snapshot --all` run, and an unchanged SQLite database is not copied again. The
//! `db-copied` fail point (it kills the process right after a SQLite copy is made) shows whether
//! a copy was made; `walked:2@stop` stops a run after its second site's walk so the test can
//! change the platform. Several sites are committed in batches: a crash in a batch leaves
//! manifests that `repair catalog` adopts, never a catalogue row without its objects.
use crate::support::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// Runs `args` with a fail point; returns (exit status, stderr).
fn run_failpoint(w: &World, args: &[&str], point: &str) -> (std::process::ExitStatus, String) {
    let o = Command::new(bin())
        .args(args)
        .env("SITESNAP_REPO", &w.repo)
        .env("SITESNAP_FAILPOINT", point)
        .env_remove("SITESNAP_TEST_NOW")
        .output()
        .unwrap();
    (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The second snapshot of an untouched SQLite site takes no copy of its database (a copy would
/// hit the fail point and be killed) and records the same dump, which restores the same rows.
/// One committed row later, the database is copied again, and the new row is in the snapshot.
#[test]
fn an_unchanged_sqlite_database_is_not_copied_again() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 50);
    let s = w.site("example.com", &p);
    let first = w.snapshot("example.com");
    let (st, err) = run_failpoint(&w, &["snapshot", "example.com"], "db-copied");
    assert!(
        st.success(),
        "an unchanged database was copied again: {err}"
    );
    let list = w.run(&["list", "example.com", "--json"]).ok().json();
    let snaps = list.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|j| j["db_dump"] == first["db_dump"]));
    let second = snaps
        .iter()
        .find(|j| j["id"] != first["id"])
        .unwrap()
        .clone();

    let rows_before = sqlite_rows(&s.db, "node");
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.execute(
        "INSERT INTO node (title, body) VALUES ('added later', x'00')",
        [],
    )
    .unwrap();
    drop(c);
    let (st, err) = run_failpoint(&w, &["snapshot", "example.com"], "db-copied");
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "a changed database was not copied: {err}"
    );
    let third = w.snapshot("example.com");
    assert_ne!(third["db_dump"], first["db_dump"]);

    // The reused dump restores the rows it was taken with; the new one has the new row.
    w.run(&["restore", second["id"].as_str().unwrap(), "--yes"])
        .ok();
    assert_eq!(sqlite_rows(&s.db, "node"), rows_before);
    w.run(&["restore", third["id"].as_str().unwrap(), "--yes"])
        .ok();
    let rows = sqlite_rows(&s.db, "node");
    assert_eq!(rows.len(), rows_before.len() + 1);
    assert!(rows.iter().any(|r| r.contains("added later")));
}

/// A WAL-mode database whose recent commits are still in its `-wal` file is copied every time:
/// the main file alone does not show them.
#[test]
fn a_sqlite_database_with_commits_in_its_wal_is_copied() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 50);
    let s = w.site("example.com", &p);
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    w.snapshot("example.com");
    c.execute(
        "INSERT INTO node (title, body) VALUES ('in the wal', x'00')",
        [],
    )
    .unwrap();
    let wal = s.db.with_file_name("site.sqlite-wal");
    assert!(
        fs::metadata(&wal).unwrap().len() > 0,
        "the commit is not in the WAL"
    );
    let (st, err) = run_failpoint(&w, &["snapshot", "example.com"], "db-copied");
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "a WAL with commits was not copied: {err}"
    );
    let j = w.snapshot("example.com");
    drop(c);
    let site = s.dir.clone();
    w.run(&["restore", j["id"].as_str().unwrap(), "--yes"]).ok();
    assert!(
        sqlite_rows(&site.join("site.sqlite"), "node")
            .iter()
            .any(|r| r.contains("in the wal"))
    );
}

/// `snapshot --all` reads a platform once: the sites of one run record the platform as the run
/// found it at its first site, even when a platform file changes after that site was captured
/// (the run is stopped after the second site's walk). The next run records the change, and
/// every snapshot restores.
#[test]
fn snapshot_all_reads_each_platform_once_per_run() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    let q = w.platform("platforms/drupal-7.99", 100);
    for u in ["a.example.com", "b.example.com", "c.example.com"] {
        w.site(u, &p);
    }
    w.site("d.example.com", &q);
    let stopped = Stopped::at(&w, &["snapshot", "--all", "--json"], "walked:2@stop");
    let changed = p.join("includes/changed-mid-run.inc");
    fs::write(&changed, "<?php // written while the run was stopped\n").unwrap();
    let out = stopped.resume();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tree_of = |j: &serde_json::Value, uri: &str| {
        j.as_array()
            .unwrap()
            .iter()
            .find(|s| s["site"] == uri)
            .unwrap()["platform_tree"]
            .clone()
    };
    let a = tree_of(&run, "a.example.com");
    assert_eq!(tree_of(&run, "b.example.com"), a);
    assert_eq!(tree_of(&run, "c.example.com"), a);
    assert_ne!(
        tree_of(&run, "d.example.com"),
        a,
        "another platform, another tree"
    );

    let next = w.run(&["snapshot", "--all", "--json"]).ok().json();
    let a2 = tree_of(&next, "a.example.com");
    assert_ne!(a2, a, "the next run did not see the platform change");
    assert_eq!(tree_of(&next, "c.example.com"), a2);

    // A snapshot that used the shared tree restores the platform it recorded.
    let b = next
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["site"] == "b.example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(&changed).unwrap();
    w.run(&["restore", &b, "--yes", "--repair-platform"]).ok();
    assert!(
        changed.exists(),
        "the restored platform lacks the file of its snapshot"
    );
    w.run(&["verify", "--read-data"]).ok();
}

/// A platform of `files` code files with `n` sites on it (a.example.com, b.example.com, ...).
fn sites_on_one_platform(w: &World, files: usize, n: usize) -> (std::path::PathBuf, Vec<Site>) {
    let p = w.platform("platforms/drupal-7.98", files);
    let sites = (0..n)
        .map(|i| w.site(&format!("{}.example.com", (b'a' + i as u8) as char), &p))
        .collect();
    (p, sites)
}

/// Runs `snapshot --all` with `env` and the killing fail point `point`, and checks that the
/// run was killed there.
fn snapshot_all_killed_at(w: &World, point: &str, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.push(("SITESNAP_FAILPOINT", point));
    let (status, _, stderr) = w.run_status(&["snapshot", "--all"], &env);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{env:?}: {stderr}");
}

/// A `snapshot --all` run killed while it commits a batch (after its blob lists, then after its
/// manifests) adds no catalogue row: the store is ahead, never behind. After the manifests,
/// `repair catalog` adopts every snapshot of the batch and each one restores; the next run
/// works either way.
#[test]
fn a_run_killed_in_its_batched_commit_leaves_the_store_ahead_and_repair_adopts_it() {
    for point in ["blob-lists-written", "manifest-written"] {
        let w = World::new();
        let (p, sites) = sites_on_one_platform(&w, 100, 3);
        snapshot_all_killed_at(&w, point, &[]);
        assert_eq!(
            w.snapshot_count(),
            0,
            "{point}: a row came before its objects"
        );
        if point == "manifest-written" {
            w.run(&["verify"]).fails(1);
            w.run(&["repair", "catalog"]).ok();
            assert_eq!(w.snapshot_count(), 3, "{point}: repair adopted the batch");
            let list = w.run(&["list", "--json"]).ok().json();
            for j in list.as_array().unwrap() {
                let id = j["id"].as_str().unwrap();
                let s = sites.iter().find(|s| j["site"] == s.uri.as_str()).unwrap();
                assert_snapshot_matches_live(&w, id, &p, s);
            }
        }
        w.run(&["snapshot", "--all"]).ok();
        w.run(&["verify", "--read-data"]).ok();
    }
}

/// Files directly in the fan-out folders under `dir` (`data/blobs`, `data/snapshots`).
fn objects_under(dir: &std::path::Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .filter(|d| d.path().is_dir())
        .map(|d| fs::read_dir(d.path()).unwrap().count())
        .sum()
}

/// A batch's objects are written to temporary files, made durable together, then renamed
/// group by group: a run killed once they are written (`objects-staged`) has nothing visible
/// (only temporary files, which gc removes); one killed after the blob lists has blob lists
/// and no manifest; one killed after the manifests has every manifest. No catalogue row in any
/// case, the repository verifies (after `repair catalog` for the manifests), and the next run
/// and gc leave it whole.
#[test]
fn a_run_killed_while_its_batch_is_made_durable_recovers() {
    for point in ["objects-staged", "blob-lists-written", "manifest-written"] {
        let w = World::new();
        sites_on_one_platform(&w, 60, 3);
        snapshot_all_killed_at(&w, point, &[]);
        assert_eq!(
            w.snapshot_count(),
            0,
            "{point}: a row came before its objects"
        );
        let data = w.repo.join("data");
        let (lists, manifests) = (
            objects_under(&data.join("blobs")),
            objects_under(&data.join("snapshots")),
        );
        let temps = fs::read_dir(data.join("tmp")).unwrap().count();
        // Three manifests, and at least the shared platform tree's blob list.
        let want = match point {
            "objects-staged" => lists == 0 && manifests == 0 && temps >= 4,
            "blob-lists-written" => lists >= 1 && manifests == 0 && temps == 3,
            _ => lists >= 1 && manifests == 3 && temps == 0,
        };
        assert!(
            want,
            "{point}: {lists} blob lists, {manifests} manifests, {temps} temporary files"
        );
        if point == "manifest-written" {
            w.run(&["verify"]).fails(1);
            w.run(&["repair", "catalog"]).ok();
            assert_eq!(w.snapshot_count(), 3, "{point}: repair adopted the batch");
        }
        w.run(&["verify"]).ok();
        w.run(&["snapshot", "--all"]).ok();
        w.run(&["gc"]).ok();
        let temps = fs::read_dir(data.join("tmp")).unwrap().count();
        assert_eq!(temps, 0, "{point}: gc left temporary files");
        w.run(&["verify", "--read-data"]).ok();
    }
}

/// `snapshot --all` captures a batch of sites through one chunk sink: the new data of five
/// small sites lands in one pack (one wait for durability instead of five), each snapshot
/// still reports the bytes it added itself, and each reads back exactly.
#[test]
fn a_batch_of_sites_shares_its_packs() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 100);
    let sites: Vec<Site> = (1..=5)
        .map(|i| w.site(&format!("s{i}.example.com"), &p))
        .collect();
    for (i, s) in sites.iter().enumerate() {
        fs::write(s.dir.join("files/own.bin"), noise(900 + i as u64, 200_000)).unwrap();
    }
    let run = w.run(&["snapshot", "--all", "--json"]).ok().json();
    let packs = w.state().counts.iter().find(|c| c.0 == "packs").unwrap().1;
    assert_eq!(packs, 1, "the run's sites share one pack");
    let snaps = run.as_array().unwrap();
    assert_eq!(snaps.len(), 5);
    let added: Vec<u64> = snaps
        .iter()
        .map(|j| j["bytes_added"].as_u64().unwrap())
        .collect();
    // Each site's own incompressible file is counted once, by its own snapshot.
    assert!(added.iter().all(|&b| b >= 200_000), "{added:?}");
    assert!(added[1..].iter().all(|&b| b < 300_000), "{added:?}");
    for j in snaps {
        let s = sites.iter().find(|s| j["site"] == s.uri.as_str()).unwrap();
        assert_snapshot_matches_live(&w, j["id"].as_str().unwrap(), &p, s);
    }
    w.run(&["verify", "--read-data"]).ok();
}

/// A site whose capture fails in the middle of a batch (its files are stored, then its
/// database turns out not to be one) costs only itself: the sites before and after it are committed
/// and read back exactly, the run exits 1 naming it, and the repository verifies, also after
/// gc collected what the failed capture left.
#[test]
fn a_site_failing_in_a_batch_leaves_the_others_whole() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 100);
    let sites: Vec<Site> = ["a.example.com", "b.example.com", "c.example.com"]
        .iter()
        .map(|u| w.site(u, &p))
        .collect();
    for (i, s) in sites.iter().enumerate() {
        fs::write(s.dir.join("files/own.bin"), noise(700 + i as u64, 150_000)).unwrap();
    }
    // Stop the run once the second site's trees are walked (its dump starts after that,
    // beside its files), then make its database unreadable: its dump fails.
    let stopped = Stopped::at(&w, &["snapshot", "--all"], "walked:2@stop");
    fs::write(&sites[1].db, noise(5, 64 << 10)).unwrap();
    let out = stopped.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("b.example.com"), "{stderr}");
    assert!(stderr.contains("1 of 3 site(s) failed"), "{stderr}");
    let list = w.run(&["list", "--json"]).ok().json();
    let mut listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["site"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["a.example.com", "c.example.com"]);
    let check = |w: &World| {
        for j in w.run(&["list", "--json"]).ok().json().as_array().unwrap() {
            let s = sites.iter().find(|s| j["site"] == s.uri.as_str()).unwrap();
            assert_snapshot_matches_live(w, j["id"].as_str().unwrap(), &p, s);
        }
        w.run(&["verify", "--read-data"]).ok();
    };
    check(&w);
    w.run(&["gc"]).ok();
    check(&w);
}

/// `snapshot --all` commits its sites in batches: a batch is committed once it holds the
/// batch's number of sites, or earlier once its sites hold the row limit of new files-cache
/// rows. Killed right after its first commit, a run has committed exactly that first batch
/// (limits lowered through the debug builds' test variables; release builds use 64 sites and
/// 100,000 rows).
#[test]
fn snapshot_all_commits_in_batches_of_sites_and_of_rows() {
    let committed_at_first_commit = |env: &[(&str, &str)]| {
        let w = World::new();
        sites_on_one_platform(&w, 30, 5);
        snapshot_all_killed_at(&w, "after-commit", env);
        let n = w.snapshot_count();
        // The run's snapshots that were committed restore-ready: the repository verifies.
        w.run(&["verify"]).ok();
        n
    };
    assert_eq!(
        committed_at_first_commit(&[("SITESNAP_TEST_COMMIT_BATCH", "2")]),
        2
    );
    assert_eq!(
        committed_at_first_commit(&[("SITESNAP_TEST_COMMIT_BATCH", "3")]),
        3
    );
    // Every site brings new files-cache rows: a limit of one row commits each site alone.
    assert_eq!(
        committed_at_first_commit(&[("SITESNAP_TEST_COMMIT_ROWS", "1")]),
        1
    );
    // Under the default limits the five sites are one batch.
    assert_eq!(committed_at_first_commit(&[]), 5);
}
