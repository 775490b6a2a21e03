//! The database step on a real MariaDB server: a dump that fails half way through its load
//! after the site folder was swapped is undone (files swapped back, the database reloaded from
//! the pre-restore snapshot); an account lacking DROP is refused before anything changes.
use super::*;
use std::fs;
use std::process::Command;

const URI: &str = "maria.example.net";

/// A MariaDB site with a table of rows, and a snapshot of it; then the site changes.
fn maria_site(w: &World, db: &TestDb, url: &str) -> PathBuf {
    db.sql(
        "CREATE TABLE node (nid INT PRIMARY KEY, title TEXT);\n\
            INSERT INTO node VALUES (1, 'one'), (2, 'two'), (3, 'three');",
    );
    let p = db_site(w, URI, url);
    w.snapshot(URI);
    db.sql("UPDATE node SET title = 'changed' WHERE nid = 2; CREATE TABLE later (x INT);");
    fs::write(p.join("sites").join(URI).join("files/after.txt"), "after").unwrap();
    p
}

/// An Aegir backup of the site folder whose database.sql fails at its last statement.
fn failing_backup(w: &World, platform: &Path) -> PathBuf {
    let src = w.path("backup-src");
    fs::create_dir_all(src.join("files")).unwrap();
    fs::write(src.join("settings.php"), "<?php // from the backup\n").unwrap();
    fs::write(
        src.join("database.sql"),
        "CREATE TABLE node (nid INT PRIMARY KEY, title TEXT);\n\
         INSERT INTO node VALUES (9, 'nine');\n\
         INSERT INTO node VALUES (9, 'duplicate key: the load fails here');\n",
    )
    .unwrap();
    let out = w.path(&format!("backups/{URI}-20240131.120000.tar.gz"));
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let _ = platform;
    out
}

fn db_print(db: &TestDb) -> (Vec<String>, (String, Vec<String>)) {
    (db.tables(), db.table_digest("node", "nid"))
}

#[test]
fn a_dump_that_fails_half_loaded_is_rolled_back() {
    let Some(db) = TestDb::create(Engine::Mysql, "rollback") else {
        return;
    };
    let w = World::new();
    let p = maria_site(&w, &db, &db.url());
    let backup = failing_backup(&w, &p);
    let id = w
        .run(&["import", &backup.to_string_lossy(), "--json"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = (world_print(&w), db_print(&db));
    let r = w.run(&["restore", &id, "--yes"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("database step") && r.stderr.contains("rolled back"),
        "{}",
        r.stderr
    );
    let after = (world_print(&w), db_print(&db));
    assert_same_world("failed database step", &after.0, &before.0);
    assert_eq!(after.1, before.1, "database as before");
    assert_eq!(journal_states(&w), ["rolled-back"]);
}

#[test]
fn an_account_lacking_drop_is_refused_before_anything_changes() {
    let Some(db) = TestDb::create(Engine::Mysql, "nodrop") else {
        return;
    };
    let user = format!("u{}", &db.name[db.name.len() - 8..]);
    db.create_user(&user, "pw");
    let w = World::new();
    let _p = maria_site(&w, &db, &db.url_as(&user, "pw"));
    let snap = w.run(&["list", URI, "--json"]).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for host in ["localhost", "%"] {
        db.admin_sql(&format!(
            "REVOKE DROP ON {}.* FROM '{user}'@'{host}';",
            db.ident(&db.name)
        ));
    }
    let before = (world_print(&w), db_print(&db), w.snapshot_count());
    let r = w.run(&["restore", &snap, "--yes"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("DROP privilege"), "{}", r.stderr);
    assert_same_world("refused", &world_print(&w), &before.0);
    assert_eq!(db_print(&db), before.1);
    assert_eq!(
        w.snapshot_count(),
        before.2,
        "no pre-restore snapshot either"
    );
    assert!(journal_states(&w).is_empty());
}

#[test]
fn a_kill_during_the_database_rollback_is_finished_by_recover() {
    // Killed after the binding files went back (the database still half loaded) and after the
    // database was reloaded (the site folder not yet swapped back): `recover` finishes the
    // undo and the site and its database are as before.
    for point in ["restore-undo-bindings", "restore-undo-db"] {
        let Some(db) = TestDb::create(Engine::Mysql, "undokill") else {
            return;
        };
        let w = World::new();
        let p = maria_site(&w, &db, &db.url());
        let backup = failing_backup(&w, &p);
        let id = w
            .run(&["import", &backup.to_string_lossy(), "--json"])
            .ok()
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let before = (world_print(&w), db_print(&db));
        let (status, _, stderr) =
            w.run_status(&["restore", &id, "--yes"], &[("SITESNAP_FAILPOINT", point)]);
        assert!(!status.success(), "{point}: killed: {stderr}");
        assert!(stderr.contains(point), "{point}: {stderr}");
        assert_eq!(journal_states(&w), ["rolling-back"], "{point}");
        let r = w.run(&["-v", "recover"]).ok();
        assert!(r.stdout.contains("rolled back"), "{point}: {}", r.stdout);
        assert_same_world(point, &world_print(&w), &before.0);
        assert_eq!(db_print(&db), before.1, "{point}: database as before");
        assert_eq!(journal_states(&w), ["rolled-back"], "{point}");
    }
}
