//! Migrate preflight (`migrate --check-only`, and before every `migrate`): two Drupal-7-shaped
//! platforms; the site's database has a `system` table (SQLite and MariaDB); the target lacks
//! one enabled contrib module, has another at a different path, and a newer core and contrib
//! version; the site keeps code in `sites/<uri>/modules`.
use crate::support::*;
use std::fs;
use std::path::{Path, PathBuf};

pub(crate) const URI: &str = "shop.example.com";

/// Writes an extension: `<dir>/<name>.info` (with `version`) and, for a module, `<name>.module`.
fn ext(root: &Path, dir: &str, name: &str, module: bool, version: &str) {
    let d = root.join(dir);
    fs::create_dir_all(&d).unwrap();
    fs::write(
        d.join(format!("{name}.info")),
        format!("name = {name}\ncore = 7.x\nversion = \"{version}\"\n"),
    )
    .unwrap();
    if module {
        fs::write(d.join(format!("{name}.module")), "<?php\n").unwrap();
    }
}

/// A Drupal 7 platform: core `system`, `node`, theme `bartik`, profile `standard`, contrib in
/// `sites/all/modules`: `views` at `views_dir`, and `ctools` if `with_ctools`.
fn d7_platform(
    w: &World,
    name: &str,
    core: &str,
    views_dir: &str,
    views: &str,
    with_ctools: bool,
) -> PathBuf {
    let p = w.path(name);
    ext(&p, "modules/system", "system", true, core);
    ext(&p, "modules/node", "node", true, core);
    ext(&p, "themes/bartik", "bartik", false, core);
    ext(&p, "profiles/standard", "standard", false, core);
    fs::write(p.join("profiles/standard/standard.profile"), "<?php\n").unwrap();
    ext(&p, views_dir, "views", true, views);
    if with_ctools {
        ext(&p, "sites/all/modules/ctools", "ctools", true, "7.x-1.19");
    }
    fs::create_dir_all(p.join("sites/default")).unwrap();
    fs::write(p.join("index.php"), "<?php\n").unwrap();
    p
}

/// The rows of the site's `system` table: (filename, name, type, status).
fn system_rows() -> Vec<(String, &'static str, &'static str, i32)> {
    vec![
        ("modules/system/system.module".into(), "system", "module", 1),
        ("modules/node/node.module".into(), "node", "module", 1),
        ("themes/bartik/bartik.info".into(), "bartik", "theme", 1),
        (
            "profiles/standard/standard.profile".into(),
            "standard",
            "module",
            1,
        ),
        (
            "sites/all/modules/views/views.module".into(),
            "views",
            "module",
            1,
        ),
        (
            "sites/all/modules/ctools/ctools.module".into(),
            "ctools",
            "module",
            1,
        ),
        (
            format!("sites/{URI}/modules/shop_custom/shop_custom.module"),
            "shop_custom",
            "module",
            1,
        ),
        // Disabled: not checked.
        (
            "sites/all/modules/old/old.module".into(),
            "old",
            "module",
            0,
        ),
    ]
}

pub(crate) const SYSTEM_DDL: &str = "CREATE TABLE system (filename VARCHAR(255) PRIMARY KEY, name VARCHAR(255), type VARCHAR(12), status INT)";

pub(crate) fn system_inserts() -> String {
    system_rows()
        .iter()
        .map(|(f, n, t, s)| format!("INSERT INTO system VALUES ('{f}', '{n}', '{t}', {s});"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Both platforms and the site folder (with its own module) on the old one.
pub(crate) fn world() -> (World, PathBuf, PathBuf, PathBuf) {
    let w = World::new();
    let a = d7_platform(
        &w,
        "platforms/drupal-7.98",
        "7.98",
        "sites/all/modules/views",
        "7.x-3.20",
        true,
    );
    let b = d7_platform(
        &w,
        "platforms/drupal-7.99",
        "7.99",
        "sites/all/modules/contrib/views",
        "7.x-3.24",
        false,
    );
    let site = a.join("sites").join(URI);
    ext(&site, "modules/shop_custom", "shop_custom", true, "7.x-1.0");
    fs::create_dir_all(site.join("files")).unwrap();
    fs::write(site.join("settings.php"), "<?php\n").unwrap();
    (w, a, b, site)
}

fn assert_report(r: &Run) {
    let out = &r.stdout;
    assert!(
        out.contains("module 'ctools' is enabled but missing"),
        "{out}"
    );
    assert!(out.contains("module 'views' moves from sites/all/modules/views/views.module to sites/all/modules/contrib/views/views.module"), "{out}");
    assert!(
        out.contains(&format!("code in sites/{URI}/modules")),
        "{out}"
    );
    assert!(
        out.contains("core 7.98 -> 7.99 together with contrib changes (views)"),
        "{out}"
    );
    // Extensions found where they were are not reported, nor disabled ones.
    for quiet in [
        "'node'",
        "'bartik'",
        "'system'",
        "'old'",
        "'shop_custom'",
        "'standard'",
    ] {
        assert!(!out.contains(quiet), "{quiet}: {out}");
    }
}

#[test]
fn preflight_names_the_missing_and_the_moved_module_and_migrate_refuses() {
    let (w, a, b, site) = world();
    let db = site.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!("{SYSTEM_DDL};\n{}", system_inserts()))
        .unwrap();
    drop(c);
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", db.display()),
    ])
    .ok();
    let before = listing(&site);
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy(), "--check-only"])
        .fails(1);
    assert!(
        r.stdout.contains("7 enabled extension(s) checked"),
        "{}",
        r.stdout
    );
    assert_report(&r);
    let j = w
        .run(&[
            "migrate",
            URI,
            "--to",
            &b.to_string_lossy(),
            "--check-only",
            "--json",
        ])
        .fails(1)
        .json();
    assert_eq!(j["findings"][0]["finding"], "site-code", "{j}");
    // migrate refuses, changes nothing and takes no snapshot.
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy()])
        .fails(1);
    assert_one_line_error(&r, 1, &["ctools", "--force"]);
    assert_eq!(w.snapshot_count(), 0);
    assert_eq!(listing(&site), before);
    assert!(!b.join("sites").join(URI).exists());
    // doctor runs the same lint against the site's own platform: all there, but site code.
    let r = w.run(&["doctor", URI]).ok();
    assert!(
        r.stdout.contains(&format!("code in sites/{URI}/modules")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("missing on the target"), "{}", r.stdout);
    // With --force it migrates, the warnings on stderr.
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy(), "--force"])
        .ok();
    assert!(r.stderr.contains("MISSING"), "{}", r.stderr);
    assert!(b.join("sites").join(URI).join("settings.php").exists());
    // Now on the new platform, doctor finds ctools missing there.
    let r = w.run(&["doctor", URI]).ok();
    assert!(
        r.stdout.contains("module 'ctools' is enabled but missing"),
        "{}",
        r.stdout
    );
}

/// The preflight on a real database server: the `system` table read through the engine's
/// client; the missing and the moved module named; migrate refused, nothing changed.
fn preflight_on_a_server(engine: Engine) {
    let Some(my) = TestDb::create(engine, "pre") else {
        return;
    };
    my.sql(&format!("{SYSTEM_DDL};\n{}", system_inserts()));
    let (w, a, b, _site) = world();
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &my.url(),
    ])
    .ok();
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy(), "--check-only"])
        .fails(1);
    assert_report(&r);
    let site = a.join("sites").join(URI);
    let before = (
        listing(&a),
        listing(&b),
        my.table_digest("system", "filename"),
    );
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy()])
        .fails(1);
    assert_one_line_error(&r, 1, &["ctools", "--force"]);
    assert_eq!(w.snapshot_count(), 0);
    assert!(site.is_dir());
    assert_eq!(
        (
            listing(&a),
            listing(&b),
            my.table_digest("system", "filename")
        ),
        before
    );
}

#[test]
fn preflight_reads_the_system_table_from_mariadb() {
    preflight_on_a_server(Engine::Mysql);
}

#[test]
fn preflight_reads_the_system_table_from_postgresql() {
    preflight_on_a_server(Engine::Postgres);
}

#[test]
fn doctor_lints_every_site() {
    let (w, a, b, site) = world();
    let db = site.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!("{SYSTEM_DDL};\n{}", system_inserts()))
        .unwrap();
    drop(c);
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", db.display()),
    ])
    .ok();
    // A second site, on the platform that lacks ctools, with ctools enabled.
    const OTHER: &str = "other.example.com";
    let other = b.join("sites").join(OTHER);
    fs::create_dir_all(&other).unwrap();
    let odb = other.join("site.sqlite");
    let c = rusqlite::Connection::open(&odb).unwrap();
    c.execute_batch(&format!(
        "{SYSTEM_DDL};\nINSERT INTO system VALUES ('sites/all/modules/ctools/ctools.module', 'ctools', 'module', 1);\nINSERT INTO system VALUES ('modules/node/node.module', 'node', 'module', 1);"
    ))
    .unwrap();
    drop(c);
    w.run(&[
        "site",
        "add",
        OTHER,
        "--platform",
        &b.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", odb.display()),
    ])
    .ok();
    // `doctor` with no site: the lint of each site, against the platform it is on.
    let r = w.run(&["doctor"]).ok();
    let line = |subject: &str, msg: &str| {
        r.stdout
            .lines()
            .any(|l| l.contains(subject) && l.contains(msg))
    };
    assert!(
        line(URI, &format!("code in sites/{URI}/modules")),
        "{}",
        r.stdout
    );
    assert!(
        line(OTHER, "module 'ctools' is enabled but missing"),
        "{}",
        r.stdout
    );
    assert!(!line(URI, "is enabled but missing"), "{}", r.stdout);
    assert!(!line(OTHER, "code in"), "{}", r.stdout);
}

#[test]
fn preflight_of_a_site_without_an_extension_list_does_not_block() {
    let (w, a, b, site) = world();
    fs::remove_dir_all(site.join("modules")).unwrap();
    let db = site.join("site.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE node (nid INTEGER);")
        .unwrap();
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", db.display()),
    ])
    .ok();
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy(), "--check-only"])
        .ok();
    assert!(
        r.stdout.contains("no Drupal extension list"),
        "{}",
        r.stdout
    );
}

/// A Drupal 8+ platform: `<name>.info.yml` for each of `exts` at the given folders.
fn d8_platform(w: &World, name: &str, exts: &[&str]) -> PathBuf {
    let p = w.path(name);
    for e in exts {
        let d = p.join(e);
        fs::create_dir_all(&d).unwrap();
        let n = d.file_name().unwrap().to_string_lossy().into_owned();
        fs::write(
            d.join(format!("{n}.info.yml")),
            format!("name: {n}\ntype: module\n"),
        )
        .unwrap();
    }
    fs::create_dir_all(p.join("sites/default")).unwrap();
    p
}

#[test]
fn preflight_reads_core_extension_of_a_drupal_8_site() {
    let w = World::new();
    let a = d8_platform(
        &w,
        "platforms/d10.1",
        &[
            "core/modules/node",
            "core/themes/olivero",
            "core/profiles/standard",
            "modules/contrib/token",
        ],
    );
    let b = d8_platform(
        &w,
        "platforms/d10.2",
        &[
            "core/modules/node",
            "core/themes/olivero",
            "core/profiles/standard",
        ],
    );
    let site = a.join("sites").join(URI);
    fs::create_dir_all(&site).unwrap();
    let db = site.join("site.sqlite");
    let data = r#"a:3:{s:6:"module";a:3:{s:4:"node";i:0;s:5:"token";i:0;s:8:"standard";i:1000;}s:5:"theme";a:1:{s:7:"olivero";i:0;}s:7:"profile";s:8:"standard";}"#;
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE config (collection TEXT, name TEXT, data BLOB);")
        .unwrap();
    c.execute(
        "INSERT INTO config VALUES ('', 'core.extension', ?1)",
        [data.as_bytes()],
    )
    .unwrap();
    drop(c);
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &format!("sqlite://{}", db.display()),
    ])
    .ok();
    let r = w
        .run(&["migrate", URI, "--to", &b.to_string_lossy(), "--check-only"])
        .fails(1);
    assert!(
        r.stdout.contains("4 enabled extension(s) checked"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("module 'token' is enabled but missing"),
        "{}",
        r.stdout
    );
    for quiet in ["'node'", "'olivero'", "'standard'"] {
        assert!(!r.stdout.contains(quiet), "{quiet}: {}", r.stdout);
    }
    // Against its own platform nothing is missing.
    let r = w.run(&["doctor", URI]).ok();
    assert!(!r.stdout.contains("missing"), "{}", r.stdout);
}
