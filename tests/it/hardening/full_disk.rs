//! A repository on a full disk: a snapshot that runs out of room fails in one line and adds no
//! snapshot; with an unfinished upload in `data/tmp` (what a writer killed mid-pack leaves) and
//! not one
//! byte free, `verify` and `gc` still take the lock (its holder line is best effort), remove
//! what is in `data/tmp`, and the repository verifies; with room again, snapshots work.
use super::*;
use std::fs;

const URI: &str = "full.example.org";

fn tmp_entries(w: &World) -> Vec<String> {
    fs::read_dir(w.repo.join("data/tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What a writer killed (or stopped by a full disk) in the middle of a pack leaves: a partial
/// `data/tmp/pack-*` upload (named as the store names its uploads).
fn plant_unfinished_pack(w: &World) {
    let tmp = w.repo.join("data/tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join("pack-0123456789abcdef"), noise(14, 256 << 10)).unwrap();
}

/// A world whose repository is on a 6 MiB tmpfs, with the handle that unmounts it (bind it
/// after the world, so it is dropped first and unmounts before the world's folder is
/// removed); `None` (skipped, with a message) when not root.
fn world_on_small_disk() -> Option<(World, SmallDisk)> {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; skipped");
        return None;
    }
    let w = World::with_repo_at("small/repo", |dir| {
        std::mem::forget(SmallDisk::mount(&dir.join("small"), "6m"));
    });
    let disk = SmallDisk(w.path("small"));
    Some((w, disk))
}

#[test]
fn a_full_disk_fails_a_snapshot_cleanly_and_gc_and_verify_still_run() {
    let Some((w, disk)) = world_on_small_disk() else {
        return;
    };
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    w.snapshot(URI);
    let count = w.snapshot_count();

    // A file that cannot fit: the snapshot fails in one line and adds nothing.
    plant_unfinished_pack(&w);
    fs::write(site.dir.join("files/big.bin"), noise(11, 8 << 20)).unwrap();
    let r = w.run(&["snapshot", URI]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("No space left on device") || r.stderr.contains("disk is full"),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), count);
    fs::remove_file(site.dir.join("files/big.bin")).unwrap();

    // Not one byte free (an unfinished pack, what the failed snapshot left, a filler):
    // verify and gc still run and clean data/tmp. SQLite needs its shared-memory file, which
    // cannot be made with no byte free: a reader holds the catalogue open, so it exists.
    let reader = w.catalog();
    reader
        .query_row("SELECT count(*) FROM snapshots", [], |r| r.get::<_, i64>(0))
        .unwrap();
    disk.leave_free(0);
    assert!(free_bytes(&disk.0) < 4096, "the disk is full");
    let r = w.run(&["verify"]);
    assert_eq!(r.code, 0, "verify on a full disk: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("unfinished upload(s) from data/tmp"),
        "{}",
        r.stderr
    );
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
    disk.leave_free(0);
    w.run(&["gc"]).ok();
    assert_eq!(w.snapshot_count(), count);
    drop(reader);

    // Room again: snapshots work and everything verifies.
    fs::remove_file(disk.0.join("fill")).unwrap();
    w.snapshot(URI);
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
}

#[test]
fn gc_removes_unfinished_uploads_before_anything_needs_room() {
    let Some((w, disk)) = world_on_small_disk() else {
        return;
    };
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    w.snapshot(URI);
    let _ = site;
    plant_unfinished_pack(&w);
    let reader = w.catalog();
    reader
        .query_row("SELECT count(*) FROM snapshots", [], |r| r.get::<_, i64>(0))
        .unwrap();
    disk.leave_free(0);
    let r = w.run(&["gc", "--json"]).ok();
    assert!(
        r.json()["tmp_files_removed"].as_u64().unwrap() >= 1,
        "{}",
        r.stdout
    );
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
    drop(reader);
    fs::remove_file(disk.0.join("fill")).unwrap();
    let v = w.run(&["verify", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
}

/// `snapshot --all` captures a batch of sites into one chunk sink; when the disk fills while
/// the batch is stored, every site of that batch fails (none is half committed) and each
/// error line names the full disk, the run exits 1, the sites not named failed are committed
/// whole, the snapshots taken before are intact, and with room again the next run works and
/// everything verifies.
#[test]
fn a_full_disk_fails_a_whole_batch_and_commits_nothing_of_it() {
    let Some((w, _disk)) = world_on_small_disk() else {
        return;
    };
    let p = w.platform("platforms/d7", 10);
    let uris = ["a.example.org", "b.example.org", "c.example.org"];
    let sites: Vec<Site> = uris.iter().map(|u| w.site(u, &p)).collect();
    w.run(&["snapshot", "--all"]).ok();
    let before = w.run(&["list", "--json"]).ok().json();
    assert_eq!(before.as_array().unwrap().len(), 3);

    // 9 MiB of new, incompressible data for a 6 MiB disk.
    for (i, s) in sites.iter().enumerate() {
        fs::write(s.dir.join("files/big.bin"), noise(40 + i as u64, 3 << 20)).unwrap();
    }
    let r = w.run(&["snapshot", "--all"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    // Each failure names the cause, a batch's commit too (not "writer already stopped").
    let summary = r.stderr.lines().last().unwrap();
    for line in r.stderr.lines().filter(|l| *l != summary) {
        assert!(
            line.contains("No space left on device") || line.contains("disk is full"),
            "{}",
            r.stderr
        );
    }
    // Where the disk filled decides how many sites failed (the batch that was storing when
    // it did fails whole; a site after it may fit in the room its failure gave back); every
    // site not named failed is committed whole.
    let failed: usize = summary
        .strip_prefix("sitesnap: error: ")
        .and_then(|t| t.strip_suffix(" of 3 site(s) failed"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(failed >= 2, "{}", r.stderr);
    let after = w.run(&["list", "--json"]).ok().json();
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 3 + (3 - failed), "{}", r.stderr);
    for j in before.as_array().unwrap() {
        assert!(after.contains(j), "{j} is gone");
    }
    for j in after
        .iter()
        .filter(|j| !before.as_array().unwrap().contains(j))
    {
        let s = sites.iter().find(|s| j["site"] == s.uri.as_str()).unwrap();
        assert_snapshot_matches_live(&w, j["id"].as_str().unwrap(), &p, s);
    }

    // Room again: the run works, the earlier snapshots read back, everything verifies.
    for s in &sites {
        fs::remove_file(s.dir.join("files/big.bin")).unwrap();
    }
    w.run(&["gc"]).ok();
    w.run(&["snapshot", "--all"]).ok();
    assert_eq!(w.snapshot_count() as usize, after.len() + 3);
    for j in before.as_array().unwrap() {
        restore_read(&w.repo, j["id"].as_str().unwrap());
    }
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
}
