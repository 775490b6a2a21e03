//! Shared test harness: a temporary world with a repository, Drupal-like platforms, sites with
//! SQLite databases and binding files, and helpers that run the real `sitesnap` binary.
#![allow(dead_code)]

use assert_cmd::Command;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
}

/// Output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad json ({e}): {}", self.stdout))
    }
}

impl World {
    /// A new temporary world with an initialized repository.
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        let w = World { dir, repo };
        w.run(&["init"]).ok();
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sitesnap").expect("binary");
        c.env("SITESNAP_REPO", &self.repo);
        c.env_remove("SITESNAP_FAILPOINT");
        c.env_remove("SITESNAP_TEST_NOW");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run sitesnap");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Snapshot of one site, returning its JSON record.
    pub fn snapshot(&self, uri: &str) -> serde_json::Value {
        let r = self.run(&["snapshot", uri, "--json"]).ok();
        r.json()[0].clone()
    }

    /// Builds a Drupal-like platform with `files` code files under includes/, modules/,
    /// sites/all/modules/ and themes/, plus sites/default and sites/sites.php.
    pub fn platform(&self, name: &str, files: usize) -> PathBuf {
        let root = self.path(name);
        make_platform(&root, files, name);
        root
    }

    /// Adds a site folder with settings.php, some uploaded files and an SQLite database inside
    /// it, a vhost and a drush alias naming the platform, and registers it.
    pub fn site(&self, uri: &str, platform: &Path) -> Site {
        let s = make_site(self.dir.path(), uri, platform);
        let vhost = s.vhost.to_string_lossy().into_owned();
        let alias = s.alias.to_string_lossy().into_owned();
        let db = format!("sqlite://{}", s.db.display());
        self.run(&[
            "site",
            "add",
            uri,
            "--platform",
            &platform.to_string_lossy(),
            "--db",
            &db,
            "--bind",
            &vhost,
            "--bind",
            &alias,
        ])
        .ok();
        s
    }

    pub fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.repo.join("catalog.sqlite")).expect("catalog")
    }

    pub fn snapshot_count(&self) -> i64 {
        self.catalog()
            .query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))
            .unwrap()
    }
}

pub struct Site {
    pub uri: String,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub vhost: PathBuf,
    pub alias: PathBuf,
}

/// Writes a deterministic pseudo-random byte string (xorshift) of `n` bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

pub fn make_platform(root: &Path, files: usize, tag: &str) {
    let dirs = [
        "includes",
        "modules/node",
        "modules/system",
        "modules/user",
        "sites/all/modules/views",
        "sites/all/modules/ctools",
        "themes/bartik",
        "themes/garland",
    ];
    for d in dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::create_dir_all(root.join("sites/default")).unwrap();
    fs::create_dir_all(root.join("sites/all/libraries/empty")).unwrap();
    for i in 0..files {
        let d = dirs[i % dirs.len()];
        let body = format!(
            "<?php\n// {tag} file {i}\nfunction f_{i}() {{ return {}; }}\n{}\n",
            i * 7,
            "// padding line for a realistic code file size\n".repeat(i % 40)
        );
        fs::write(root.join(d).join(format!("file{i}.php")), body).unwrap();
    }
    fs::write(
        root.join("index.php"),
        "<?php require 'includes/bootstrap.inc';\n",
    )
    .unwrap();
    fs::write(root.join("sites/sites.php"), "<?php\n$sites = array();\n").unwrap();
    fs::write(
        root.join("sites/default/default.settings.php"),
        "<?php\n$databases = array();\n",
    )
    .unwrap();
    symlink("../includes", root.join("modules/includes-link")).unwrap();
    let odd = root.join("includes/odd-perms.sh");
    fs::write(&odd, "#!/bin/sh\necho odd\n").unwrap();
    fs::set_permissions(&odd, fs::Permissions::from_mode(0o4751)).unwrap();
}

pub fn make_site(world: &Path, uri: &str, platform: &Path) -> Site {
    let dir = platform.join("sites").join(uri);
    fs::create_dir_all(dir.join("files/styles")).unwrap();
    fs::create_dir_all(dir.join("private/empty")).unwrap();
    fs::write(
        dir.join("settings.php"),
        format!("<?php\n$base_url = 'http://{uri}';\n"),
    )
    .unwrap();
    fs::set_permissions(dir.join("settings.php"), fs::Permissions::from_mode(0o440)).unwrap();
    for i in 0..20 {
        fs::write(
            dir.join("files").join(format!("upload{i}.bin")),
            noise(i as u64 + uri.len() as u64, 10_000 + i * 1000),
        )
        .unwrap();
    }
    symlink("files/upload1.bin", dir.join("files/latest.bin")).unwrap();
    let db = dir.join("site.sqlite");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT, body BLOB);
         CREATE TABLE variable (name TEXT PRIMARY KEY, value TEXT);",
    )
    .unwrap();
    for i in 0..200 {
        c.execute(
            "INSERT INTO node (title, body) VALUES (?1, ?2)",
            rusqlite::params![format!("node {i} of {uri}"), noise(i, 200)],
        )
        .unwrap();
    }
    c.execute("INSERT INTO variable VALUES ('site_name', ?1)", [uri])
        .unwrap();
    drop(c);
    let conf = world.join("config");
    fs::create_dir_all(conf.join("vhost.d")).unwrap();
    fs::create_dir_all(conf.join("drush")).unwrap();
    let vhost = conf.join("vhost.d").join(uri);
    let p = platform.display();
    fs::write(
        &vhost,
        format!(
            "server {{\n  server_name {uri};\n  root {p};\n  fastcgi_param db_passwd s3cret;\n}}\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&vhost, fs::Permissions::from_mode(0o600)).unwrap();
    let alias = conf.join("drush").join(format!("{uri}.alias.drushrc.php"));
    fs::write(
        &alias,
        format!(
            "<?php\n$aliases['{uri}'] = array('root' => '{p}', 'site_path' => '{p}/sites/{uri}', 'uri' => '{uri}');\n"
        ),
    )
    .unwrap();
    Site {
        uri: uri.to_string(),
        dir,
        db,
        vhost,
        alias,
    }
}

/// A comparable listing of a tree: path, type, mode, size, content hash or link target, mtime.
pub fn listing(root: &Path) -> Vec<String> {
    listing_filtered(root, |_| true)
}

pub fn listing_filtered(root: &Path, keep: impl Fn(&Path) -> bool) -> Vec<String> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| keep(e.path().strip_prefix(root).unwrap()))
    {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let what = if md.file_type().is_symlink() {
            format!("link {}", fs::read_link(e.path()).unwrap().display())
        } else if md.is_dir() {
            "dir".to_string()
        } else {
            format!(
                "file {} {}",
                md.len(),
                hex::encode(sha2::Sha256::digest(fs::read(e.path()).unwrap()))
            )
        };
        let mtime = if md.file_type().is_symlink() || md.is_dir() {
            0
        } else {
            md.mtime()
        };
        out.push(format!(
            "{rel} {what} mode={:o} uid={} gid={} mtime={mtime}",
            md.mode() & 0o7777,
            md.uid(),
            md.gid()
        ));
    }
    out
}

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

fn noise_seed_bytes() -> [u8; 6] {
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

/// Restores a snapshot's database dump into `db_url` through the library (open the
/// repository, resolve the snapshot, stream its dump blob into `Database::load`).
pub fn restore_db(w: &World, snapshot_id: &str, db_url: &str) -> sitesnap::Result<()> {
    let repo = sitesnap::repo::Repo::open(&w.repo)?;
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

/// What `watch_procs` saw.
#[derive(Debug, Default)]
pub struct ProcReport {
    /// Command lines (of any process) that held one of the needles.
    pub argv_hits: Vec<String>,
    /// Command lines of processes named like one of the tools.
    pub tools_seen: Vec<String>,
    /// Tool processes whose environment held a needle (their command line).
    pub env_hits: Vec<String>,
    /// `--defaults-extra-file` paths seen on tool command lines: the tool, the path and its
    /// mode when seen.
    pub option_files: Vec<(String, PathBuf, Option<u32>)>,
}

/// Watches every process's command line until stopped, looking for `needles`; and the tool
/// processes (named like one of `tools`) started under the world `w` (their environment holds
/// its `SITESNAP_REPO`, inherited from sitesnap), recording their command line, whether their
/// environment holds a needle, and their option files.
pub struct ProcWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<ProcReport>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn watch_procs(w: &World, needles: Vec<String>, tools: &'static [&'static str]) -> ProcWatch {
    use std::sync::atomic::Ordering;
    let marker = format!("SITESNAP_REPO={}", w.repo.display()).into_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut rep = ProcReport::default();
        let mut seen_pids = std::collections::HashSet::new();
        while !st.load(Ordering::Relaxed) {
            let Ok(rd) = fs::read_dir("/proc") else { break };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                    continue;
                };
                if cmd.is_empty() {
                    continue;
                }
                let shown = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if needles.iter().any(|n| contains(&cmd, n.as_bytes())) {
                    rep.argv_hits.push(shown.clone());
                }
                let argv0 = cmd.split(|b| *b == 0).next().unwrap_or(b"");
                let base =
                    Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(argv0))
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                if !tools.contains(&base.as_str()) || seen_pids.contains(pid) {
                    continue;
                }
                let Ok(env) = fs::read(e.path().join("environ")) else {
                    continue;
                };
                if !env.split(|b| *b == 0).any(|v| v == marker.as_slice()) {
                    continue; // another test's process
                }
                seen_pids.insert(pid.to_string());
                rep.tools_seen.push(shown.clone());
                if needles.iter().any(|n| contains(&env, n.as_bytes())) {
                    rep.env_hits.push(shown.clone());
                }
                for a in cmd.split(|b| *b == 0) {
                    if let Some(p) = a.strip_prefix(b"--defaults-extra-file=") {
                        let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                        let mode = fs::metadata(&p)
                            .ok()
                            .map(|m| m.permissions().mode() & 0o7777);
                        rep.option_files.push((base.clone(), p, mode));
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        rep
    });
    ProcWatch { stop, handle }
}

impl ProcWatch {
    pub fn finish(self) -> ProcReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("watcher")
    }
}

/// Runs the real binary in the background (so its children can be watched) and waits.
pub fn run_watched(
    w: &World,
    args: &[&str],
    needles: Vec<String>,
    tools: &'static [&'static str],
) -> (Run, ProcReport) {
    let watch = watch_procs(w, needles, tools);
    // Give the watcher one pass before the child starts.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = w.run(args);
    (r, watch.finish())
}
