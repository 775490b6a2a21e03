//! One database suite run against each engine. The scenarios (`roundtrip`,
//! `missing_database`) are written once against the [`Flavour`] trait; `db_suite!` generates
//! `sqlite::x`, `mariadb::x` and `postgres::x` tests from them. Each engine's module also keeps
//! the tests that only make sense for a server (passwords, clients, dump dedup).
use crate::support::*;

mod hardening;
pub mod mariadb;
pub mod postgres;
pub mod sqlite;

/// One engine as the scenarios see it: a database made for one test, its schema, the state a
/// restore must bring back, and the engine's own extra checks.
pub trait Flavour: Sized {
    /// Everything a restore must bring back, as comparable values.
    type State: PartialEq + std::fmt::Debug;
    /// `db_kind` in a snapshot's JSON record.
    const KIND: &'static str;
    /// A fresh empty database for one test; None when its server is not there (and CI is not
    /// true).
    fn create(tag: &str) -> Option<Self>;
    /// The site's database URL.
    fn url(&self) -> String;
    /// The URL the "missing database" scenario registers the site with (default: `url`).
    fn site_url(&self) -> String {
        self.url()
    }
    /// Creates the Drupal-like schema with its rows.
    fn load_schema(&self);
    /// Reads the state back.
    fn state(&self) -> Self::State;
    /// Checks on the freshly loaded schema.
    fn check_loaded(&self, before: &Self::State);
    /// Changes made after the snapshot.
    fn mess_up(&self);
    /// Checks that `mess_up` did change things.
    fn check_messed(&self, before: &Self::State);
    /// Checks after the restore beyond `state == before`: the objects work.
    fn check_restored(&self, after: &Self::State);
    /// Removes the database.
    fn drop_database(&self);
    /// Whether the database exists.
    fn exists(&self) -> bool;
    /// Extra checks at the end of the "missing database" scenario.
    fn after_missing_restore(&self, _before: &Self::State) {}
}

/// Snapshots the site and checks the record names the engine and holds a dump.
pub fn snapshot_id<F: Flavour>(w: &World, uri: &str) -> String {
    let s = w.snapshot(uri);
    assert_eq!(s["db_kind"], F::KIND);
    assert!(s["db_dump"].is_string(), "{s}");
    assert!(s["db_bytes"].as_u64().unwrap() > 10_000, "{s}");
    s["id"].as_str().unwrap().to_string()
}

/// Snapshot, change the database, restore: the state is as it was and its objects work.
pub fn roundtrip<F: Flavour>() {
    let Some(db) = F::create("roundtrip") else {
        return;
    };
    db.load_schema();
    let before = db.state();
    db.check_loaded(&before);

    let w = World::new();
    db_site(&w, "db.example", &db.url());
    full_dumps(&w, "db.example");
    let id = snapshot_id::<F>(&w, "db.example");

    db.mess_up();
    db.check_messed(&before);

    restore_db(&w, &id, &db.url()).expect("restore");
    let after = db.state();
    assert_eq!(after, before);
    db.check_restored(&after);
}

/// Restoring into a database that no longer exists creates it with the snapshot's state.
pub fn missing_database<F: Flavour>() {
    let Some(db) = F::create("missing") else {
        return;
    };
    db.load_schema();
    let before = db.state();
    let url = db.site_url();
    let w = World::new();
    db_site(&w, "missing.example", &url);
    full_dumps(&w, "missing.example");
    let id = snapshot_id::<F>(&w, "missing.example");
    db.drop_database();
    assert!(!db.exists());
    restore_db(&w, &id, &url).expect("restore into a missing database");
    assert!(db.exists());
    assert_eq!(db.state(), before);
    db.after_missing_restore(&before);
}

/// Snapshot, change the database, lose the catalogue, rebuild it from the store alone
/// (`repair catalog`), restore: files and dump read back the same and the state is as it was.
pub fn repair_then_restore<F: Flavour>() {
    let Some(db) = F::create("repair") else {
        return;
    };
    db.load_schema();
    let before = db.state();
    let w = World::new();
    db_site(&w, "repair.example", &db.url());
    full_dumps(&w, "repair.example");
    let id = snapshot_id::<F>(&w, "repair.example");
    let files = stored(&w.repo, &id);
    let read = restore_read(&w.repo, &id);
    db.mess_up();
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(w.repo.join(f));
    }
    w.run(&["repair", "catalog"]).ok();
    assert_eq!(stored(&w.repo, &id), files);
    let again = restore_read(&w.repo, &id);
    assert_eq!(again.dump, read.dump, "the dump reads back byte for byte");
    assert_eq!(again.site, read.site, "site files, modes and owners");
    assert_eq!(again.platform, read.platform);
    restore_db(&w, &id, &db.url()).expect("restore after repair");
    assert_eq!(db.state(), before);
}

/// A password with URL-special characters (and a random tail, so that tests running at the same
/// time never see each other's).
pub fn password() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    format!("p@ss:w/o?r#d%&\"'\\ +=;[x]{{y}}|ü 😀{}", hex::encode(b))
}

/// The scenarios every engine runs, as tests of the module it is called in.
macro_rules! db_suite {
    ($flavour:ty) => {
        #[test]
        fn snapshot_then_restore_brings_back_everything() {
            crate::db::roundtrip::<$flavour>();
        }

        #[test]
        fn repair_catalog_then_restore_brings_back_everything() {
            crate::db::repair_then_restore::<$flavour>();
        }

        #[test]
        fn restore_creates_a_missing_database() {
            crate::db::missing_database::<$flavour>();
        }
    };
}
use db_suite;
