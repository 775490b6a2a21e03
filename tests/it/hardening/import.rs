//! Hostile Aegir backups and symlinked databases: a `database.sql` that is a symlink is
//! refused; setuid/setgid/sticky bits are cleared and owners mapped to the site folder's
//! owner (said in the note); a missing file is named as missing; a full disk during import
//! shows the OS error; an SQLite path that became a symlink is refused at snapshot and restore.
use super::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::process::Command;

const URI: &str = "news.example.org";

/// An Aegir backup of the folder `src` (packed from inside it, ownership and modes kept).
fn backup_of(w: &World, src: &Path) -> PathBuf {
    let out = w.path(&format!("backups/{URI}-20240131.120000.tar.gz"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("tar")
        .arg("-czpf")
        .arg(&out)
        .arg("-C")
        .arg(src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    out
}

fn tmp_is_empty(w: &World) -> bool {
    let t = w.repo.join("data/tmp");
    fs::read_dir(&t).map(|d| d.count() == 0).unwrap_or(true)
}

#[test]
fn a_database_sql_symlink_is_refused() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    let secret = w.path("secret.txt");
    fs::write(&secret, "root:$6$secret-hash:19000::::::\n").unwrap();
    let src = w.path("src");
    fs::create_dir_all(src.join("files")).unwrap();
    fs::write(src.join("settings.php"), "<?php\n").unwrap();
    symlink(&secret, src.join("database.sql")).unwrap();
    let backup = backup_of(&w, &src);
    let before = w.state();
    let r = w.run(&["import", &backup.to_string_lossy()]);
    assert_one_line_error(&r, 1, &["database.sql"]);
    assert_eq!(w.state(), before);
    assert!(tmp_is_empty(&w));
}

#[test]
fn import_clears_setuid_bits_and_maps_owners_to_the_site_folder() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    let st = Command::new("chown")
        .args(["-R", "33:33"])
        .arg(&site.dir)
        .status()
        .unwrap();
    assert!(st.success());
    let src = w.path("src");
    fs::create_dir_all(src.join("files/sticky")).unwrap();
    fs::write(src.join("settings.php"), "<?php\n").unwrap();
    let suid = src.join("files/suid.sh");
    fs::write(&suid, "#!/bin/sh\nid\n").unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(src.join("files/sticky"), fs::Permissions::from_mode(0o3777)).unwrap();
    let backup = backup_of(&w, &src);
    let r = w.run(&["import", &backup.to_string_lossy(), "--json"]).ok();
    let id = r.json()["id"].as_str().unwrap().to_string();
    let note: String = w
        .catalog()
        .query_row("SELECT note FROM snapshots WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(note.contains("files/suid.sh (4755 -> 755)"), "{note}");
    assert!(note.contains("files/sticky (3777 -> 777)"), "{note}");
    assert!(note.contains("owner 33:33"), "{note}");
    w.run(&["restore", &id, "--yes"]).ok();
    let md = fs::metadata(site.dir.join("files/suid.sh")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o755);
    assert_eq!((md.uid(), md.gid()), (33, 33));
    let md = fs::metadata(site.dir.join("files/sticky")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o777);
}

#[test]
fn a_missing_backup_is_named_as_missing() {
    let w = World::new();
    let missing = w.path(&format!("nowhere/{URI}-20240131.120000.tar.gz"));
    let r = w.run(&["import", &missing.to_string_lossy()]);
    assert_one_line_error(&r, 1, &["No such file", &missing.to_string_lossy()]);
    assert!(!r.stderr.contains("unknown site"), "{}", r.stderr);
}

#[test]
fn a_full_disk_during_import_shows_the_os_error() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    w.site(URI, &p);
    let src = w.path("src");
    fs::create_dir_all(src.join("files")).unwrap();
    fs::write(src.join("files/big.bin"), noise(7, 2 << 20)).unwrap();
    let backup = backup_of(&w, &src);
    let before = w.state();
    let _disk = SmallDisk::mount(&w.repo.join("data/tmp"), "512k");
    let r = w.run(&["import", &backup.to_string_lossy()]);
    assert_one_line_error(&r, 1, &["No space left on device", "big.bin"]);
    assert_eq!(w.state(), before);
    assert!(tmp_is_empty(&w));
}

#[test]
fn an_sqlite_path_that_became_a_symlink_is_refused() {
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    let id = w.snapshot(URI)["id"].as_str().unwrap().to_string();
    // Another (root-only) SQLite file, and the site's path now pointing at it.
    let other = w.path("other.sqlite");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute_batch("CREATE TABLE secret (x); INSERT INTO secret VALUES ('root only');")
        .unwrap();
    drop(c);
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(&site.db).unwrap();
    symlink(&other, &site.db).unwrap();
    let other_bytes = fs::read(&other).unwrap();
    let before = w.state();
    let r = w.run(&["snapshot", URI]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("symlink"), "{}", r.stderr);
    assert_eq!(w.state(), before, "no snapshot of the other file");
    let r = w.run(&["restore", &id, "--yes", "--no-files"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("symlink"), "{}", r.stderr);
    assert_eq!(
        fs::read(&other).unwrap(),
        other_bytes,
        "the other file is untouched"
    );
    assert_eq!(sqlite_tables(&other), ["secret"]);
}

#[test]
fn a_hostile_dump_in_a_backup_of_an_sqlite_site_runs_nothing() {
    // An SQLite site's database is a file, never a script: a backup that brings SQL (here with
    // client commands that would run a program) is refused and nothing runs or changes.
    let w = World::new();
    let p = w.platform("platforms/d7", 10);
    let site = w.site(URI, &p);
    w.snapshot(URI);
    let canary = w.path("canary");
    let cs = canary.to_string_lossy().into_owned();
    let src = w.path("src");
    fs::create_dir_all(src.join("files")).unwrap();
    fs::write(src.join("settings.php"), "<?php\n").unwrap();
    fs::write(
        src.join("database.sql"),
        format!("CREATE TABLE x (a TEXT);\n\\! touch {cs}\nsystem touch {cs}\n.shell touch {cs}\n"),
    )
    .unwrap();
    let backup = backup_of(&w, &src);
    let db_before = fs::read(&site.db).unwrap();
    let before = (w.state(), world_print(&w));
    let r = w.run(&["import", &backup.to_string_lossy()]);
    assert_one_line_error(&r, 1, &["SQLite"]);
    assert!(!canary.exists(), "canary appeared");
    assert_eq!(fs::read(&site.db).unwrap(), db_before);
    assert_eq!(w.state(), before.0);
    assert_same_world("sqlite import", &world_print(&w), &before.1);
    assert!(tmp_is_empty(&w));
}
