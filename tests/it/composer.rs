//! Drupal 8+ composer platforms: the web root in a subfolder (`web/`, `docroot/`, or what the
//! vhost says), other sites' folders never platform code, extra site paths (a private files
//! folder) captured, diffed, restored and migrated with the site, and the site-folder and
//! extra-path validation on every platform shape.

use crate::support::*;
use std::fs;
use std::path::Path;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Folders sitesnap leaves beside a target while it works (`.<name>.sitesnap-...`).
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sitesnap-"))
        .collect()
}

/// Two sites on one composer platform; a.test is snapshotted, then both sites change (b.test's
/// settings, files and private file; a.test's settings and private files). Restoring a.test
/// finds no drift, brings a.test and its private folder back, and leaves b.test byte-identical.
fn other_site_untouched(web_root: &str, name_web_root: bool) {
    other_site_untouched_after(web_root, name_web_root, false)
}

/// As [`other_site_untouched`]; with `repair`, the catalogue is deleted after the snapshot and
/// rebuilt from the store (`repair catalog`), which must bring back the web root and the extra
/// paths too.
fn other_site_untouched_after(web_root: &str, name_web_root: bool, repair: bool) {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", web_root);
    let extra: &[&str] = if name_web_root {
        &["--web-root", web_root]
    } else {
        &[]
    };
    let a = w.composer_site("a.test", &p, web_root, extra);
    let b = w.composer_site("b.test", &p, web_root, &[]);
    let shown = w.run(&["site", "show", "a.test", "--json"]).ok().json();
    assert_eq!(shown["site_dir"], format!("{web_root}/sites/a.test"));
    assert_eq!(names(&shown["extra_paths"]), vec!["private/a.test"]);

    let snap = w.snapshot("a.test");
    let id = snap["id"].as_str().unwrap().to_string();
    if repair {
        for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
            let _ = fs::remove_file(w.repo.join(f));
        }
        w.run(&["repair", "catalog"]).ok();
        let shown = w.run(&["site", "show", "a.test", "--json"]).ok().json();
        assert_eq!(names(&shown["extra_paths"]), vec!["private/a.test"]);
    }
    let st = stored(&w.repo, &id);
    for k in [
        "platform:composer.json".to_string(),
        "platform:vendor/autoload.php".to_string(),
        format!("platform:{web_root}/core/lib/Drupal.php"),
        format!("platform:{web_root}/sites/sites.php"),
        format!("platform:{web_root}/sites/default/default.settings.php"),
        format!("platform:{web_root}/sites/all/modules/README.txt"),
        "site:settings.php".to_string(),
        "extra:private/a.test/secret.txt".to_string(),
        "extra:private/a.test/exports/report.csv".to_string(),
    ] {
        assert!(st.contains_key(&k), "{k} missing from {:?}", st.keys());
    }
    assert!(
        !st.keys().any(|k| k.contains("b.test")
            || k.starts_with(&format!("platform:{web_root}/sites/a.test"))
            || k.starts_with("platform:private/a.test")),
        "other sites' folders or a.test's own paths in the platform tree: {:?}",
        st.keys()
    );

    let private_a = p.join("private/a.test");
    let private_b = p.join("private/b.test");
    fs::write(b.dir.join("settings.php"), "<?php\n// b.test v2\n").unwrap();
    fs::write(b.dir.join("files/new.bin"), noise(9, 3000)).unwrap();
    fs::write(private_b.join("secret.txt"), "b.test secret v2\n").unwrap();
    fs::write(a.dir.join("settings.php"), "<?php\n// a.test v2\n").unwrap();
    fs::write(private_a.join("secret.txt"), "a.test secret v2\n").unwrap();
    fs::write(private_a.join("added.txt"), "after the snapshot\n").unwrap();
    let (b_before, bp_before) = (listing(&b.dir), listing(&private_b));

    let d = w.run(&["diff", &id, "--json"]).ok().json();
    assert!(
        d["platform"]["changed"].as_array().unwrap().is_empty(),
        "{d}"
    );
    assert!(d["platform"]["added"].as_array().unwrap().is_empty(), "{d}");
    assert_eq!(
        names(&d["extra"]["changed"]),
        vec!["private/a.test/secret.txt"]
    );
    assert_eq!(
        names(&d["extra"]["added"]),
        vec!["private/a.test/added.txt"]
    );
    assert_eq!(names(&d["site"]["changed"]), vec!["settings.php"]);

    let dry = w.run(&["restore", &id, "--dry-run"]).ok();
    assert!(dry.stdout.contains("used as it is"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("REFUSED"), "{}", dry.stdout);
    assert!(dry.stdout.contains("private/a.test"), "{}", dry.stdout);
    w.run(&["restore", &id, "--yes"]).ok();

    assert_eq!(
        fs::read_to_string(a.dir.join("settings.php")).unwrap(),
        "<?php\n// a.test v1\n"
    );
    assert_eq!(
        fs::read_to_string(private_a.join("secret.txt")).unwrap(),
        "a.test secret v1\n"
    );
    assert!(!private_a.join("added.txt").exists());
    assert_eq!(listing(&b.dir), b_before, "b.test's site folder changed");
    assert_eq!(
        listing(&private_b),
        bp_before,
        "b.test's private folder changed"
    );
    assert!(leftovers(&p.join("private")).is_empty());
    assert!(leftovers(&p.join(web_root).join("sites")).is_empty());
    // The next snapshot finds the restored site as it was.
    let again = w.snapshot("a.test");
    let st2 = stored(&w.repo, again["id"].as_str().unwrap());
    assert_eq!(st2, st);
}

#[test]
fn restore_on_a_web_platform_leaves_the_other_site_alone() {
    other_site_untouched("web", false);
}

#[test]
fn repair_catalog_keeps_web_roots_and_extra_paths() {
    other_site_untouched_after("web", false, true);
}

#[test]
fn restore_on_a_docroot_platform_leaves_the_other_site_alone() {
    other_site_untouched("docroot", true);
}

/// A web root no guess would find (`app/`) is read from the site's vhost `root`.
#[test]
fn restore_with_a_vhost_declared_web_root_leaves_the_other_site_alone() {
    other_site_untouched("app", false);
}

/// The platform is deleted; restoring a.test recreates it from the snapshot with a.test's
/// folder and private folder, and without b.test's folder (gone, it stays gone).
#[test]
fn recreated_platform_does_not_resurrect_other_sites() {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", "docroot");
    let a = w.composer_site("a.test", &p, "docroot", &[]);
    w.composer_site("b.test", &p, "docroot", &[]);
    let id = w.snapshot("a.test")["id"].as_str().unwrap().to_string();
    let code_before = listing_filtered(&p, |rel| {
        !rel.starts_with("docroot/sites/a.test")
            && !rel.starts_with("docroot/sites/b.test")
            && !rel.starts_with("private/a.test")
            && !rel.starts_with("private/b.test")
    });
    // The SQLite file is rebuilt from its dump: compared by its rows, not its bytes.
    let not_db = |rel: &Path| !rel.starts_with("site.sqlite");
    let site_before = listing_filtered(&a.dir, not_db);
    let rows_before = sqlite_rows(&a.db, "node");
    let private_before = listing(&p.join("private/a.test"));
    fs::remove_dir_all(&p).unwrap();
    // gc keeps what the extra paths tree names; verify reads it.
    w.run(&["gc"]).ok();
    w.run(&["verify", "--read-data"]).ok();

    let dry = w.run(&["restore", &id, "--dry-run"]).ok();
    assert!(
        dry.stdout.contains("recreated from the snapshot"),
        "{}",
        dry.stdout
    );
    w.run(&["restore", &id, "--yes"]).ok();
    assert!(!p.join("docroot/sites/b.test").exists());
    assert!(!p.join("private/b.test").exists());
    assert!(p.join("composer.json").is_file());
    assert!(p.join("docroot/sites/sites.php").is_file());
    let code_after = listing_filtered(&p, |rel| {
        !rel.starts_with("docroot/sites/a.test") && !rel.starts_with("private/a.test")
    });
    // Folder mtimes of private/ and sites/ change when a.test's folders go back in.
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| l.rsplit_once(' ').map_or(l.clone(), |(a, _)| a.to_string()))
            .collect()
    };
    assert_eq!(strip(code_after), strip(code_before));
    assert_eq!(listing_filtered(&a.dir, not_db), site_before);
    assert_eq!(sqlite_rows(&a.db, "node"), rows_before);
    assert_eq!(listing(&p.join("private/a.test")), private_before);
    assert!(leftovers(p.parent().unwrap()).is_empty());
}

/// Real drift on a composer platform (a patched core file) is still refused and shown, without
/// b.test's changed settings in the difference; --repair-platform repairs the code only and
/// never touches b.test's folder.
#[test]
fn repair_platform_never_touches_other_sites() {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", "web");
    w.composer_site("a.test", &p, "web", &[]);
    let b = w.composer_site("b.test", &p, "web", &[]);
    let id = w.snapshot("a.test")["id"].as_str().unwrap().to_string();
    fs::write(p.join("web/core/lib/Drupal.php"), "<?php // patched\n").unwrap();
    fs::write(b.dir.join("settings.php"), "<?php\n// b.test v2\n").unwrap();
    let b_before = listing(&b.dir);
    let r = w.run(&["restore", &id, "--yes"]).fails(1);
    assert!(
        r.stderr.contains("differs") || r.stdout.contains("REFUSED"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let plan = w.run(&["restore", &id, "--dry-run"]).fails(1);
    assert!(
        plan.stdout.contains("~ web/core/lib/Drupal.php"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("b.test/settings.php"),
        "{}",
        plan.stdout
    );
    w.run(&["restore", &id, "--yes", "--repair-platform"]).ok();
    assert_eq!(
        fs::read_to_string(p.join("web/core/lib/Drupal.php")).unwrap(),
        "<?php class Drupal {}\n"
    );
    assert_eq!(listing(&b.dir), b_before);
}

/// Migrating a composer site moves its private folder with it; rolling back to the
/// pre-migrate snapshot puts both back on the old platform.
#[test]
fn migrate_moves_extra_paths() {
    let w = World::new();
    let p1 = w.composer_platform("platforms/d10-1", "web");
    let p2 = w.composer_platform("platforms/d10-2", "web");
    w.composer_site("a.test", &p1, "web", &[]);
    let r = w
        .run(&["migrate", "a.test", "--to", &s(&p2), "--json"])
        .ok()
        .json();
    assert!(p2.join("web/sites/a.test/settings.php").is_file());
    assert_eq!(
        fs::read_to_string(p2.join("private/a.test/secret.txt")).unwrap(),
        "a.test secret v1\n"
    );
    assert!(!p1.join("private/a.test").exists());
    assert!(!p1.join("web/sites/a.test").exists());
    let pre = r["pre_migrate"].as_str().unwrap().to_string();
    w.run(&["restore", &pre, "--yes"]).ok();
    assert!(p1.join("private/a.test/secret.txt").is_file());
    assert!(p1.join("web/sites/a.test/settings.php").is_file());
    assert!(
        !p2.join("private/a.test").exists(),
        "the copy on the left platform stays"
    );
    assert!(leftovers(&p2.join("private")).is_empty());
}

fn add(w: &World, p: &Path, uri: &str, more: &[&str]) -> Run {
    let ps = s(p);
    let mut args = vec!["site", "add", uri, "--platform", &ps];
    args.extend(more);
    w.run(&args)
}

/// Site folders that are not a site's own are refused, with and without a web root;
/// `<web root>/sites/<name>` is accepted.
#[test]
fn site_dir_validation_on_every_platform_shape() {
    let w = World::new();
    let composer = w.composer_platform("platforms/d10", "web");
    let classic = w.platform("platforms/d7", 5);
    let bad = [
        "sites",
        "sites/",
        "sites/all",
        "sites/default",
        "sites/default/files",
        ".",
        "./",
        "/",
        "",
    ];
    for p in [&composer, &classic] {
        for with_web_root in [false, true] {
            for d in bad {
                let mut more = vec!["--site-dir", d];
                if with_web_root && p == &composer {
                    more.extend(["--web-root", "web"]);
                }
                let r = add(&w, p, "x.test", &more);
                assert_one_line_error(&r, 1, &["site directory"]);
            }
        }
    }
    for d in [
        "web",
        "web/sites",
        "web/sites/all",
        "web/sites/default",
        "web/sites/all/x",
    ] {
        let r = add(
            &w,
            &composer,
            "x.test",
            &["--site-dir", d, "--web-root", "web"],
        );
        assert_one_line_error(&r, 1, &[&format!("'{d}'")]);
    }
    assert!(
        w.run(&["site", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    fs::create_dir_all(composer.join("web/sites/x.test")).unwrap();
    add(&w, &composer, "x.test", &["--site-dir", "web/sites/x.test"]).ok();
    // Without --site-dir the web root is found and the site folder is <web root>/sites/<uri>.
    fs::create_dir_all(composer.join("web/sites/y.test")).unwrap();
    add(&w, &composer, "y.test", &[]).ok();
    let y = w.run(&["site", "show", "y.test", "--json"]).ok().json();
    assert_eq!(y["site_dir"], "web/sites/y.test");
    add(&w, &classic, "z.test", &[]).ok();
    let z = w.run(&["site", "show", "z.test", "--json"]).ok().json();
    assert_eq!(z["site_dir"], "sites/z.test");
}

/// Extra paths must be inside the platform, not shared code, and not another site's.
#[test]
fn extra_path_validation() {
    let w = World::new();
    let p = w.composer_platform("platforms/d10", "web");
    w.composer_site("b.test", &p, "web", &[]);
    fs::create_dir_all(p.join("web/sites/a.test")).unwrap();
    let outside = w.path("outside");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, p.join("private/escape")).unwrap();
    for (x, why) in [
        (".", "extra path '.'"),
        ("/", "extra path '/'"),
        ("../private", "extra path '../private'"),
        ("vendor", "shared"),
        ("vendor/composer", "shared"),
        ("web", "'web'"),
        ("web/core", "shared"),
        ("web/sites/all", "'web/sites/all'"),
        ("web/sites/b.test", "b.test"),
        ("private/b.test", "b.test"),
        ("private/b.test/exports", "b.test"),
        ("web/sites/a.test/private", "site folder"),
        ("private/escape/a.test", "private/escape"),
    ] {
        let r = add(&w, &p, "a.test", &["--extra-path", x]);
        assert_one_line_error(&r, 1, &[why]);
    }
    add(
        &w,
        &p,
        "a.test",
        &[
            "--extra-path",
            "private/a.test",
            "--extra-path",
            "config/a.test",
        ],
    )
    .ok();
    let a = w.run(&["site", "show", "a.test", "--json"]).ok().json();
    assert_eq!(
        names(&a["extra_paths"]),
        vec!["private/a.test", "config/a.test"]
    );
    // site set replaces them, validated the same way.
    let r = w.run(&["site", "set", "a.test", "--extra-path", "private/b.test"]);
    assert_one_line_error(&r, 1, &["b.test"]);
    w.run(&["site", "set", "a.test", "--extra-path", "private/a.test"])
        .ok();
    let a = w.run(&["site", "show", "a.test", "--json"]).ok().json();
    assert_eq!(names(&a["extra_paths"]), vec!["private/a.test"]);
}

/// Classic Drupal 7: another site's changed settings never make a restore refuse, and the
/// restore never touches that site.
#[test]
fn classic_platform_still_works() {
    let w = World::new();
    let p = w.platform("platforms/d7", 20);
    let a = w.site("a.example.com", &p);
    let b = w.site("b.example.com", &p);
    let id = w.snapshot("a.example.com")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let st = stored(&w.repo, &id);
    assert!(st.contains_key("platform:sites/sites.php"));
    assert!(!st.keys().any(|k| k.contains("b.example.com")));
    fs::write(a.dir.join("files/upload1.bin"), "changed").unwrap();
    fs::remove_file(b.dir.join("settings.php")).unwrap();
    fs::write(b.dir.join("settings.php"), "<?php // b v2\n").unwrap();
    let b_before = listing(&b.dir);
    let dry = w.run(&["restore", &id, "--dry-run"]).ok();
    assert!(dry.stdout.contains("used as it is"), "{}", dry.stdout);
    w.run(&["restore", &id, "--yes"]).ok();
    assert_ne!(
        fs::read(a.dir.join("files/upload1.bin")).unwrap(),
        b"changed"
    );
    assert_eq!(listing(&b.dir), b_before);
}

/// Discovery reads the web root from the alias and vhost `root` of a composer platform.
#[test]
fn discovery_reads_the_web_root() {
    let w = World::new();
    let home = w.path("aegir");
    let p = w.composer_platform("aegir/platforms/d10", "web");
    let site = make_composer_site(w.dir.path(), "a.test", &p, "web");
    fs::create_dir_all(home.join(".drush")).unwrap();
    fs::create_dir_all(home.join("config/server_master/nginx/vhost.d")).unwrap();
    fs::copy(&site.alias, home.join(".drush/a.test.alias.drushrc.php")).unwrap();
    fs::copy(
        &site.vhost,
        home.join("config/server_master/nginx/vhost.d/a.test"),
    )
    .unwrap();
    let found = w
        .run(&["discover", "--aegir", &s(&home), "--json"])
        .ok()
        .json();
    assert_eq!(found[0]["platform"], s(&fs::canonicalize(&p).unwrap()));
    assert_eq!(found[0]["web_root"], "web");
    w.run(&["discover", "--aegir", &s(&home), "--add"]).ok();
    let a = w.run(&["site", "show", "a.test", "--json"]).ok().json();
    assert_eq!(a["site_dir"], "web/sites/a.test");
    w.run(&["snapshot", "a.test"]).ok();
}
