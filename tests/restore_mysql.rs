//! The seed's disaster with a MariaDB database (issue 4): a site on platform A is snapshotted,
//! "migrated" to platform B where a failed update changes its database, then restored: it is on
//! A again with the database it had, and the update's table is gone.
mod util;
use std::fs;
use util::*;

const URI: &str = "shop.example.com";

#[test]
fn migrated_mariadb_site_goes_back_to_its_platform_and_database() {
    let Some(db) = TestDb::create(Engine::Mysql, "migrate") else {
        return;
    };
    db.sql(
        "CREATE TABLE node (nid INT PRIMARY KEY, title VARCHAR(100) CHARACTER SET utf8mb4, body BLOB);
         CREATE TABLE users (uid INT PRIMARY KEY, name VARCHAR(60));
         INSERT INTO node VALUES (1, 'first 😀', UNHEX('00FF10')), (2, 'second', NULL), (3, 'third', 'x');
         INSERT INTO users VALUES (1, 'admin'), (2, 'editor');
         CREATE VIEW titles AS SELECT title FROM node;",
    );
    let w = World::new();
    let a = w.platform("platforms/drupal-7.98", 200);
    let b = w.platform("platforms/drupal-7.105", 200);
    let site = make_site(w.dir.path(), URI, &a);
    fs::remove_file(&site.db).unwrap();
    w.run(&[
        "site",
        "add",
        URI,
        "--platform",
        &a.to_string_lossy(),
        "--db",
        &db.url(),
        "--bind",
        &site.vhost.to_string_lossy(),
        "--bind",
        &site.alias.to_string_lossy(),
    ])
    .ok();
    let files_before = listing(&site.dir);
    let node_before = db.table_digest("node", "nid");
    let users_before = db.table_digest("users", "uid");
    let vhost_before = fs::read_to_string(&site.vhost).unwrap();
    let snap = w.snapshot(URI)["id"].as_str().unwrap().to_string();

    // Migrate to B by hand, the way Aegir does, and let the update break things.
    let moved = b.join("sites").join(URI);
    fs::rename(&site.dir, &moved).unwrap();
    for f in [&site.vhost, &site.alias] {
        let t = fs::read_to_string(f)
            .unwrap()
            .replace(&a.display().to_string(), &b.display().to_string());
        fs::write(f, t).unwrap();
    }
    fs::write(moved.join("files/after.txt"), "after").unwrap();
    db.sql(
        "CREATE TABLE cache_update (cid VARCHAR(10));
         UPDATE node SET title = 'changed' WHERE nid = 2;
         DELETE FROM users WHERE uid = 2;
         DROP VIEW titles;",
    );

    let r = w.run(&["restore", &snap, "--yes"]).ok();
    assert!(r.stdout.contains("undo with"), "{}", r.stdout);
    assert!(!moved.exists());
    assert_eq!(listing(&site.dir), files_before);
    assert_eq!(fs::read_to_string(&site.vhost).unwrap(), vhost_before);
    assert_eq!(db.table_digest("node", "nid"), node_before);
    assert_eq!(db.table_digest("users", "uid"), users_before);
    let tables = db.tables();
    assert!(!tables.iter().any(|t| t == "cache_update"), "{tables:?}");
    let views =
        db.sql("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE();");
    assert_eq!(views.trim(), "titles", "the dropped view is back");
    // The password-free URL is all the catalogue's snapshot rows show.
    let list = w.run(&["list", URI, "--json"]).ok().json();
    let pre = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "pre-restore")
        .unwrap();
    // Undo: the migrated state comes back, database included.
    w.run(&["restore", pre["id"].as_str().unwrap(), "--yes"])
        .ok();
    assert!(moved.join("files/after.txt").exists());
    assert!(db.tables().iter().any(|t| t == "cache_update"));
}
