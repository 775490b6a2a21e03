//! SQLite (the embedded default: a file next to the site) through the same suite as the
//! servers: snapshot, change, restore through `Database::load` (page by page into the live
//! file), and a missing database file re-created.
use super::Flavour;
use crate::support::*;
use std::path::PathBuf;

const SCHEMA: &str = "
CREATE TABLE users (uid INTEGER PRIMARY KEY, name TEXT NOT NULL, mail TEXT NULL);
CREATE TABLE node (
  nid INTEGER PRIMARY KEY AUTOINCREMENT,
  uid INTEGER NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
  title TEXT NOT NULL, body TEXT NULL, data BLOB NULL, changed INTEGER NOT NULL
);
CREATE TABLE watchdog (wid INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL);
CREATE TABLE node_counter (nid INTEGER PRIMARY KEY, totalcount INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 60)
  INSERT INTO users SELECT n, 'user ' || n || ' 😀 𝄞 ünïcödé',
         CASE WHEN n % 3 = 0 THEN NULL ELSE 'u' || n || '@example.com' END FROM s;
WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 400)
  INSERT INTO node (uid, title, body, data, changed)
  SELECT 1 + n % 60, 'Node ' || n || ' 🚀 title',
         CASE WHEN n % 11 = 0 THEN NULL ELSE 'Body with ''quotes'' and newlines 👍 ' || hex(n * 7919) END,
         CASE WHEN n % 13 = 0 THEN NULL ELSE randomblob(24) END,
         1700000000 + n FROM s;
INSERT INTO node_counter SELECT nid, nid * 3 FROM node WHERE nid % 2 = 0;
CREATE VIEW published AS
  SELECT n.nid, n.title, u.name FROM node n JOIN users u ON u.uid = n.uid WHERE n.changed > 1700000100;
CREATE TRIGGER node_logged AFTER INSERT ON node
  BEGIN INSERT INTO watchdog (message) VALUES ('node ' || NEW.nid || ' created'); END;
";

/// Tables with their rows, and every schema object's SQL.
#[derive(Debug, PartialEq)]
pub struct State {
    tables: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
    schema: Vec<String>,
}

/// A database file in a temporary folder of its own.
pub struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }
    fn exec(&self, sql: &str) {
        self.conn().execute_batch(sql).unwrap();
    }
    fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

impl Flavour for Sqlite {
    type State = State;
    const KIND: &'static str = "sqlite";
    fn create(_tag: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.sqlite");
        Some(Sqlite { _dir: dir, path })
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
    fn load_schema(&self) {
        self.exec(SCHEMA);
    }
    fn state(&self) -> State {
        let tables = sqlite_tables(&self.path);
        let rows = tables
            .iter()
            .map(|t| (t.clone(), sqlite_rows(&self.path, t)))
            .collect();
        let c = self.conn();
        let mut st = c
            .prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY 1")
            .unwrap();
        let schema = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        State {
            tables,
            rows,
            schema,
        }
    }
    fn check_loaded(&self, before: &State) {
        assert_eq!(
            before.tables,
            [
                "node",
                "node_counter",
                "sqlite_sequence",
                "users",
                "watchdog"
            ]
        );
        assert!(
            before
                .schema
                .iter()
                .any(|s| s.starts_with("trigger node_logged"))
        );
        assert!(
            before
                .schema
                .iter()
                .any(|s| s.starts_with("view published"))
        );
    }
    fn mess_up(&self) {
        self.exec(
            "UPDATE users SET name = name || ' changed 🙃', mail = NULL WHERE uid % 4 = 1;
             UPDATE node SET data = x'deadbeef00', body = NULL WHERE nid BETWEEN 10 AND 30;
             DELETE FROM node WHERE nid > 350;
             INSERT INTO node (uid, title, body, data, changed) VALUES (1, 'new 🆕', 'x', NULL, 1);
             CREATE TABLE added_later (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO added_later VALUES (1, 'should not survive the restore');
             DROP TABLE node_counter;
             CREATE VIEW added_view AS SELECT 1 AS one;",
        );
    }
    fn check_messed(&self, before: &State) {
        let tables = sqlite_tables(&self.path);
        assert!(tables.contains(&"added_later".to_string()));
        assert!(!tables.contains(&"node_counter".to_string()));
        assert_ne!(sqlite_rows(&self.path, "users"), before.rows[3].1);
    }
    fn check_restored(&self, after: &State) {
        assert!(!after.tables.contains(&"added_later".to_string()));
        assert!(after.tables.contains(&"node_counter".to_string()));
        assert!(!after.schema.iter().any(|s| s.contains("added_")));
        // The view works, the trigger fires, the sequence goes on.
        assert_eq!(
            self.count("SELECT count(*) FROM published"),
            self.count("SELECT count(*) FROM node WHERE changed > 1700000100")
        );
        let logged = self.count("SELECT count(*) FROM watchdog");
        self.exec("INSERT INTO node (uid, title, changed) VALUES (2, 'after restore', 5);");
        assert_eq!(self.count("SELECT count(*) FROM watchdog"), logged + 1);
        assert_eq!(self.count("SELECT max(nid) FROM node"), 401);
        let name: String = self
            .conn()
            .query_row("SELECT name FROM users WHERE uid = 1", [], |r| r.get(0))
            .unwrap();
        assert!(name.contains("😀 𝄞"), "{name}");
    }
    fn drop_database(&self) {
        std::fs::remove_file(&self.path).unwrap();
    }
    fn exists(&self) -> bool {
        self.path.exists()
    }
}

super::db_suite!(Sqlite);
