//! Bad input gets one clear line on stderr naming the thing at fault, exit code 1 (2 for usage
//! errors), and changes nothing: the catalogue (every table's rows, the sites, the snapshot
//! ids) and the pack files are the same before and after.
use crate::support::*;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// Runs `args`, expects a one-line error with `code` naming `names`, and that nothing changed.
fn refused(w: &World, args: &[&str], code: i32, names: &[&str]) -> Run {
    let before = (w.state(), data_files(&w.repo));
    let r = w.run(args);
    eprint!("{args:?} -> {}: {}", r.code, r.stderr);
    assert_one_line_error(&r, code, names);
    assert_eq!(
        (w.state(), data_files(&w.repo)),
        before,
        "{args:?} changed the repository"
    );
    r
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_sites_and_paths_are_refused_and_change_nothing() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 200);
    let site = w.site("example.com", &p);
    w.snapshot("example.com");
    let ps = s(&p);

    // Unknown site, alone or next to a good one (nothing is captured then either).
    refused(
        &w,
        &["snapshot", "nosuch.example.com"],
        1,
        &["'nosuch.example.com'"],
    );
    refused(
        &w,
        &["snapshot", "example.com", "nosuch.example.com"],
        1,
        &["'nosuch.example.com'"],
    );
    refused(
        &w,
        &["list", "nosuch.example.com"],
        1,
        &["'nosuch.example.com'"],
    );
    refused(
        &w,
        &["site", "show", "nosuch.example.com"],
        1,
        &["'nosuch.example.com'"],
    );
    refused(
        &w,
        &["site", "remove", "nosuch.example.com"],
        1,
        &["'nosuch.example.com'"],
    );
    // Usage errors: exit 2.
    refused(&w, &["snapshot"], 2, &["--all"]);
    refused(&w, &["site", "add", "x.example.com"], 2, &["--platform"]);
    let r = w.run(&["snapshot", "example.com", "--kind", "bogus"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bogus"));

    // Missing platform path.
    let gone = w.path("platforms/no-such-platform");
    refused(
        &w,
        &["site", "add", "new.example.com", "--platform", &s(&gone)],
        1,
        &[&s(&gone)],
    );
    // A registered site whose platform was removed.
    let p2 = w.platform("platforms/drupal-7.99", 50);
    w.site("moved.example.com", &p2);
    w.snapshot("moved.example.com");
    fs::remove_dir_all(&p2).unwrap();
    refused(
        &w,
        &["snapshot", "moved.example.com"],
        1,
        &[&s(&p2), "moved.example.com"],
    );
    // A registered site whose site folder was removed.
    let p3 = w.platform("platforms/drupal-7.100", 50);
    let s3 = w.site("nodir.example.com", &p3);
    fs::remove_dir_all(&s3.dir).unwrap();
    refused(&w, &["snapshot", "nodir.example.com"], 1, &[&s(&s3.dir)]);

    // Site folders outside the platform.
    refused(
        &w,
        &[
            "site",
            "add",
            "x.example.com",
            "--platform",
            &ps,
            "--site-dir",
            "../x",
        ],
        1,
        &["'../x'"],
    );
    refused(
        &w,
        &[
            "site",
            "add",
            "x.example.com",
            "--platform",
            &ps,
            "--site-dir",
            "sites/../../x",
        ],
        1,
        &["'sites/../../x'"],
    );
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    refused(
        &w,
        &[
            "site",
            "add",
            "x.example.com",
            "--platform",
            &ps,
            "--site-dir",
            &s(&outside),
        ],
        1,
        &[&s(&outside)],
    );
    symlink(&outside, p.join("sites/evil.example.com")).unwrap();
    refused(
        &w,
        &["site", "add", "evil.example.com", "--platform", &ps],
        1,
        &["sites/evil.example.com"],
    );
    symlink(&outside, p.join("sites/link")).unwrap();
    refused(
        &w,
        &[
            "site",
            "add",
            "deep.example.com",
            "--platform",
            &ps,
            "--site-dir",
            "sites/link/deep",
        ],
        1,
        &["sites/link/deep"],
    );
    // A site folder replaced by a symlink out of the platform after it was registered.
    let s4 = w.site("swapped.example.com", &p);
    w.snapshot("swapped.example.com");
    fs::rename(&s4.dir, outside.join("swapped")).unwrap();
    symlink(outside.join("swapped"), &s4.dir).unwrap();
    refused(
        &w,
        &["snapshot", "swapped.example.com"],
        1,
        &["sites/swapped.example.com"],
    );

    // '..' and other non-host characters in a URI.
    for uri in [
        "..example.com",
        "a..b.example.com",
        "../etc",
        "a/b",
        ".hidden",
        "",
    ] {
        refused(
            &w,
            &["site", "add", uri, "--platform", &ps],
            1,
            &[&format!("'{uri}'")],
        );
    }

    // Bad database URL, missing binding file, already registered.
    refused(
        &w,
        &[
            "site",
            "add",
            "x.example.com",
            "--platform",
            &ps,
            "--db",
            "sqlite://relative.db",
        ],
        1,
        &["sqlite://relative.db"],
    );
    let nob = w.path("config/vhost.d/none");
    refused(
        &w,
        &[
            "site",
            "add",
            "x.example.com",
            "--platform",
            &ps,
            "--bind",
            &s(&nob),
        ],
        1,
        &[&s(&nob)],
    );
    refused(
        &w,
        &["site", "add", "example.com", "--platform", &ps],
        1,
        &["'example.com'"],
    );
    refused(
        &w,
        &["site", "remove", "example.com"],
        1,
        &["'example.com'", "--forget-snapshots"],
    );

    // A binding file removed after registration.
    let alias = site.alias.clone();
    let saved = fs::read(&alias).unwrap();
    fs::remove_file(&alias).unwrap();
    refused(&w, &["snapshot", "example.com"], 1, &[&s(&alias)]);
    fs::write(&alias, saved).unwrap();

    // Database file missing; database file that is not a database.
    let db = site.db.clone();
    let saved = fs::read(&db).unwrap();
    fs::remove_file(&db).unwrap();
    refused(
        &w,
        &["snapshot", "example.com"],
        1,
        &[&s(&db), "does not exist"],
    );
    fs::write(
        &db,
        b"this is not an SQLite database, just text that looks nothing like one",
    )
    .unwrap();
    refused(&w, &["snapshot", "example.com"], 1, &[&s(&db)]);
    fs::write(&db, saved).unwrap();

    // After all that, the good site still snapshots.
    w.snapshot("example.com");
}

#[test]
fn unknown_and_ambiguous_snapshot_ids() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 30);
    w.site("example.com", &p);
    // Snapshot until two ids share a first hex digit (at most 17 by pigeonhole).
    let mut ids: Vec<String> = Vec::new();
    let digit = loop {
        let id = w.snapshot("example.com")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let d = id[..1].to_string();
        let clash = ids.iter().any(|i| i.starts_with(&d));
        ids.push(id);
        if clash {
            break d;
        }
        assert!(ids.len() <= 17);
    };
    let r = refused(
        &w,
        &["show", &digit],
        1,
        &[&format!("'{digit}'"), "ambiguous"],
    );
    for i in ids.iter().filter(|i| i.starts_with(&digit)) {
        assert!(
            r.stderr.contains(i.as_str()),
            "the error lists {i}: {}",
            r.stderr
        );
    }
    // Ids never start with 0000, so this prefix is unknown.
    refused(&w, &["show", "0000"], 1, &["'0000'"]);
    refused(&w, &["show", "zz"], 1, &["'zz'"]);
    // Every id resolves by a unique prefix, in either case.
    for id in &ids {
        let j = w.run(&["show", &id[..8], "--json"]).ok().json();
        assert_eq!(j["id"], id.as_str());
        let j = w
            .run(&["show", &id[..8].to_uppercase(), "--json"])
            .ok()
            .json();
        assert_eq!(j["id"], id.as_str());
    }
}

/// A world whose repository and trees belong to `nobody`, so that a file with mode 000 is
/// really unreadable to the sitesnap process (run as `nobody` through setpriv): root reads
/// anything, so this is the only honest way to get a read that fails.
#[test]
fn unreadable_file_and_folder_as_nobody() {
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let w = World {
        repo: dir.path().join("repo"),
        dir,
        pass: None,
    };
    let p = w.path("platforms/drupal-7.98");
    make_platform(&p, 300, "nobody");
    let site = make_site(w.dir.path(), "example.com", &p);
    for e in walkdir::WalkDir::new(w.dir.path()).min_depth(1) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    // chown cleared the set-id bit of the harness's odd file; that does not matter here.
    // The repository folder is nobody's (init accepts an existing empty folder).
    fs::create_dir(&w.repo).unwrap();
    std::os::unix::fs::chown(&w.repo, Some(NOBODY), Some(NOBODY)).unwrap();
    let as_nobody = |args: &[&str]| w.run_as(NOBODY, NOBODY, args);
    let r = as_nobody(&["init"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let db = format!("sqlite://{}", site.db.display());
    let r = as_nobody(&[
        "site",
        "add",
        "example.com",
        "--platform",
        &s(&p),
        "--db",
        &db,
        "--bind",
        &s(&site.vhost),
        "--bind",
        &s(&site.alias),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = as_nobody(&["snapshot", "example.com", "--json"]);
    assert_eq!(
        r.code, 0,
        "nobody can snapshot the healthy site: {}",
        r.stderr
    );

    let check = |names: &[&str]| {
        let before = (w.state(), data_files(&w.repo));
        let r = as_nobody(&["snapshot", "example.com"]);
        eprint!("as nobody -> {}: {}", r.code, r.stderr);
        assert_one_line_error(&r, 1, names);
        assert_eq!(
            (w.state(), data_files(&w.repo)),
            before,
            "a failed snapshot changed the repository"
        );
    };
    // New platform files (read and stored first), then a site file nobody can read.
    for i in 0..40 {
        let f = p.join(format!("includes/new{i}.inc"));
        fs::write(&f, noise(900 + i, 20_000)).unwrap();
        std::os::unix::fs::chown(&f, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let secret = site.dir.join("files/upload5.bin");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    check(&[&s(&secret), "ermission denied"]);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();

    // A folder nobody can list.
    let locked = p.join("modules/node");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    check(&[&s(&locked), "ermission denied"]);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();

    // A folder inside the site directory that cannot be read: not at all (000), listed but
    // not entered (644: its entries' metadata cannot be had), entered but not listed (311).
    let styles = site.dir.join("files/styles");
    fs::create_dir_all(styles.join("thumb")).unwrap();
    fs::write(styles.join("thumb/a.jpg"), noise(950, 4000)).unwrap();
    for e in walkdir::WalkDir::new(&styles) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    for mode in [0o000, 0o644, 0o311] {
        eprintln!("site folder mode {mode:o}");
        fs::set_permissions(&styles, fs::Permissions::from_mode(mode)).unwrap();
        check(&[&s(&styles), "ermission denied"]);
    }
    fs::set_permissions(&styles, fs::Permissions::from_mode(0o755)).unwrap();

    // A database file nobody can read.
    fs::set_permissions(&site.db, fs::Permissions::from_mode(0o000)).unwrap();
    check(&[&s(&site.db)]);
    fs::set_permissions(&site.db, fs::Permissions::from_mode(0o644)).unwrap();

    let r = as_nobody(&["snapshot", "example.com", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snaps = as_nobody(&["list", "--json"]);
    assert_eq!(snaps.json().as_array().unwrap().len(), 2);
}
