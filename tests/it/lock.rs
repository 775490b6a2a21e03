//! Locking: one writer at a time. A second writer waits its turn or, with `--lock-wait 0`,
//! fails naming the holder; readers do not block; a lock left by a killed writer is broken with
//! a notice; the catalogue is never corrupted.
use crate::support::*;

fn world() -> (World, Site) {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 40);
    let s = w.site("example.com", &p);
    (w, s)
}

fn verify_clean(w: &World) {
    let v = w.run(&["verify", "--read-data", "--json"]).ok().json();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn second_writer_fails_naming_the_holder_while_readers_go_on() {
    let (w, _) = world();
    let earlier = w.snapshot("example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gate = w.path("gate");
    let holder = spawn(
        &w.repo,
        &["snapshot", "example.com", "--label", "holder"],
        &[
            ("SITESNAP_PAUSE", "locked"),
            ("SITESNAP_PAUSE_FILE", gate.to_str().unwrap()),
        ],
    );
    let pid = holder.id();
    wait_for(&gate);

    let r = w
        .run(&["--lock-wait", "0", "snapshot", "example.com"])
        .fails(1);
    assert!(
        r.stderr
            .contains(&format!("repository is locked by pid {pid} on ")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(snapshot, since "), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    // Other writers are refused the same way.
    for args in [
        &["--lock-wait", "0", "prune", "--keep-last", "1"][..],
        &["--lock-wait", "0", "gc"][..],
        &["--lock-wait", "0", "forget", &earlier][..],
        &["--lock-wait", "0", "pin", &earlier][..],
        &[
            "--lock-wait",
            "0",
            "site",
            "set",
            "example.com",
            "--keep-daily",
            "3",
        ][..],
    ] {
        let r = w.run(args).fails(1);
        assert!(
            r.stderr.contains(&format!("locked by pid {pid}")),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Readers don't wait for the writer.
    let l = w.run(&["--lock-wait", "0", "list", "--json"]).ok().json();
    assert_eq!(l.as_array().unwrap().len(), 1);
    w.run(&["--lock-wait", "0", "show", &earlier]).ok();
    w.run(&["--lock-wait", "0", "site", "list"]).ok();
    w.run(&["--lock-wait", "0", "prune", "--keep-last", "1", "--dry-run"])
        .ok();

    std::fs::remove_file(&gate).unwrap();
    let done = finish(holder);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    // Nothing the refused writers tried happened.
    let l = w.run(&["list", "--json"]).ok().json();
    assert_eq!(l.as_array().unwrap().len(), 2);
    assert!(l.as_array().unwrap().iter().all(|s| s["pinned"] == false));
    verify_clean(&w);
    // The lock is free again: a new writer gets it at once, without a stale notice.
    let r = w.run(&["--lock-wait", "0", "snapshot", "example.com"]).ok();
    assert!(!r.stderr.contains("stale"), "{}", r.stderr);
}

#[test]
fn two_writers_queue_and_both_finish() {
    let (w, _) = world();
    let gate = w.path("gate");
    let first = spawn(
        &w.repo,
        &["snapshot", "example.com", "--label", "first"],
        &[
            ("SITESNAP_PAUSE", "locked"),
            ("SITESNAP_PAUSE_FILE", gate.to_str().unwrap()),
        ],
    );
    wait_for(&gate);
    // The second one waits (default --lock-wait) until the first is done.
    let second = spawn(
        &w.repo,
        &["snapshot", "example.com", "--label", "second"],
        &[],
    );
    std::fs::remove_file(&gate).unwrap();
    let a = finish(first);
    let b = finish(second);
    assert_eq!(a.code, Some(0), "{}", a.stderr);
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let l = w.run(&["list", "--json"]).ok().json();
    let labels: Vec<&str> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["first", "second"], "one after the other");
    verify_clean(&w);
}

#[test]
fn two_writers_started_at_once_both_succeed() {
    let (w, site) = world();
    for round in 0..3 {
        std::fs::write(site.dir.join("files/round.bin"), noise(round, 40_000)).unwrap();
        let a = spawn(&w.repo, &["snapshot", "example.com"], &[]);
        let b = spawn(&w.repo, &["snapshot", "--all"], &[]);
        let (a, b) = (finish(a), finish(b));
        assert_eq!(a.code, Some(0), "{}", a.stderr);
        assert_eq!(b.code, Some(0), "{}", b.stderr);
    }
    assert_eq!(w.snapshot_count(), 6);
    verify_clean(&w);
}

#[test]
fn a_killed_writers_lock_is_broken_with_a_notice() {
    let (w, site) = world();
    let doomed = site.dir.join("files/doomed.bin");
    std::fs::write(&doomed, noise(5, 300_000)).unwrap();
    let killed = w.run_env(
        &["snapshot", "example.com"],
        &[("SITESNAP_FAILPOINT", "before-commit")],
    );
    assert_eq!(killed.code, -1, "{}", killed.stderr);
    let held = std::fs::read_to_string(w.repo.join("lock")).unwrap();
    assert!(
        held.starts_with("pid "),
        "the dead holder's line stays: {held}"
    );
    assert_eq!(w.snapshot_count(), 0, "no half snapshot is listed");
    // Readers are not bothered by it.
    w.run(&["--lock-wait", "0", "list"]).ok();
    std::fs::remove_file(&doomed).unwrap();
    let r = w.run(&["--lock-wait", "0", "snapshot", "example.com"]).ok();
    assert!(
        r.stderr
            .contains(&format!("notice: broke a stale lock ({}", held.trim())),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), 1);
    verify_clean(&w);
    // What the killed snapshot wrote is garbage for gc.
    let g = w.run(&["gc", "--json"]).ok().json();
    assert!(g["chunks_removed"].as_u64().unwrap() >= 1, "{g}");
    assert!(g["bytes_freed"].as_u64().unwrap() >= 290_000, "{g}");
    verify_clean(&w);
}
