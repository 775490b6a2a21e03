//! PostgreSQL sites against the real server (`SITESNAP_TEST_PG_URL`, default postgres on
//! 127.0.0.1:5432): the shared suite (snapshot through `pg_dump`, restore through
//! `Database::load`: everything in the database replaced, in one transaction; a missing
//! database re-created; a failed load changes nothing), then passwords kept out of argv and
//! output, and failures that record nothing.
use super::{Flavour, password};
use crate::support::*;

/// Tables, foreign keys, a view, a trigger (and its function), a procedure, an enum and a
/// domain, serial sequences, a second schema, bytea, 4-byte UTF-8 and NULLs.
const SCHEMA: &str = r#"
CREATE SCHEMA extra;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE users (
  uid integer PRIMARY KEY,
  name varchar(60) NOT NULL,
  mail text NULL,
  created integer NULL,
  mood mood NULL
);
CREATE TABLE node (
  nid serial PRIMARY KEY,
  uid integer NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
  title text NOT NULL,
  body text NULL,
  data bytea NULL,
  changed posint NOT NULL
);
CREATE TABLE taxonomy_index (
  nid integer NOT NULL REFERENCES node (nid) ON DELETE CASCADE,
  tid integer NOT NULL,
  name text NULL,
  PRIMARY KEY (nid, tid)
);
CREATE TABLE watchdog (wid serial PRIMARY KEY, message text NOT NULL, variables bytea NULL);
CREATE TABLE node_counter (nid integer PRIMARY KEY, totalcount bigint NOT NULL DEFAULT 0);
CREATE TABLE extra.settings (name text PRIMARY KEY, value jsonb NULL);
INSERT INTO users
  SELECT n, 'user ' || n || ' 😀 𝄞 ünïcödé ' || repeat('ß', n % 7),
         CASE WHEN n % 3 = 0 THEN NULL ELSE 'u' || n || '@example.com' END,
         CASE WHEN n % 5 = 0 THEN NULL ELSE 1600000000 + n END,
         (ARRAY['sad', 'ok', 'happy']::mood[])[1 + n % 3]
  FROM generate_series(1, 60) n;
INSERT INTO node (uid, title, body, data, changed)
  SELECT 1 + n % 60, 'Node ' || n || ' 🚀 title',
         CASE WHEN n % 11 = 0 THEN NULL
              ELSE E'Body with \'quotes\', \\backslashes\\, tabs\t and\nnewlines 👍 ' || md5(n::text) END,
         CASE WHEN n % 13 = 0 THEN NULL
              ELSE decode(md5(n::text) || '00ff5c270a0d1a' || md5((n * 7)::text), 'hex') END,
         1700000000 + n
  FROM generate_series(1, 400) n;
INSERT INTO taxonomy_index
  SELECT nid, 1 + nid % 5, CASE WHEN nid % 4 = 0 THEN NULL ELSE 'tag ' || nid % 5 || ' 🏷' END FROM node;
INSERT INTO node_counter SELECT nid, nid * 3 FROM node WHERE nid % 2 = 0;
INSERT INTO extra.settings VALUES ('site_name', '"Ünïcode 😀"'), ('empty', NULL);
CREATE VIEW published AS
  SELECT n.nid, n.title, u.name FROM node n JOIN users u ON u.uid = n.uid WHERE n.changed > 1700000100;
CREATE FUNCTION log_node() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO watchdog (message, variables) VALUES ('node ' || NEW.nid || ' created', NEW.data);
  RETURN NEW;
END $$;
CREATE TRIGGER node_logged AFTER INSERT ON node FOR EACH ROW EXECUTE FUNCTION log_node();
CREATE PROCEDURE bump_counter(p_nid integer) LANGUAGE sql AS $$
  UPDATE node_counter SET totalcount = totalcount + 1 WHERE nid = p_nid
$$;
"#;

const TABLES: &[(&str, &str)] = &[
    ("node", "nid"),
    ("node_counter", "nid"),
    ("taxonomy_index", "nid, tid"),
    ("users", "uid"),
    ("watchdog", "wid"),
    ("extra.settings", "name"),
];

#[derive(Debug, PartialEq)]
pub struct State {
    tables: Vec<String>,
    digests: Vec<(String, (String, Vec<String>))>,
    catalog: String,
}

/// Everything a restore must bring back: rows of every table, and the schemas, views,
/// triggers, routines, types and sequence positions.
fn state(db: &TestDb) -> State {
    State {
        tables: db.tables(),
        digests: TABLES
            .iter()
            .map(|(t, o)| (t.to_string(), db.table_digest(t, o)))
            .collect(),
        catalog: db.sql(
            r"SELECT 'schema', nspname::text FROM pg_namespace
                WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
              UNION ALL SELECT 'view ' || schemaname || '.' || viewname, definition::text FROM pg_views
                WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
              UNION ALL SELECT 'trigger ' || tgname, pg_get_triggerdef(oid) FROM pg_trigger
                WHERE NOT tgisinternal
              UNION ALL SELECT 'routine ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                       md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
              UNION ALL SELECT 'type ' || t.typname, t.typtype::text || coalesce(
                         (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                          FROM pg_enum e WHERE e.enumtypid = t.oid), '')
                FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')
              UNION ALL SELECT 'sequence node', last_value::text FROM node_nid_seq
              UNION ALL SELECT 'sequence watchdog', last_value::text FROM watchdog_wid_seq
              ORDER BY 1, 2;",
        ),
    }
}

fn mess_up(db: &TestDb) {
    db.sql(
        "UPDATE users SET name = name || ' changed 🙃', mail = NULL WHERE uid % 4 = 1;
         UPDATE node SET data = '\\xdeadbeef00', body = NULL WHERE nid BETWEEN 10 AND 30;
         DELETE FROM node WHERE nid > 350;
         INSERT INTO node (uid, title, body, data, changed) VALUES (1, 'new 🆕', 'x', NULL, 1);
         CREATE TABLE added_later (id integer PRIMARY KEY, v text);
         INSERT INTO added_later VALUES (1, 'should not survive the restore');
         DROP TABLE node_counter;
         CREATE VIEW added_view AS SELECT 1 AS one;
         CREATE FUNCTION added_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1';
         CREATE SCHEMA added_schema;
         CREATE TABLE added_schema.t (id integer);
         ALTER TYPE mood ADD VALUE 'angry';
         UPDATE extra.settings SET value = '1' WHERE name = 'empty';",
    );
}

/// PostgreSQL on the test server (`Engine::Postgres`).
pub struct Postgres(TestDb);

impl Flavour for Postgres {
    type State = State;
    const KIND: &'static str = "postgres";
    fn create(tag: &str) -> Option<Self> {
        TestDb::create(Engine::Postgres, tag).map(Postgres)
    }
    fn url(&self) -> String {
        self.0.url()
    }
    fn load_schema(&self) {
        self.0.sql(SCHEMA);
    }
    fn state(&self) -> State {
        state(&self.0)
    }
    fn check_loaded(&self, before: &State) {
        assert!(before.catalog.contains("trigger node_logged"));
        assert!(before.catalog.contains("routine bump_counter("));
    }
    fn mess_up(&self) {
        mess_up(&self.0);
    }
    fn check_messed(&self, _before: &State) {
        assert!(self.0.tables().contains(&"added_later".to_string()));
        assert!(!self.0.tables().contains(&"node_counter".to_string()));
    }
    fn check_restored(&self, after: &State) {
        let db = &self.0;
        let tables = db.tables();
        assert!(!tables.contains(&"added_later".to_string()));
        assert!(!tables.contains(&"t".to_string()), "added_schema.t is gone");
        assert!(tables.contains(&"node_counter".to_string()));
        assert!(!after.catalog.contains("added_"), "{}", after.catalog);
        // The view works, the trigger fires, the procedure runs, the sequence goes on.
        assert_eq!(
            db.sql("SELECT count(*) FROM published;").trim(),
            db.sql("SELECT count(*) FROM node WHERE changed > 1700000100;")
                .trim()
        );
        let logged: i64 = db
            .sql("SELECT count(*) FROM watchdog;")
            .trim()
            .parse()
            .unwrap();
        let nid = db.sql(
            "INSERT INTO node (uid, title, changed) VALUES (2, 'after restore', 5) RETURNING nid;",
        );
        assert_eq!(
            nid.trim(),
            "401",
            "the sequence continues from the snapshot"
        );
        db.sql("CALL bump_counter(2);");
        assert_eq!(
            db.sql("SELECT count(*) FROM watchdog;")
                .trim()
                .parse::<i64>()
                .unwrap(),
            logged + 1
        );
        assert_eq!(
            db.sql("SELECT totalcount FROM node_counter WHERE nid = 2;")
                .trim(),
            "7"
        );
        assert!(
            db.sql("SELECT name FROM users WHERE uid = 1;")
                .contains("😀 𝄞")
        );
    }
    fn drop_database(&self) {
        self.0.drop_database();
    }
    fn exists(&self) -> bool {
        self.0.exists()
    }
    /// A dump that fails halfway: the drop of every object and the partial load roll back.
    fn after_missing_restore(&self, before: &State) {
        let d = sitesnap::db::Database::parse(&self.0.url()).unwrap();
        let e = d
            .load(&mut &b"CREATE TABLE half_loaded (id integer);\nTHIS IS NOT SQL;\n"[..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("load failed (nothing was changed)"), "{e}");
        assert!(e.contains("syntax error"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(self.state(), *before);
    }
}

super::db_suite!(Postgres);

#[test]
fn postgres_password_never_in_argv_or_output_and_failures_record_nothing() {
    let Some(db) = TestDb::create(Engine::Postgres, "secret") else {
        return;
    };
    let pw = password();
    let role = format!("ssnap_{}", &db.name[db.name.len() - 8..]);
    db.create_user(&role, &pw);
    // The site's role owns what it dumps, as on a hosting server.
    db.sql_as(&role, &pw, SCHEMA);
    db.sql_as(
        &role,
        &pw,
        "CREATE TABLE cache_page (cid integer PRIMARY KEY, data bytea NOT NULL);
         INSERT INTO cache_page SELECT n, decode(repeat(md5(n::text), 12), 'hex')
           FROM generate_series(1, 100000) n;",
    );
    let url = db.url_as(&role, &pw);
    let needles = vec![pw.clone(), pct(&pw)];
    let w = World::new();
    let mut outputs = Vec::new();
    let p = w.path("platforms/pgpw.example");
    make_platform(&p, 5, "pgpw");
    std::fs::create_dir_all(p.join("sites/pgpw.example")).unwrap();
    let r = w
        .run(&[
            "site",
            "add",
            "pgpw.example",
            "--platform",
            &p.to_string_lossy(),
            "--db",
            &url,
        ])
        .ok();
    outputs.push(r.stdout + &r.stderr);

    let (r, rep) = run_watched(
        &w,
        &["snapshot", "pgpw.example", "--json"],
        needles.clone(),
        &["pg_dump", "psql"],
    );
    let r = r.ok();
    outputs.push(r.stdout.clone() + &r.stderr);
    let id = r.json()[0]["id"].as_str().unwrap().to_string();
    assert!(
        rep.tools_seen
            .iter()
            .any(|c| c.starts_with("/usr/bin/pg_dump") || c.contains("pg_dump ")),
        "the dump child was not seen running: {rep:?}"
    );
    assert!(
        rep.argv_hits.is_empty(),
        "password in a command line: {:?}",
        rep.argv_hits
    );
    // By design the password reaches the child in its own environment (PGPASSWORD), which only
    // its user (and root) can read.
    for c in &rep.env_hits {
        assert!(c.contains("pg_dump") || c.contains("psql"), "{c}");
    }
    for args in [
        vec!["list", "--json"],
        vec!["show", &id],
        vec!["show", &id, "--json"],
        vec!["site", "show", "pgpw.example"],
        vec!["site", "list", "--json"],
    ] {
        let r = w.run(&args).ok();
        outputs.push(r.stdout + &r.stderr);
    }
    let shown = w.run(&["show", &id, "--json"]).ok().json();
    assert!(
        shown["db_url"].as_str().unwrap().contains(":***@"),
        "{shown}"
    );

    // Restore as that role.
    db.sql("DROP TABLE node_counter;");
    restore_db(&w, &id, &url).expect("restore as the site's role");
    assert!(db.tables().contains(&"node_counter".to_string()));

    let one_line = |r: &Run, want: &str| {
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(
            r.stderr.contains(want),
            "expected '{want}' in: {}",
            r.stderr
        );
        assert_eq!(r.stdout, "");
        for n in &needles {
            assert!(!r.stderr.contains(n.as_str()), "{}", r.stderr);
        }
    };
    let count = w.snapshot_count();

    // The client tools are missing.
    let empty = w.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let r = w
        .run_env(
            &["snapshot", "pgpw.example"],
            &[("PATH", &empty.to_string_lossy())],
        )
        .fails(1);
    one_line(&r, "pg_dump not found in PATH");

    // Nothing listens there.
    db_site(
        &w,
        "pgdown.example",
        &format!("postgres://postgres@127.0.0.1:1/{}", db.name),
    );
    let r = w.run(&["snapshot", "pgdown.example"]).fails(1);
    one_line(&r, "cannot connect");

    // No such database.
    let mut u = url::Url::parse(&db.url()).unwrap();
    u.set_path("/ssnap_no_such_database");
    db_site(&w, "pggone.example", u.as_str());
    let r = w.run(&["snapshot", "pggone.example"]).fails(1);
    one_line(&r, "does not exist");

    // pg_dump fails halfway: a table the site's role may not read.
    db.sql("CREATE TABLE zz_not_yours (id integer); INSERT INTO zz_not_yours VALUES (1);");
    let r = w.run(&["snapshot", "pgpw.example"]).fails(1);
    one_line(&r, "pg_dump failed");
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    assert_eq!(w.snapshot_count(), count, "nothing recorded");

    for o in &outputs {
        for n in &needles {
            assert!(!o.contains(n.as_str()), "password in sitesnap output: {o}");
        }
    }
}
