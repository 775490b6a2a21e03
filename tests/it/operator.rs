//! Operator habits (issue 13): `restore --keep-platform` on a hotfixed shared platform,
//! `import` of sitesnap's own exports byte for byte, restore leftovers, the config file.

use crate::support::*;
use std::fs;
use std::path::Path;

fn id(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Everything of a site that a restore puts back: its folder (the SQLite file aside), its
/// database rows, its binding files.
fn site_state(s: &Site) -> (Vec<String>, Vec<String>, Vec<u8>, Vec<u8>) {
    (
        listing_filtered(&s.dir, |r| r != Path::new("site.sqlite")),
        sqlite_rows(&s.db, "node"),
        fs::read(&s.vhost).unwrap(),
        fs::read(&s.alias).unwrap(),
    )
}

/// Changes the site folder, its database and a binding file.
fn damage_site(s: &Site) {
    fs::write(s.dir.join("files/new-upload.txt"), "uploaded after").unwrap();
    fs::remove_file(s.dir.join("files/upload3.bin")).unwrap();
    rusqlite::Connection::open(&s.db)
        .unwrap()
        .execute_batch("DELETE FROM node WHERE nid < 50; UPDATE node SET title = 'x';")
        .unwrap();
    fs::write(&s.vhost, "server { root /elsewhere; }\n").unwrap();
}

#[test]
fn keep_platform_rolls_back_the_site_and_keeps_the_hotfix() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    let site = w.site("example.com", &p);
    let other = w.site("other.example.com", &p);
    let before = site_state(&site);
    let s1 = id(&w.snapshot("example.com"));
    // A hotfix on the shared platform, then the site changes.
    let hotfix = p.join("includes/file0.php");
    fs::write(&hotfix, "<?php // security hotfix\n").unwrap();
    fs::write(
        p.join("includes/patch.php"),
        "<?php // added by the hotfix\n",
    )
    .unwrap();
    damage_site(&site);
    let other_before = site_state(&other);
    let platform_before = listing_filtered(&p, |r| !r.starts_with("sites"));

    let r = w
        .run(&["-v", "restore", &s1[..8], "--keep-platform", "--yes"])
        .ok();
    // The platform differences are listed, the platform is said to be kept.
    assert!(r.stdout.contains("~ includes/file0.php"), "{}", r.stdout);
    assert!(r.stdout.contains("+ includes/patch.php"), "{}", r.stdout);
    assert!(r.stdout.contains("kept as it is now"), "{}", r.stdout);
    // Site folder, database, bindings: the snapshot's. The hotfix: still there.
    assert_eq!(site_state(&site), before);
    assert_eq!(
        fs::read_to_string(&hotfix).unwrap(),
        "<?php // security hotfix\n"
    );
    assert_eq!(
        listing_filtered(&p, |r| !r.starts_with("sites")),
        platform_before
    );
    assert_eq!(site_state(&other), other_before);
    // No leftover of a platform repair.
    let asides: Vec<_> = fs::read_dir(p.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
        .collect();
    assert!(asides.is_empty());
}

#[test]
fn keep_platform_of_a_platform_that_is_gone_is_refused_and_changes_nothing() {
    let w = World::new();
    let a = w.platform("platforms/a", 10);
    let b = w.platform("platforms/b", 10);
    let site = w.site("example.com", &a);
    let s1 = id(&w.snapshot("example.com"));
    w.run(&["migrate", "example.com", "--to", &b.to_string_lossy()])
        .ok();
    fs::remove_dir_all(&a).unwrap();
    let moved = Site {
        dir: b.join("sites/example.com"),
        db: b.join("sites/example.com/site.sqlite"),
        ..site
    };
    let before = site_state(&moved);
    let count = w.snapshot_count();
    let r = w
        .run(&["restore", &s1[..8], "--keep-platform", "--yes"])
        .fails(1);
    assert_one_line_error(&r, 1, &["no longer exists", "without --keep-platform"]);
    assert_eq!(site_state(&moved), before);
    assert_eq!(w.snapshot_count(), count);
    assert!(!a.exists());
}

/// A second repository on the same machine with the same site registered (paths as they are).
fn second_repo(site: &Site, platform: &Path) -> World {
    let w2 = World::new();
    let db = format!("sqlite://{}", site.db.display());
    w2.run(&[
        "site",
        "add",
        &site.uri,
        "--platform",
        &platform.to_string_lossy(),
        "--db",
        &db,
        "--bind",
        &site.vhost.to_string_lossy(),
        "--bind",
        &site.alias.to_string_lossy(),
    ])
    .ok();
    w2
}

#[test]
fn an_export_imports_back_byte_for_byte_and_restores() {
    let w = World::new();
    let p = w.platform("platforms/d7", 40);
    nanosecond_mtimes(&p, 1_700_000_000);
    let site = w.site("example.com", &p);
    let before = site_state(&site);
    let plat = |p: &Path| listing_filtered(p, |r| !r.ends_with("site.sqlite"));
    let platform_before = plat(&p);
    let s1 = id(&w.snapshot("example.com"));
    // As the catalogue keeps it (times to the millisecond).
    let s1 = w.run(&["show", &s1, "--json"]).ok().json();
    for ext in ["tar.zst", "tar.gz"] {
        let out = w.path(&format!("export.{ext}"));
        w.run(&["export", &id(&s1), "-o", &out.to_string_lossy()])
            .ok();
        let w2 = second_repo(&site, &p);
        let imp = w2
            .run(&["import", &out.to_string_lossy(), "--json"])
            .ok()
            .json();
        assert_eq!(imp["kind"], "imported", "{imp}");
        for k in [
            "platform_tree",
            "site_tree",
            "bindings_tree",
            "db_dump",
            "files",
            "bytes",
            "platform_path",
            "site_dir",
        ] {
            assert_eq!(imp[k], s1[k], "{ext}: {k} differs: {imp}");
        }
        assert_eq!(imp["time"], s1["time"], "{ext}");
        w2.run(&["verify", "--read-data"]).ok();
        damage_site(&site);
        fs::write(p.join("includes/file1.php"), "<?php // changed\n").unwrap();
        w2.run(&["restore", &id(&imp), "--yes", "--repair-platform"])
            .ok();
        assert_eq!(site_state(&site), before, "{ext}");
        assert_eq!(plat(&p), platform_before, "{ext}");
    }
}

#[test]
fn a_hostile_or_foreign_archive_imports_nothing() {
    let w = World::new();
    let p = w.platform("platforms/d7", 5);
    w.site("example.com", &p);
    let s1 = id(&w.snapshot("example.com"));
    let out = w.path("e.tar");
    w.run(&["export", &s1, "-o", &out.to_string_lossy()]).ok();
    // The record first, then an absolute path.
    let x = w.path("x");
    fs::create_dir_all(&x).unwrap();
    let st = std::process::Command::new("tar")
        .args(["-xf", &out.to_string_lossy(), "-C", &x.to_string_lossy()])
        .status()
        .unwrap();
    assert!(st.success());
    let evil = w.path("evil.tar");
    let st = std::process::Command::new("tar")
        .current_dir(&x)
        .args(["-P", "-cf", &evil.to_string_lossy()])
        .args(["sitesnap-snapshot.json", "/etc/hostname"])
        .status()
        .unwrap();
    assert!(st.success());
    let count = w.snapshot_count();
    let r = w.run(&["import", &evil.to_string_lossy()]).fails(1);
    assert_one_line_error(&r, 1, &["evil.tar", "/etc/hostname"]);
    assert_eq!(w.snapshot_count(), count);
    // The archive of a site this repository does not know.
    let w2 = World::new();
    let r = w2.run(&["import", &out.to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("example.com"), "{}", r.stderr);
    assert_eq!(w2.snapshot_count(), 0);
}

#[test]
fn restore_removes_the_replaced_platform_files_unless_keep_old() {
    let w = World::new();
    let p = w.platform("plat", 10);
    w.site("a.test", &p);
    let s1 = id(&w.snapshot("a.test"));
    let parent = p.parent().unwrap().to_path_buf();
    let asides = || -> Vec<std::path::PathBuf> {
        fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".sitesnap-"))
            .map(|e| e.path())
            .collect()
    };
    let hotfix = |text: &str| fs::write(p.join("includes/file0.php"), text).unwrap();
    hotfix("<?php // hotfix one\n");
    let r = w
        .run(&[
            "restore",
            &s1,
            "--yes",
            "--repair-platform",
            "--keep-old",
            "--json",
        ])
        .ok()
        .json();
    let kept = asides();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        fs::read_to_string(kept[0].join("includes/file0.php")).unwrap(),
        "<?php // hotfix one\n"
    );
    assert!(
        r["kept_old"]
            .to_string()
            .contains(".plat.sitesnap-replaced-"),
        "{r}"
    );
    fs::remove_dir_all(&kept[0]).unwrap();
    // Without --keep-old: removed after success; the pre-restore snapshot holds the file.
    hotfix("<?php // hotfix two\n");
    let r = w
        .run(&["restore", &s1, "--yes", "--repair-platform", "--json"])
        .ok()
        .json();
    assert!(asides().is_empty(), "{:?}", asides());
    let pre = r["pre_restore"].as_str().unwrap().to_string();
    let d = w
        .run(&["dump", &pre[..8], "platform/includes/file0.php"])
        .ok();
    assert_eq!(d.stdout, "<?php // hotfix two\n");
}

/// Runs sitesnap as a cron line would: no `$SITESNAP_REPO`, the configuration from
/// `$SITESNAP_CONFIG`.
fn cron(w: &World, conf: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = w.cmd();
    c.env_remove("SITESNAP_REPO").env("SITESNAP_CONFIG", conf);
    c.args(args).envs(env.iter().copied());
    let o = c.output().expect("run sitesnap");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn kinds(w: &World) -> Vec<String> {
    let v = w.run(&["list", "--json"]).ok().json();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_config_file_makes_the_cron_line_short_and_loses_to_env_and_flags() {
    let w = World::new();
    let p = w.platform("platforms/d7", 5);
    w.site("a.example", &p);
    let conf = w.path("sitesnap.toml");
    fs::write(
        &conf,
        format!(
            "# the nightly job\nrepository = \"{}\"\nlock_wait = 5\n\n[snapshot]\nkind = \"scheduled\"\n\n[retention]\nkeep_last = 1\n",
            w.repo.display()
        ),
    )
    .unwrap();
    let r = cron(&w, &conf, &["snapshot", "--all"], &[]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    cron(&w, &conf, &["snapshot", "--all"], &[]).ok();
    assert_eq!(kinds(&w), ["scheduled", "scheduled"]);
    // A flag beats the file.
    cron(
        &w,
        &conf,
        &["snapshot", "a.example", "--kind", "manual"],
        &[],
    )
    .ok();
    assert_eq!(kinds(&w).iter().filter(|k| *k == "manual").count(), 1);
    // prune without flags: the file's retention for a site that stores none.
    cron(&w, &conf, &["prune"], &[]).ok();
    assert_eq!(w.snapshot_count(), 1);
    // The environment beats the file: another (missing) repository is named.
    let elsewhere = w.path("elsewhere").to_string_lossy().into_owned();
    let r = cron(&w, &conf, &["list"], &[("SITESNAP_REPO", &elsewhere)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("elsewhere"), "{}", r.stderr);
    // --config beats $SITESNAP_CONFIG.
    let broken = w.path("broken.toml");
    fs::write(&broken, "repository = 3\n").unwrap();
    let conf_s = conf.to_string_lossy().into_owned();
    cron(&w, &broken, &["--config", &conf_s, "list"], &[]).ok();
}

#[test]
fn a_bad_config_file_is_one_line_naming_file_and_key_and_changes_nothing() {
    let w = World::new();
    let p = w.platform("platforms/d7", 5);
    w.site("a.example", &p);
    let repo = w.repo.display().to_string();
    let cases = [
        (
            format!("repository = \"{repo}\"\n\n[snapshot]\nkinds = \"scheduled\"\n"),
            vec!["line 4", "snapshot.kinds"],
        ),
        (
            format!("repository = \"{repo}\"\nlock_wait = \"soon\"\n"),
            vec!["line 2", "lock_wait"],
        ),
        (
            "repository = \"relative/repo\"\n".to_string(),
            vec!["repository", "absolute"],
        ),
        (
            format!("repository = \"{repo}\"\n[snapshot]\nkind = \"hourly\"\n"),
            vec!["snapshot.kind", "hourly"],
        ),
        (
            format!("repository = \"{repo}\"\n[retention]\nkeep_last = 0\n"),
            vec!["retention", "keeps nothing"],
        ),
        (
            format!("repository = \"{repo}\"\n[retention\n"),
            vec!["line 2"],
        ),
    ];
    for (i, (text, names)) in cases.iter().enumerate() {
        let conf = w.path(&format!("bad{i}.toml"));
        fs::write(&conf, text).unwrap();
        let r = cron(&w, &conf, &["snapshot", "--all"], &[]);
        let mut want = names.clone();
        let file = format!("bad{i}.toml");
        want.push(file.as_str());
        assert_one_line_error(&r, 1, &want);
        assert_eq!(w.snapshot_count(), 0, "{text}");
    }
    // A named file that does not exist is an error, not a silent default.
    let r = cron(&w, &w.path("none.toml"), &["list"], &[]);
    assert_one_line_error(&r, 1, &["none.toml"]);
}

#[test]
fn a_relative_bind_is_made_absolute_like_the_platform() {
    let w = World::new();
    let p = w.platform("platforms/d7", 3);
    let s = make_site(w.dir.path(), "rel.example", &p);
    let mut c = w.cmd();
    c.current_dir(w.dir.path()).args([
        "site",
        "add",
        "rel.example",
        "--platform",
        "platforms/d7",
        "--bind",
        "config/vhost.d/rel.example",
    ]);
    assert!(c.status().unwrap().success());
    let v = w
        .run(&["site", "show", "rel.example", "--json"])
        .ok()
        .json();
    assert_eq!(v["bindings"][0], s.vhost.to_string_lossy().as_ref(), "{v}");
    assert_eq!(
        v["platform"],
        std::fs::canonicalize(&p)
            .unwrap()
            .to_string_lossy()
            .as_ref(),
        "{v}"
    );
}
