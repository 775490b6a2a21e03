//! `sitesnap migrate`: checkpoint, move, update, check, and rollback to the old platform when
//! the update or the check fails.
use crate::support::*;
use std::fs;

const URI: &str = "blog.example.net";

fn platform_of(w: &World) -> String {
    w.run(&["site", "show", URI, "--json"]).ok().json()["platform"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn migrate_moves_site_and_bindings_then_update_runs() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 100);
    let b = w.platform("platforms/drupal-7.105", 100);
    let site = w.site(URI, &a);
    let rows = sqlite_rows(&site.db, "node");
    let files = listing(&site.dir);
    let r = w
        .run(&[
            "-v",
            "migrate",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            "touch \"$SITESNAP_PLATFORM/updated-$SITESNAP_SITE\"",
        ])
        .ok();
    assert!(
        r.stdout.contains("undo with: sitesnap --repo "),
        "{}",
        r.stdout
    );
    let moved = b.join("sites").join(URI);
    assert!(!site.dir.exists());
    assert_eq!(listing(&moved), files);
    assert_eq!(sqlite_rows(&moved.join("site.sqlite"), "node"), rows);
    assert!(b.join(format!("updated-{URI}")).exists());
    for f in [&site.vhost, &site.alias] {
        let t = fs::read_to_string(f).unwrap();
        assert!(t.contains(&b.display().to_string()), "{t}");
        assert!(!t.contains(&a.display().to_string()), "{t}");
    }
    assert_eq!(platform_of(&w), b.display().to_string());
    let list = w.run(&["list", URI, "--json"]).ok().json();
    assert_eq!(list[0]["kind"], "pre-migrate");
    assert_eq!(list[0]["platform_path"], a.display().to_string());
    // Snapshots of the migrated site find it (and its database) on the new platform.
    let s = w.snapshot(URI);
    assert_eq!(s["platform_path"], b.display().to_string());
    assert!(s["db_url"].as_str().unwrap().contains("drupal-7.105"));
}

#[test]
fn failed_update_rolls_back_to_the_old_platform() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 100);
    let b = w.platform("platforms/drupal-7.105", 100);
    let site = w.site(URI, &a);
    let rows = sqlite_rows(&site.db, "node");
    let files = listing_filtered(&site.dir, |p| !p.starts_with("site.sqlite"));
    let vhost = fs::read_to_string(&site.vhost).unwrap();
    let r = w
        .run(&[
            "migrate",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            "echo broken > sites/$SITESNAP_SITE/files/half-updated.txt; echo 'PDOException: table missing' >&2; exit 3",
        ])
        .fails(1);
    // The update command's output streamed, then one error line.
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stderr);
    assert_eq!(lines[0], "PDOException: table missing");
    assert!(lines[1].contains("rolled back"), "{}", r.stderr);
    assert!(r.stderr.contains("PDOException"), "{}", r.stderr);
    assert!(!b.join("sites").join(URI).exists());
    assert_eq!(
        listing_filtered(&site.dir, |p| !p.starts_with("site.sqlite")),
        files
    );
    assert_eq!(sqlite_rows(&site.db, "node"), rows);
    assert_eq!(fs::read_to_string(&site.vhost).unwrap(), vhost);
    assert_eq!(platform_of(&w), a.display().to_string());
}

#[test]
fn failed_check_rolls_back() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 50);
    let b = w.platform("platforms/drupal-7.105", 50);
    let site = w.site(URI, &a);
    let r = w
        .run(&[
            "migrate",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--check-url",
            "http://127.0.0.1:9/",
        ])
        .fails(1);
    assert!(
        r.stderr.contains("check of http://127.0.0.1:9/ failed"),
        "{}",
        r.stderr
    );
    assert!(site.dir.join("settings.php").exists());
    assert!(!b.join("sites").join(URI).exists());
}

#[test]
fn bad_migrations_change_nothing() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 50);
    let site = w.site(URI, &a);
    let before = listing(&site.dir);
    let r = w
        .run(&["migrate", URI, "--to", "/nonexistent/platform"])
        .fails(1);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stderr.contains("/nonexistent/platform"), "{}", r.stderr);
    let r = w
        .run(&["migrate", URI, "--to", &a.to_string_lossy()])
        .fails(1);
    assert!(r.stderr.contains("already on"), "{}", r.stderr);
    let r = w
        .run(&["migrate", "nosuch.example", "--to", &a.to_string_lossy()])
        .fails(1);
    assert!(
        r.stderr.contains("unknown site 'nosuch.example'"),
        "{}",
        r.stderr
    );
    // The target already holds a folder of that name.
    let b = w.platform("platforms/drupal-7.105", 50);
    fs::create_dir_all(b.join("sites").join(URI)).unwrap();
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy()])
        .fails(1);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), 0);
    assert_eq!(listing(&site.dir), before);
}

#[test]
fn update_output_is_streamed_and_saved_to_a_log_named_in_the_error_and_in_show() {
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 30);
    let b = w.platform("platforms/drupal-7.105", 30);
    w.site(URI, &a);
    let r = w
        .run(&[
            "migrate",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--update-cmd",
            "echo 'Performing system_update_7081'; echo 'WD php: Call to undefined function node_types_rebuild()' >&2; echo 'Finished: 1 failed' >&2; exit 3",
        ])
        .fails(1);
    // Streamed: every line on the terminal (stderr), not only the last.
    assert!(
        r.stderr.contains("Performing system_update_7081"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("node_types_rebuild"), "{}", r.stderr);
    let err = r.stderr.lines().last().unwrap();
    assert!(err.contains("Finished: 1 failed"), "{err}");
    let log = err
        .split("its output is in ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap()
        .trim();
    let text = fs::read_to_string(log).unwrap();
    for l in [
        "Performing system_update_7081",
        "WD php: Call to undefined function node_types_rebuild()",
        "Finished: 1 failed",
    ] {
        assert!(text.contains(l), "{text}");
    }
    assert_eq!(mode_of(std::path::Path::new(log)) & 0o777, 0o600);
    let list = w.run(&["list", URI, "--json"]).ok().json();
    let pre = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "pre-migrate")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = w.run(&["show", &pre]).ok().stdout;
    assert!(shown.contains(&format!("update log: {log}")), "{shown}");
    let j = w.run(&["show", &pre, "--json"]).ok().json();
    assert_eq!(j["update_log"], log);
}
