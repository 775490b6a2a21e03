//! Drupal-aware dumps: cache, sessions and log tables are dumped as structure only by default
//! (like drush's `--structure-tables-key=common`), on SQLite, MariaDB and PostgreSQL; restore
//! brings them back empty and every other row as it was; the list is set per site.
use crate::support::*;
use std::io::Read;

/// A site database on one engine.
enum Db {
    Sqlite(tempfile::TempDir),
    Server(TestDb),
}

const STRUCTURE: &[&str] = &["cache_form", "sessions", "watchdog"];

impl Db {
    fn create(kind: &str) -> Option<Db> {
        match kind {
            "sqlite" => Some(Db::Sqlite(tempfile::tempdir().unwrap())),
            "mysql" => TestDb::create(Engine::Mysql, "cachet").map(Db::Server),
            _ => TestDb::create(Engine::Postgres, "cachet").map(Db::Server),
        }
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(d) => format!("sqlite://{}", d.path().join("site.sqlite").display()),
            Db::Server(t) => t.url(),
        }
    }

    fn sql(&self, sql: &str) -> String {
        match self {
            Db::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("site.sqlite")).unwrap();
                c.execute_batch(sql).unwrap();
                String::new()
            }
            Db::Server(t) => t.sql(sql),
        }
    }

    fn count(&self, table: &str) -> i64 {
        match self {
            Db::Sqlite(d) => {
                let c = rusqlite::Connection::open(d.path().join("site.sqlite")).unwrap();
                c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .unwrap()
            }
            Db::Server(t) => t
                .sql(&format!("SELECT count(*) FROM {table};"))
                .trim()
                .parse()
                .unwrap(),
        }
    }

    /// The node rows, in order.
    fn nodes(&self) -> Vec<String> {
        match self {
            Db::Sqlite(d) => sqlite_rows(&d.path().join("site.sqlite"), "node"),
            Db::Server(t) => t
                .sql("SELECT nid, title FROM node ORDER BY nid;")
                .lines()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The Drupal-like schema: node rows, and cache_form/sessions/watchdog rows holding `marker`.
    fn load(&self, marker: &str) {
        let mut s = String::from(
            "CREATE TABLE node (nid INTEGER PRIMARY KEY, title VARCHAR(255) NOT NULL);
             CREATE TABLE cache_form (cid VARCHAR(255) PRIMARY KEY, data TEXT);
             CREATE TABLE sessions (sid VARCHAR(128) PRIMARY KEY, session TEXT);
             CREATE TABLE watchdog (wid INTEGER PRIMARY KEY, message TEXT);\n",
        );
        for i in 1..=40 {
            s.push_str(&format!(
                "INSERT INTO node VALUES ({i}, 'Node {i}');
                 INSERT INTO cache_form VALUES ('form-{i}', '{marker} form {i}');
                 INSERT INTO sessions VALUES ('sid-{i}', '{marker} session {i}');
                 INSERT INTO watchdog VALUES ({i}, '{marker} log {i}');\n"
            ));
        }
        self.sql(&s);
    }
}

/// The bytes of a snapshot's database dump.
fn dump_bytes(w: &World, id: &str) -> Vec<u8> {
    let repo = sitesnap::repo::Repo::open(&w.repo, None).unwrap();
    let snap = repo.cat.resolve_snapshot(id).unwrap();
    let mut r = sitesnap::capture::blob_reader(&repo, &snap.db_dump.unwrap()).unwrap();
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn show(w: &World, uri: &str) -> serde_json::Value {
    w.run(&["site", "show", uri, "--json"]).ok().json()
}

/// Snapshot with the default list, change everything, restore: the cache tables exist and
/// are empty, the node rows are as they were, the dump never held a cache row.
fn cache_tables_come_back_empty(kind: &str) {
    let Some(db) = Db::create(kind) else {
        return;
    };
    let marker = format!("CACHE-MARKER-{}", hex::encode(noise_seed_bytes()));
    db.load(&marker);
    let nodes = db.nodes();
    assert_eq!(nodes.len(), 40);

    let w = World::new();
    db_site(&w, "cache.example", &db.url());
    let v = show(&w, "cache.example");
    assert_eq!(v["structure_tables_default"], true, "{v}");
    assert!(
        v["structure_tables"]
            .as_array()
            .unwrap()
            .contains(&"cache_*".into())
    );
    let id = w.snapshot("cache.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dump = dump_bytes(&w, &id);
    assert!(!contains(&dump, &marker), "a cache row reached the dump");
    assert!(contains(&dump, "Node 17"), "node rows are in the dump");
    for t in STRUCTURE {
        assert!(contains(&dump, t), "the dump defines {t}");
    }

    db.sql("DELETE FROM node WHERE nid > 20; INSERT INTO cache_form VALUES ('late', 'x');");
    restore_db(&w, &id, &db.url()).expect("restore");
    assert_eq!(db.nodes(), nodes);
    for t in STRUCTURE {
        assert_eq!(db.count(t), 0, "{t} is present and empty");
    }
    // The emptied tables work: a row goes in again.
    db.sql("INSERT INTO cache_form VALUES ('again', 'y');");
    assert_eq!(db.count("cache_form"), 1);
}

/// The list is set per site: a custom list, none, back to the default; bad input is refused
/// with one line and changes nothing; the dump follows the stored list.
fn per_site_setting(kind: &str) {
    let Some(db) = Db::create(kind) else {
        return;
    };
    let marker = format!("CACHE-MARKER-{}", hex::encode(noise_seed_bytes()));
    db.load(&marker);
    let w = World::new();
    db_site(&w, "set.example", &db.url());

    let r = w.run(&[
        "site",
        "set",
        "set.example",
        "--structure-tables",
        "Cache;x",
    ]);
    assert_one_line_error(&r, 2, &["Cache;x"]);
    assert_eq!(show(&w, "set.example")["structure_tables_default"], true);

    w.run(&[
        "site",
        "set",
        "set.example",
        "--structure-tables",
        "sess*, watchdog",
    ])
    .ok();
    let v = show(&w, "set.example");
    assert_eq!(
        v["structure_tables"],
        serde_json::json!(["sess*", "watchdog"])
    );
    assert_eq!(v["structure_tables_default"], false);
    let text = w.run(&["site", "show", "set.example"]).ok().stdout;
    assert!(text.contains("structure: sess*,watchdog\n"), "{text}");
    let id = w.snapshot("set.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dump = dump_bytes(&w, &id);
    assert!(
        contains(&dump, &format!("{marker} form 3")),
        "cache_form rows kept"
    );
    assert!(!contains(&dump, &format!("{marker} session 3")));
    assert!(!contains(&dump, &format!("{marker} log 3")));

    w.run(&["site", "set", "set.example", "--no-structure-tables"])
        .ok();
    let v = show(&w, "set.example");
    assert_eq!(v["structure_tables"], serde_json::json!([]));
    let id = w.snapshot("set.example")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dump = dump_bytes(&w, &id);
    for what in ["form", "session", "log"] {
        assert!(
            contains(&dump, &format!("{marker} {what} 3")),
            "{what} kept"
        );
    }
    restore_db(&w, &id, &db.url()).expect("restore");
    assert_eq!(db.count("sessions"), 40);

    w.run(&[
        "site",
        "set",
        "set.example",
        "--structure-tables",
        "default",
    ])
    .ok();
    assert_eq!(show(&w, "set.example")["structure_tables_default"], true);
}

macro_rules! engine {
    ($m:ident, $kind:literal) => {
        mod $m {
            #[test]
            fn cache_tables_come_back_empty_but_present() {
                super::cache_tables_come_back_empty($kind);
            }
            #[test]
            fn structure_tables_are_set_per_site() {
                super::per_site_setting($kind);
            }
        }
    };
}

engine!(sqlite, "sqlite");
engine!(mariadb, "mysql");
engine!(postgres, "postgres");

/// Bytes a second snapshot adds when 5 MB of cache rows were rewritten since the first, with
/// the default list and with every row dumped (MariaDB). Prints the figures for
/// docs/databases.md; run with `cargo test --test it cache_tables::measure -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn measure_cache_churn_bytes_added() {
    let mut added = Vec::new();
    for full in [false, true] {
        let Some(db) = TestDb::create(Engine::Mysql, "churn") else {
            return;
        };
        db.sql(
            "CREATE TABLE node (nid INT PRIMARY KEY, title VARCHAR(255), body TEXT);
             INSERT INTO node SELECT seq, CONCAT('Node ', seq), REPEAT(MD5(seq), 3)
               FROM seq_1_to_20000;
             CREATE TABLE cache_form (cid VARCHAR(255) PRIMARY KEY, data LONGBLOB);",
        );
        let churn = "DELETE FROM cache_form; INSERT INTO cache_form SELECT CONCAT('form-', seq),
             CONCAT(SHA2(RAND(), 512), SHA2(RAND(), 512), SHA2(RAND(), 512), SHA2(RAND(), 512),
                    SHA2(RAND(), 512), SHA2(RAND(), 512), SHA2(RAND(), 512), SHA2(RAND(), 512))
             FROM seq_1_to_5000;";
        db.sql(churn);
        let w = World::new();
        db_site(&w, "churn.example", &db.url());
        if full {
            full_dumps(&w, "churn.example");
        }
        let first = w.snapshot("churn.example");
        db.sql(churn);
        let second = w.snapshot("churn.example");
        println!(
            "{}: first dump {} bytes, added {}; second dump {} bytes, added {}",
            if full { "every row" } else { "default list" },
            first["db_bytes"],
            first["bytes_added"],
            second["db_bytes"],
            second["bytes_added"]
        );
        added.push(second["bytes_added"].as_u64().unwrap());
    }
    assert!(added[0] < added[1], "{added:?}");
}
