//! Databases: reading SQLite files, and real MariaDB/PostgreSQL servers (per-test database,
//! `CI=true` turns a missing server into a failure).

use super::fixtures::make_platform;
use super::world::World;
use std::fs;
use std::path::{Path, PathBuf};

/// Rows of a SQLite table as strings, ordered by rowid.
pub fn sqlite_rows(db: &Path, table: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
        .unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut s = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i)?;
            s.push(format!("{v:?}"));
        }
        Ok(s.join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

pub fn sqlite_tables(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// ------------------------------------------------------------------ real database servers

/// True when running under CI (`CI=true`): a server that cannot be reached is then a failure.
pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A database engine with a real server the tests reach through its own command-line client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Mysql,
    Postgres,
}

impl Engine {
    /// The admin URL: `SITESNAP_TEST_MYSQL_URL` (default: root over the local socket) or
    /// `SITESNAP_TEST_PG_URL` (default: postgres on 127.0.0.1:5432). The path, if any, is
    /// ignored; each test makes its own database on that server.
    pub fn admin_url(self) -> url::Url {
        let (var, default) = match self {
            Engine::Mysql => (
                "SITESNAP_TEST_MYSQL_URL",
                "mysql://root@localhost/?socket=/run/mysqld/mysqld.sock",
            ),
            Engine::Postgres => (
                "SITESNAP_TEST_PG_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
        };
        let s = std::env::var(var).unwrap_or_else(|_| default.to_string());
        url::Url::parse(&s).unwrap_or_else(|e| panic!("{var}: bad URL: {e}"))
    }

    fn client(self) -> &'static str {
        match self {
            Engine::Mysql => ["mariadb", "mysql"]
                .into_iter()
                .find(|c| which(c))
                .unwrap_or("mariadb"),
            Engine::Postgres => "psql",
        }
    }
}

/// Whether `prog` is on PATH.
pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
}

fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A database made for one test on a real server, dropped when the test ends.
pub struct TestDb {
    pub engine: Engine,
    pub name: String,
    admin: url::Url,
    /// Roles/users made by the test, dropped with the database.
    users: std::cell::RefCell<Vec<String>>,
}

/// Output of one client run.
pub struct SqlOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn client_cmd(engine: Engine, admin: &url::Url, database: Option<&str>) -> std::process::Command {
    let mut c = std::process::Command::new(engine.client());
    let user = url_decode(admin.username());
    let pw = admin.password().map(url_decode);
    let socket = admin
        .query_pairs()
        .find(|(k, _)| k == "socket" || k == "host")
        .map(|(_, v)| v.into_owned());
    let host = admin.host_str().unwrap_or("localhost").to_string();
    match engine {
        Engine::Mysql => {
            // The harness's own client: password in its environment, never in argv.
            if let Some(p) = pw {
                c.env("MYSQL_PWD", p);
            }
            c.arg(format!("--user={user}"));
            match socket {
                Some(s) => {
                    c.arg("--protocol=socket").arg(format!("--socket={s}"));
                }
                None => {
                    c.arg(format!("--host={host}"));
                    if let Some(p) = admin.port() {
                        c.arg(format!("--port={p}"));
                    }
                }
            }
            c.args([
                "--batch",
                "--skip-column-names",
                "--binary-as-hex",
                "--default-character-set=utf8mb4",
            ]);
            if let Some(d) = database {
                c.arg(format!("--database={d}"));
            }
        }
        Engine::Postgres => {
            if let Some(p) = pw {
                c.env("PGPASSWORD", p);
            }
            c.env("PGHOST", socket.unwrap_or(host));
            if let Some(p) = admin.port() {
                c.env("PGPORT", p.to_string());
            }
            c.env("PGUSER", &user);
            let maint = admin.path().trim_start_matches('/');
            let maint = if maint.is_empty() { "postgres" } else { maint };
            c.env("PGDATABASE", database.unwrap_or(maint));
            c.env("PGOPTIONS", "-c client_min_messages=warning");
            c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        }
    }
    c
}

fn run_sql(mut c: std::process::Command, sql: &str) -> SqlOut {
    use std::io::Write;
    use std::process::Stdio;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()));
    let mut stdin = child.stdin.take().unwrap();
    let sql = sql.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(sql.as_bytes());
    });
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    SqlOut {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl TestDb {
    /// Creates a uniquely named database `ssnap_<tag>_<random>` on the engine's test server.
    /// When the server (or its client) is not there: under `CI=true` the test fails; otherwise
    /// this prints why and returns None, and the test returns.
    pub fn create(engine: Engine, tag: &str) -> Option<TestDb> {
        let admin = engine.admin_url();
        let why = if !which(engine.client()) {
            Some(format!("{} is not installed", engine.client()))
        } else {
            let probe = run_sql(client_cmd(engine, &admin, None), "SELECT 1;");
            (!probe.ok).then(|| probe.stderr.trim().to_string())
        };
        if let Some(why) = why {
            let var = match engine {
                Engine::Mysql => "SITESNAP_TEST_MYSQL_URL",
                Engine::Postgres => "SITESNAP_TEST_PG_URL",
            };
            let msg = format!(
                "{engine:?} test server {} unreachable: {why} (set {var} to point at one)",
                redact_url(&admin)
            );
            if ci() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED (no server, CI is not true): {msg}");
            return None;
        }
        let name = format!("ssnap_{tag}_{}", hex::encode(noise_seed_bytes()));
        let db = TestDb {
            engine,
            name,
            admin,
            users: Default::default(),
        };
        db.admin_sql(&format!("CREATE DATABASE {};", db.ident(&db.name)));
        Some(db)
    }

    pub fn ident(&self, s: &str) -> String {
        match self.engine {
            Engine::Mysql => format!("`{}`", s.replace('`', "``")),
            Engine::Postgres => format!("\"{}\"", s.replace('"', "\"\"")),
        }
    }

    /// The URL sitesnap gets for this database (the admin credentials).
    pub fn url(&self) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }

    /// The URL for this database with other credentials, the password percent-encoded
    /// (every byte but ASCII letters and digits).
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let mut u = self.admin.clone();
        u.set_path(&format!("/{}", self.name));
        u.set_username(user).unwrap();
        let enc = pct(password);
        u.set_password(Some(&enc)).unwrap();
        let s = u.to_string();
        assert!(s.contains(&enc), "URL keeps the encoding: {s}");
        s
    }

    /// The client command the harness uses on this database.
    pub fn client(&self) -> std::process::Command {
        client_cmd(self.engine, &self.admin, Some(&self.name))
    }

    /// Runs SQL in this database; panics with the client's message if it fails.
    pub fn sql(&self, sql: &str) -> String {
        let o = self.try_sql(sql);
        assert!(o.ok, "SQL failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    /// Runs SQL in this database as another user; panics if it fails.
    pub fn sql_as(&self, user: &str, password: &str, sql: &str) -> String {
        let mut admin = self.admin.clone();
        admin.set_username(user).unwrap();
        admin.set_password(Some(&pct(password))).unwrap();
        let o = run_sql(client_cmd(self.engine, &admin, Some(&self.name)), sql);
        assert!(o.ok, "SQL as {user} failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    pub fn try_sql(&self, sql: &str) -> SqlOut {
        run_sql(self.client(), sql)
    }

    /// Runs SQL outside this database (MariaDB: no database; PostgreSQL: the maintenance one).
    pub fn admin_sql(&self, sql: &str) -> String {
        let o = run_sql(client_cmd(self.engine, &self.admin, None), sql);
        assert!(o.ok, "admin SQL failed: {}\n{sql}", o.stderr);
        o.stdout
    }

    /// Whether the database exists on the server.
    pub fn exists(&self) -> bool {
        let q = match self.engine {
            Engine::Mysql => format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{}';",
                self.name
            ),
            Engine::Postgres => format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{}';",
                self.name
            ),
        };
        self.admin_sql(&q).trim() == "1"
    }

    /// Drops the database (connections first, for PostgreSQL).
    pub fn drop_database(&self) {
        let q = match self.engine {
            Engine::Mysql => format!("DROP DATABASE IF EXISTS {};", self.ident(&self.name)),
            Engine::Postgres => format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                self.ident(&self.name)
            ),
        };
        self.admin_sql(&q);
    }

    /// Creates a user/role with `password` and every right on this database (dropped at the
    /// end of the test).
    pub fn create_user(&self, user: &str, password: &str) {
        let lit = |s: &str| match self.engine {
            Engine::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
            Engine::Postgres => format!("'{}'", s.replace('\'', "''")),
        };
        match self.engine {
            Engine::Mysql => {
                for host in ["localhost", "%"] {
                    self.admin_sql(&format!(
                        "CREATE USER '{user}'@'{host}' IDENTIFIED BY {pw};
                         GRANT ALL ON {db}.* TO '{user}'@'{host}';",
                        pw = lit(password),
                        db = self.ident(&self.name)
                    ));
                }
            }
            Engine::Postgres => {
                self.admin_sql(&format!(
                    "CREATE ROLE {u} LOGIN PASSWORD {pw};
                     ALTER DATABASE {db} OWNER TO {u};",
                    u = self.ident(user),
                    pw = lit(password),
                    db = self.ident(&self.name)
                ));
            }
        }
        self.users.borrow_mut().push(user.to_string());
    }

    /// Table names, sorted.
    pub fn tables(&self) -> Vec<String> {
        let q = match self.engine {
            Engine::Mysql => {
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;"
            }
            Engine::Postgres => {
                "SELECT tablename FROM pg_tables WHERE schemaname NOT IN \
                 ('pg_catalog', 'information_schema') ORDER BY tablename;"
            }
        };
        self.sql(q).lines().map(String::from).collect()
    }

    /// Every row of `table`, ordered, one string per row (binary as hex, NULL distinct from
    /// any string), plus an engine checksum (CHECKSUM TABLE / md5 of the ordered rows).
    pub fn table_digest(&self, table: &str, order_by: &str) -> (String, Vec<String>) {
        // `schema.table` is quoted part by part.
        let t = table
            .split('.')
            .map(|p| self.ident(p))
            .collect::<Vec<_>>()
            .join(".");
        match self.engine {
            Engine::Mysql => {
                let sum = self.sql(&format!("CHECKSUM TABLE {t};"));
                let rows = self.sql(&format!("SELECT * FROM {t} ORDER BY {order_by};"));
                (sum, rows.lines().map(String::from).collect())
            }
            Engine::Postgres => {
                let sum = self.sql(&format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY {order_by})), '-') FROM {t} x;"
                ));
                let rows = self.sql(&format!("SELECT x::text FROM {t} x ORDER BY {order_by};"));
                (sum, rows.lines().map(String::from).collect())
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let mut sql = match self.engine {
            Engine::Mysql => format!("DROP DATABASE IF EXISTS {};", self.ident(&self.name)),
            Engine::Postgres => format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE);",
                self.ident(&self.name)
            ),
        };
        for u in self.users.borrow().iter() {
            match self.engine {
                Engine::Mysql => {
                    sql.push_str(&format!(
                        "DROP USER IF EXISTS '{u}'@'localhost'; DROP USER IF EXISTS '{u}'@'%';"
                    ));
                }
                Engine::Postgres => {
                    sql.push_str(&format!("DROP ROLE IF EXISTS {};", self.ident(u)))
                }
            }
        }
        let o = run_sql(client_cmd(self.engine, &self.admin, None), &sql);
        if !o.ok {
            eprintln!(
                "warning: could not drop test database {}: {}",
                self.name, o.stderr
            );
        }
    }
}

fn redact_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

pub fn noise_seed_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random");
    b
}

/// A registered site (platform with a few files, site folder, no bindings) whose database is
/// `db_url`. Returns the platform root.
pub fn db_site(w: &World, uri: &str, db_url: &str) -> PathBuf {
    let p = w.path(&format!("platforms/{uri}"));
    make_platform(&p, 10, uri);
    fs::create_dir_all(p.join("sites").join(uri).join("files")).unwrap();
    fs::write(p.join("sites").join(uri).join("settings.php"), "<?php\n").unwrap();
    w.run(&[
        "site",
        "add",
        uri,
        "--platform",
        &p.to_string_lossy(),
        "--db",
        db_url,
    ])
    .ok();
    p
}

/// Makes the site's dumps keep every table's rows (the suites compare whole databases; the
/// default structure-only list would empty their watchdog table).
pub fn full_dumps(w: &World, uri: &str) {
    w.run(&["site", "set", uri, "--no-structure-tables"]).ok();
}

/// Restores a snapshot's database dump into `db_url` through the library (open the
/// repository, resolve the snapshot, stream its dump blob into `Database::load`).
pub fn restore_db(w: &World, snapshot_id: &str, db_url: &str) -> sitesnap::Result<()> {
    let repo = sitesnap::repo::Repo::open(&w.repo, None)?;
    let snap = repo.cat.resolve_snapshot(snapshot_id)?;
    let dump = snap.db_dump.expect("snapshot has a database dump");
    let mut r = sitesnap::capture::blob_reader(&repo, &dump)?;
    let db = sitesnap::db::Database::parse(db_url)?;
    db.load(&mut r)
}

/// Percent-encodes every byte but ASCII letters and digits.
pub fn pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
