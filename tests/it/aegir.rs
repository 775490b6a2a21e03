//! Aegir: importing Aegir backup tarballs, and discovering an Aegir server's sites.
use crate::support::*;
use std::fs;
use std::process::Command;

const URI: &str = "news.example.org";

/// An Aegir-style backup of `dir`: its contents packed from inside it, plus database.sql.
fn aegir_backup(w: &World, dir: &std::path::Path, dump: Option<&str>) -> std::path::PathBuf {
    if let Some(sql) = dump {
        fs::write(dir.join("database.sql"), sql).unwrap();
    }
    let out = w.path(&format!("backups/{URI}-20240131.120000.tar.gz"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let _ = fs::remove_file(dir.join("database.sql"));
    out
}

#[test]
fn aegir_backup_imports_and_restores() {
    let w = World::new();
    let p = w.platform("platforms/drupal-7.98", 80);
    // A site without a database URL (its database.sql is kept out of the site tree anyway).
    let site = make_site(w.dir.path(), URI, &p);
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &p.to_string_lossy(),
        "--bind",
        &site.vhost.to_string_lossy(),
    ])
    .ok();
    let expected = listing(&site.dir);
    let backup = aegir_backup(&w, &site.dir, None);
    // The site changes after the backup.
    fs::write(site.dir.join("files/later.txt"), "later").unwrap();
    let s = w
        .run(&["import", &backup.to_string_lossy(), "--json"])
        .ok()
        .json();
    assert_eq!(s["kind"], "imported");
    assert_eq!(s["site"], URI);
    assert!(
        s["note"]
            .as_str()
            .unwrap()
            .contains("as they were on disk at import time")
    );
    assert!(
        s["time_local"]
            .as_str()
            .unwrap()
            .starts_with("2024-01-31 12:00:00"),
        "{s}"
    );
    let id = s["id"].as_str().unwrap().to_string();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&site.dir, fs::Permissions::from_mode(0o2755)).unwrap();
    w.run(&["restore", &id, "--yes"]).ok();
    assert_eq!(listing(&site.dir), expected);
    // The folder itself keeps the live folder's mode (an Aegir backup does not record it).
    let mode = fs::metadata(&site.dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o2755);
    // Importing leaves nothing in the repository's temporary folder.
    let tmp: Vec<_> = fs::read_dir(w.repo.join("data/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn aegir_backup_with_a_mysql_dump_is_refused_for_an_sqlite_site() {
    let w = World::new();
    let p = w.platform("platforms/p", 20);
    let site = w.site(URI, &p);
    let backup = aegir_backup(&w, &site.dir, Some("CREATE TABLE x (a int);\n"));
    let r = w.run(&["import", &backup.to_string_lossy()]).fails(1);
    assert!(r.stderr.contains("uses SQLite"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), 0);
}

#[test]
fn hostile_archives_are_refused_and_change_nothing() {
    let w = World::new();
    let p = w.platform("platforms/p", 20);
    w.site(URI, &p);
    let outside = w.path("escaped.txt");
    for (name, build) in [("dotdot", 0), ("symlink-escape", 1)] {
        let out = w.path(&format!("{URI}-20240101.000000_{build}.tar.gz"));
        let f = fs::File::create(&out).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        if build == 0 {
            let data = b"evil";
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the raw name so the builder does not refuse it.
            h.as_gnu_mut().unwrap().name[..15].copy_from_slice(b"../escaped.txt\0");
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        } else {
            h.set_size(0);
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, "files", w.dir.path()).unwrap();
            let mut h2 = tar::Header::new_gnu();
            let data = b"evil";
            h2.set_size(data.len() as u64);
            h2.set_mode(0o644);
            h2.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h2, "files/escaped.txt", &data[..])
                .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
        let r = w.run(&["import", &out.to_string_lossy()]).fails(1);
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {}", r.stderr);
        assert!(!outside.exists(), "{name}: a file escaped");
        assert_eq!(w.snapshot_count(), 0, "{name}");
    }
    let r = w
        .run(&["import", &w.path("nameless.tar.gz").to_string_lossy()])
        .fails(2);
    assert!(r.stderr.contains("--site"), "{}", r.stderr);
}

#[test]
fn discover_finds_aegir_sites() {
    let w = World::new();
    let home = w.path("aegir");
    let p = w.platform("aegir/platforms/drupal-7.98", 10);
    fs::create_dir_all(home.join(".drush")).unwrap();
    fs::create_dir_all(home.join("config/server_master/nginx/vhost.d")).unwrap();
    for uri in ["a.example.com", "b.example.com"] {
        fs::create_dir_all(p.join("sites").join(uri)).unwrap();
        fs::write(
            home.join(".drush").join(format!("{uri}.alias.drushrc.php")),
            format!(
                "<?php\n$aliases['{uri}'] = array (\n  'root' => '{}',\n  'uri' => '{uri}',\n  'site_path' => '{}/sites/{uri}',\n);\n",
                p.display(),
                p.display()
            ),
        )
        .unwrap();
        fs::write(
            home.join("config/server_master/nginx/vhost.d").join(uri),
            format!("server {{ root {}; }}\n", p.display()),
        )
        .unwrap();
    }
    // A platform alias is not a site.
    fs::write(
        home.join(".drush/platform_drupal798.alias.drushrc.php"),
        format!(
            "<?php $aliases['platform_drupal798'] = array('root' => '{}');",
            p.display()
        ),
    )
    .unwrap();
    let found = w
        .run(&["discover", "--aegir", &home.to_string_lossy(), "--json"])
        .ok()
        .json();
    let uris: Vec<_> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["uri"].clone())
        .collect();
    assert_eq!(uris, vec!["a.example.com", "b.example.com"]);
    assert_eq!(found[0]["bindings"].as_array().unwrap().len(), 2);
    w.run(&["discover", "--aegir", &home.to_string_lossy(), "--add"])
        .ok();
    let sites = w.run(&["site", "list", "--json"]).ok().json();
    assert_eq!(sites.as_array().unwrap().len(), 2);
    w.run(&["snapshot", "--all"]).ok();
    assert_eq!(w.snapshot_count(), 2);
}
