//! A repository on a full disk: a snapshot that runs out of room fails in one line and adds no
//! snapshot; a writer killed mid-pack leaves an unfinished upload in `data/tmp`; with not one
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

#[test]
fn a_full_disk_fails_a_snapshot_cleanly_and_gc_and_verify_still_run() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; skipped");
        return;
    }
    let w = World::with_repo_at("small/repo", |dir| {
        std::mem::forget(SmallDisk::mount(&dir.join("small"), "6m"));
    });
    // Unmounted before the world's folder is removed (dropped first).
    let disk = SmallDisk(w.path("small"));
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    w.snapshot(URI);
    let count = w.snapshot_count();

    // A file that cannot fit: the snapshot fails in one line and adds nothing.
    fs::write(site.dir.join("files/big.bin"), noise(11, 8 << 20)).unwrap();
    let r = w.run(&["snapshot", URI]);
    assert_one_line_error(&r, 1, &["No space left on device"]);
    assert_eq!(w.snapshot_count(), count);
    fs::remove_file(site.dir.join("files/big.bin")).unwrap();

    // A writer killed after storing a chunk leaves its unfinished pack behind.
    fs::write(site.dir.join("files/mid.bin"), noise(12, 1 << 20)).unwrap();
    let (status, _, _) = w.run_status(
        &["snapshot", URI],
        &[("SITESNAP_FAILPOINT", "chunk-stored")],
    );
    assert!(!status.success(), "killed");
    let left = tmp_entries(&w);
    assert!(!left.is_empty(), "the killed writer left its upload");

    // Not one byte free: verify and gc still run and clean data/tmp.
    disk.leave_free(0);
    assert!(free_bytes(&disk.0) < 4096, "the disk is full");
    let r = w.run(&["verify"]);
    assert_eq!(r.code, 0, "verify on a full disk: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("removed 1 unfinished upload(s) from data/tmp"),
        "{}",
        r.stderr
    );
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
    w.run(&["gc"]).ok();
    assert_eq!(w.snapshot_count(), count);

    // Room again: snapshots work and everything verifies.
    fs::remove_file(disk.0.join("fill")).unwrap();
    w.snapshot(URI);
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
}

#[test]
fn gc_removes_unfinished_uploads_before_anything_needs_room() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; skipped");
        return;
    }
    let w = World::with_repo_at("small/repo", |dir| {
        std::mem::forget(SmallDisk::mount(&dir.join("small"), "6m"));
    });
    let disk = SmallDisk(w.path("small"));
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    w.snapshot(URI);
    fs::write(site.dir.join("files/mid.bin"), noise(13, 1 << 20)).unwrap();
    let (status, _, _) = w.run_status(
        &["snapshot", URI],
        &[("SITESNAP_FAILPOINT", "chunk-stored")],
    );
    assert!(!status.success(), "killed");
    assert!(!tmp_entries(&w).is_empty());
    disk.leave_free(0);
    let r = w.run(&["gc", "--json"]).ok();
    assert!(r.json()["tmp_files_removed"].as_u64().unwrap() >= 1, "{}", r.stdout);
    assert_eq!(tmp_entries(&w), Vec::<String>::new());
    fs::remove_file(disk.0.join("fill")).unwrap();
    let v = w.run(&["verify", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
}
