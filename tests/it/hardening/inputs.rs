//! Bad input and a full disk change nothing and say so: retention spans beyond the calendar
//! are a usage error; an export that cannot be finished exits 1 and leaves no file.
use super::*;
use std::fs;

const URI: &str = "news.example.org";

#[test]
fn retention_spans_beyond_the_calendar_are_a_usage_error() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    for _ in 0..3 {
        w.snapshot(URI);
    }
    let before = w.state();
    for span in [
        "300000y",
        "4294967295d",
        "4294967295y",
        "4294967295m",
        "4294967295h",
    ] {
        for dry in [true, false] {
            let mut args = vec!["prune", "--keep-within", span];
            if dry {
                args.push("--dry-run");
            }
            let r = w.run(&args);
            assert_eq!(r.code, 2, "{span}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains(span), "{span}: {}", r.stderr);
        }
    }
    assert_eq!(w.snapshot_count(), 3);
    assert_eq!(w.state(), before);
}

#[test]
fn an_export_that_cannot_be_finished_leaves_no_file() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; skipped");
        return;
    }
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    let id = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    let disk = SmallDisk::mount(&w.path("small"), "2m");
    for ext in ["tar.zst", "tar.gz", "tar"] {
        let full = w.path(&format!("full.{ext}"));
        w.run(&["export", &id, "-o", &full.to_string_lossy()]).ok();
        let size = fs::metadata(&full).unwrap().len();
        let entries = tar_list(&full).expect("complete archive");
        // Leave less room than the archive needs, by less and less: the last writes (the
        // encoder's final block) are the ones that fail.
        let mut failures = 0;
        let mut free = size.saturating_sub(160 << 10);
        while free < size + (16 << 10) {
            disk.leave_free(free);
            let out = disk.0.join(format!("x.{ext}"));
            let r = w.run(&["export", &id, "-o", &out.to_string_lossy()]);
            let left: Vec<_> = fs::read_dir(&disk.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "fill")
                .collect();
            if r.code == 0 {
                assert_eq!(
                    tar_list(&out).as_deref(),
                    Ok(&entries[..]),
                    "{ext} at {free} free: exit 0 means complete"
                );
                fs::remove_file(&out).unwrap();
            } else {
                failures += 1;
                assert_eq!(r.code, 1, "{}", r.stderr);
                assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
                assert!(r.stderr.contains("No space left"), "{}", r.stderr);
                assert!(
                    left.is_empty(),
                    "{ext} at {free} free: nothing left behind: {left:?}"
                );
            }
            free += 8 << 10;
        }
        assert!(failures > 0, "{ext}: the disk was too small at least once");
    }
}

/// The entries of an archive, or tar's complaint (GNU tar reads zstd and gzip).
fn tar_list(p: &Path) -> Result<Vec<String>, String> {
    let o = std::process::Command::new("tar")
        .arg("-tf")
        .arg(p)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect())
}

#[test]
fn a_path_with_a_newline_cannot_fake_a_line_of_the_plan() {
    let w = World::new();
    let p = w.platform("platforms/d7\nplatform:   FAKE", 10);
    w.site(URI, &p);
    let id = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    let r = w.run(&["restore", &id, "--dry-run"]).ok();
    assert!(r.stdout.contains("d7\\nplatform:   FAKE"), "{}", r.stdout);
    assert!(
        !r.stdout.lines().any(|l| l.starts_with("platform:   FAKE")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_path_with_control_characters_is_escaped_in_every_display() {
    let w = World::new();
    let p = w.platform("platforms/d7\nplatform:   FAKE\x1b[2J", 10);
    w.site(URI, &p);
    let id = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    let faked = |out: &str| {
        out.lines()
            .any(|l| l.starts_with("platform:   FAKE") || l.contains('\x1b'))
    };
    for args in [
        vec!["site", "list"],
        vec!["site", "show", URI],
        vec!["list"],
        vec!["list", URI],
        vec!["show", &id],
        vec!["restore", &id, "--dry-run"],
        vec!["doctor"],
        vec!["doctor", URI],
    ] {
        let r = w.run(&args);
        assert!(
            !faked(&r.stdout) && !faked(&r.stderr),
            "{args:?}: {}{}",
            r.stdout,
            r.stderr
        );
    }
    // An error naming such a path is one line, escaped.
    let missing = w.path("nowhere\nsitesnap: done\x1b[2J/x.example.org-20240131.120000.tar.gz");
    let r = w.run(&["import", &missing.to_string_lossy()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
    assert!(
        r.stderr.contains("nowhere\\nsitesnap: done"),
        "{:?}",
        r.stderr
    );
}

#[test]
fn a_password_in_a_bad_database_url_is_never_shown() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    let ps = p.to_string_lossy().into_owned();
    fs::create_dir_all(p.join("sites/other.example.org")).unwrap();
    let before = w.state();
    for url in [
        "mysql://u:secret/db",
        "mysql://u:secret@h:port/db",
        "mysql://u:secret@h:99999/db",
        "postgres://u:secret/",
        "mysql://u:secret",
        "oracle://u:secret@h/d",
    ] {
        for args in [
            vec!["site", "set", URI, "--db", url],
            vec![
                "site",
                "add",
                "other.example.org",
                "--platform",
                &ps,
                "--db",
                url,
            ],
        ] {
            let r = w.run(&args);
            assert_ne!(r.code, 0, "{args:?}");
            assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
            assert!(!r.stderr.contains("secret"), "{args:?}: {}", r.stderr);
            assert!(!r.stdout.contains("secret"), "{args:?}: {}", r.stdout);
        }
    }
    assert_eq!(w.state(), before);
}
