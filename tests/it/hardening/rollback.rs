//! A restore step that FAILS (not killed) is undone: site files, database and bindings exactly
//! as before, the journal closed as rolled back, one line saying so. A kill during that undo
//! is finished by `recover`; `recover --abort` undoes a restore at any step; `recover` takes
//! each site on its own; `doctor <uri>` names the site's unfinished restore.
use super::*;
use std::fs;

const URI: &str = "shop.example.com";

/// A site, a snapshot, then changes after it (so a restore has something to change back).
fn changed_site(w: &World, uri: &str, platform: &Path) -> (Site, String) {
    let site = w.site(uri, platform);
    let snap = w.snapshot(uri)["id"].as_str().unwrap().to_string();
    fs::write(
        site.dir.join("files/after.txt"),
        "written after the snapshot",
    )
    .unwrap();
    let c = rusqlite::Connection::open(&site.db).unwrap();
    c.execute_batch("UPDATE node SET title = 'changed' WHERE nid < 50; CREATE TABLE extra (x);")
        .unwrap();
    drop(c);
    fs::write(&site.vhost, "server { root /elsewhere; }\n").unwrap();
    fs::write(&site.alias, "<?php // changed alias\n").unwrap();
    (site, snap)
}

/// A failed restore: exit 1 and one line on stderr naming `names` (stdout holds the plan).
fn assert_failed_in_one_line(r: &Run, names: &[&str]) {
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    for n in names {
        assert!(r.stderr.contains(n), "should name '{n}': {}", r.stderr);
    }
}

fn restore(w: &World, id: &str) -> Run {
    w.run(&["restore", id, "--yes"])
}

#[test]
fn permission_denied_on_the_site_folder_rolls_back() {
    let w = World::new();
    let p = w.platform("platforms/d7", 30);
    let (site, snap) = changed_site(&w, URI, &p);
    let before = world_print(&w);
    let r = {
        let _lock = Immutable::new(&site.dir);
        restore(&w, &snap)
    };
    assert_failed_in_one_line(&r, &["site folder", "rolled back", "as it was before"]);
    assert_same_world("failed site step", &world_print(&w), &before);
    assert_eq!(journal_states(&w), ["rolled-back"]);
    // Not wedged: the same restore now works.
    restore(&w, &snap).ok();
}

#[test]
fn a_binding_that_cannot_be_written_rolls_back_the_others_and_the_site() {
    let w = World::new();
    let p = w.platform("platforms/d7", 30);
    let (site, snap) = changed_site(&w, URI, &p);
    let before = world_print(&w);
    let r = {
        // The alias is written back first, then the vhost fails.
        let _lock = Immutable::new(&site.vhost);
        restore(&w, &snap)
    };
    assert_failed_in_one_line(&r, &["binding files", "rolled back"]);
    assert_same_world("failed binding step", &world_print(&w), &before);
    assert_eq!(journal_states(&w), ["rolled-back"]);
    assert_eq!(sqlite_tables(&site.db), ["extra", "node", "variable"]);
}

#[test]
fn a_kill_during_the_rollback_is_finished_by_recover() {
    for point in ["restore-undo-bindings", "restore-undo-site"] {
        let w = World::new();
        let p = w.platform("platforms/d7", 30);
        let (site, snap) = changed_site(&w, URI, &p);
        let before = world_print(&w);
        let (status, _, _) = {
            let _lock = Immutable::new(&site.vhost);
            w.run_status(
                &["restore", &snap, "--yes"],
                &[("SITESNAP_FAILPOINT", point)],
            )
        };
        assert!(!status.success(), "{point}: killed");
        assert_eq!(journal_states(&w), ["rolling-back"], "{point}");
        // Other commands wait for recover.
        let r = w.run(&["snapshot", URI]).fails(1);
        assert!(r.stderr.contains("recover --abort"), "{}", r.stderr);
        let r = w.run(&["-v", "recover"]).ok();
        assert!(
            r.stdout.contains("rolled back: undone"),
            "{point}: {}",
            r.stdout
        );
        assert_same_world(point, &world_print(&w), &before);
        assert_eq!(journal_states(&w), ["rolled-back"], "{point}");
    }
}

#[test]
fn recover_abort_puts_the_site_back_at_any_step() {
    for point in [
        "restore-prepared",
        "restore-site",
        "restore-db",
        "restore-bindings",
    ] {
        let w = World::new();
        let p = w.platform("platforms/d7", 30);
        let (_site, snap) = changed_site(&w, URI, &p);
        let before = world_print(&w);
        let (status, _, _) = w.run_status(
            &["restore", &snap, "--yes"],
            &[("SITESNAP_FAILPOINT", point)],
        );
        assert!(!status.success(), "{point}: killed");
        // doctor <uri> names the unfinished restore.
        let r = w.run(&["doctor", URI]).fails(1);
        let j = open_journal(&w);
        assert!(
            r.stdout.contains(&j) && r.stdout.contains("unfinished"),
            "{point}: {}",
            r.stdout
        );
        let r = w.run(&["-v", "recover", "--abort", &j[..6]]).ok();
        assert!(r.stdout.contains("as it was before"), "{}", r.stdout);
        assert_same_world(point, &world_print(&w), &before);
        assert_eq!(journal_states(&w), ["rolled-back"], "{point}");
        w.run(&["doctor", URI]).ok();
    }
}

#[test]
fn recover_takes_each_site_on_its_own() {
    let w = World::new();
    let p = w.platform("platforms/d7", 30);
    let (a, snap_a) = changed_site(&w, "a.example.com", &p);
    let (_b, snap_b) = changed_site(&w, "b.example.com", &p);
    let before = world_print(&w);
    for s in [&snap_a, &snap_b] {
        let (status, _, _) = w.run_status(
            &["restore", s, "--yes"],
            &[("SITESNAP_FAILPOINT", "restore-site")],
        );
        assert!(!status.success());
    }
    // Site a's restore cannot be finished (its vhost cannot be replaced): it is undone, and
    // site b's is still finished.
    let r = {
        let _lock = Immutable::new(&a.vhost);
        w.run(&["-v", "recover"]).fails(1)
    };
    assert!(
        r.stderr.contains("a.example.com") && r.stderr.contains("rolled back"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("restore of b.example.com") && r.stdout.contains("finished"),
        "{}",
        r.stdout
    );
    assert_eq!(journal_states(&w), ["rolled-back", "done"]);
    let now = world_print(&w);
    let a_part = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| l.contains("a.example.com"))
            .cloned()
            .collect()
    };
    assert_same_world("site a", &a_part(&now), &a_part(&before));
    assert_ne!(now, before, "site b was restored");
}

#[test]
fn recover_abort_of_an_unknown_journal_is_one_line() {
    let w = World::new();
    let r = w.run(&["recover", "--abort", "nosuch"]);
    assert_one_line_error(&r, 1, &["nosuch"]);
}

#[test]
fn a_failed_binding_step_puts_back_the_extra_paths_of_a_composer_site() {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", "web");
    let site = w.composer_site("a.test", &p, "web", &[]);
    let private = p.join("private/a.test");
    fs::create_dir_all(&private).unwrap();
    fs::write(private.join("kept.txt"), "in the snapshot").unwrap();
    let snap = w.snapshot("a.test")["id"].as_str().unwrap().to_string();
    // After the snapshot: the private folder changes and the site folder too.
    fs::write(private.join("kept.txt"), "changed after").unwrap();
    fs::write(private.join("new.txt"), "new after").unwrap();
    fs::write(site.dir.join("after.txt"), "new after").unwrap();
    let before = world_print(&w);
    let r = {
        let _lock = Immutable::new(&site.vhost);
        restore(&w, &snap)
    };
    assert_failed_in_one_line(&r, &["binding files", "rolled back"]);
    assert_same_world(
        "failed binding step, extra paths",
        &world_print(&w),
        &before,
    );
    assert_eq!(journal_states(&w), ["rolled-back"]);
    // The same restore then works and brings the private folder back.
    restore(&w, &snap).ok();
    assert_eq!(
        fs::read_to_string(private.join("kept.txt")).unwrap(),
        "in the snapshot"
    );
    assert!(!private.join("new.txt").exists());
}
