//! Hooks: `before-snapshot`, `after-restore`, `after-migrate`, `on-failure`, per site or
//! global; the environment they receive; a failing after-hook does not undo; a failing
//! before-hook stops the snapshot.
use crate::support::*;
use std::fs;

const URI: &str = "hooked.example.org";

/// A hook command appending `EVENT|SITE|PLATFORM|SNAPSHOT|ERROR` to `log`.
fn logger(log: &std::path::Path) -> String {
    format!(
        "printf '%s|%s|%s|%s|%s\\n' \"$SITESNAP_EVENT\" \"$SITESNAP_SITE\" \"$SITESNAP_PLATFORM\" \"$SITESNAP_SNAPSHOT\" \"$SITESNAP_ERROR\" >> '{}'",
        log.display()
    )
}

fn lines(log: &std::path::Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn hooks_receive_their_environment() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 20);
    let b = w.platform("platforms/drupal-7.99", 20);
    let site = w.site(URI, &a);
    let log = w.path("hooks.log");
    let cmd = logger(&log);
    // Global before-snapshot and on-failure; the site's own after-restore and after-migrate.
    w.run(&["hooks", "set", "before-snapshot", &cmd]).ok();
    w.run(&["hooks", "set", "on-failure", &cmd]).ok();
    for e in ["after-restore", "after-migrate"] {
        w.run(&["hooks", "set", e, &cmd, "--site", URI]).ok();
    }
    let mode = fs::metadata(w.repo.join("hooks.json")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    let listed = w.run(&["hooks", "list"]).ok().stdout;
    assert_eq!(listed.lines().count(), 4, "{listed}");

    let snap = w.snapshot(URI);
    let id = snap["id"].as_str().unwrap().to_string();
    let (ap, bp) = (a.display().to_string(), b.display().to_string());
    assert_eq!(lines(&log), [format!("before-snapshot|{URI}|{ap}||")]);

    fs::write(site.dir.join("files/new.txt"), "x").unwrap();
    w.run(&["restore", &id, "--yes"]).ok();
    assert!(!site.dir.join("files/new.txt").exists());
    assert!(
        lines(&log).contains(&format!("after-restore|{URI}|{ap}|{id}|")),
        "{:?}",
        lines(&log)
    );

    // A failed migration: on-failure with the reason, on the old platform.
    fs::remove_file(&log).unwrap();
    w.run(&["migrate", URI, "--to", &bp, "--update-cmd", "exit 3"])
        .fails(1);
    let l = lines(&log);
    let last = l.last().unwrap();
    assert!(
        last.starts_with(&format!("on-failure|{URI}|{ap}|")),
        "{l:?}"
    );
    assert!(last.contains("update command 'exit 3' failed"), "{l:?}");
    // A good one: after-migrate on the new platform with the pre-migrate snapshot.
    fs::remove_file(&log).unwrap();
    let out = w.run(&["migrate", URI, "--to", &bp, "--json"]).ok().json();
    let pre = out["pre_migrate"].as_str().unwrap();
    // The pre-migrate snapshot is migrate's own: no before-snapshot hook for it.
    assert_eq!(lines(&log), [format!("after-migrate|{URI}|{bp}|{pre}|")]);
    // Unset: the hook no longer runs.
    w.run(&["hooks", "unset", "before-snapshot"]).ok();
    fs::remove_file(&log).unwrap();
    w.snapshot(URI);
    assert!(lines(&log).is_empty());
}

#[test]
fn a_failing_after_restore_hook_is_reported_and_the_restore_stays() {
    let w = World::new();
    let a = w.platform("platforms/p", 20);
    let site = w.site(URI, &a);
    let id = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    let keep = |p: &std::path::Path| !p.starts_with("site.sqlite");
    let before = listing_filtered(&site.dir, keep);
    let rows = sqlite_rows(&site.db, "node");
    fs::write(site.dir.join("files/new.txt"), "x").unwrap();
    w.run(&[
        "hooks",
        "set",
        "after-restore",
        "echo reload failed >&2; exit 7",
    ])
    .ok();
    let r = w.run(&["restore", &id, "--yes"]).ok();
    assert!(
        r.stderr
            .contains("the restore succeeded but after-restore hook"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("reload failed"), "{}", r.stderr);
    assert_eq!(listing_filtered(&site.dir, keep), before);
    assert_eq!(sqlite_rows(&site.db, "node"), rows);
}

#[test]
fn a_failing_before_snapshot_hook_stops_the_snapshot() {
    let w = World::new();
    let a = w.platform("platforms/p", 20);
    w.site(URI, &a);
    let log = w.path("fail.log");
    w.run(&["hooks", "set", "before-snapshot", "exit 4", "--site", URI])
        .ok();
    w.run(&["hooks", "set", "on-failure", &logger(&log)]).ok();
    let r = w.run(&["snapshot", URI]).fails(1);
    assert!(
        r.stderr.contains("before-snapshot hook 'exit 4'"),
        "{}",
        r.stderr
    );
    assert_eq!(w.snapshot_count(), 0);
    let l = lines(&log);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].starts_with(&format!("on-failure|{URI}|")), "{l:?}");
    assert!(l[0].contains("exit 4"), "{l:?}");
    // Bad input changes nothing.
    let before = fs::read(w.repo.join("hooks.json")).unwrap();
    w.run(&["hooks", "set", "after-lunch", "true"]).fails(2);
    let r = w
        .run(&[
            "hooks",
            "set",
            "after-restore",
            "true",
            "--site",
            "nosuch.example",
        ])
        .fails(1);
    assert!(r.stderr.contains("nosuch.example"), "{}", r.stderr);
    assert_eq!(fs::read(w.repo.join("hooks.json")).unwrap(), before);
}
