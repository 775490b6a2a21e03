//! Site databases: parsing their URLs, redacting them for display, dumping them as a stream and
//! loading a dump back. SQLite goes through rusqlite's online backup API (a consistent copy of a
//! live database); MariaDB/MySQL and PostgreSQL go through their own dump and client tools,
//! streamed (see the `mysql` and `postgres` submodules; `child` runs the tools). This module
//! never prints or logs a password and never passes one in argv.

pub mod aegir;
mod child;
mod mysql;
mod postgres;
mod preflight;
mod scratch;
mod script;
mod sqlite;
mod structure;

pub use preflight::{Privilege, PrivilegeError};
pub use scratch::{SCRATCH_MARK, scratch_name};
pub use script::{DumpSummary, Flavor, Refusal};
pub use structure::StructureTables;

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use rusqlite::{Connection, OpenFlags};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A site database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Mysql(ServerUrl),
    Postgres(ServerUrl),
}

/// Connection details of a database server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub socket: Option<PathBuf>,
    pub name: String,
}

impl std::fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never let a password reach a debug print.
        f.debug_struct("ServerUrl")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("socket", &self.socket)
            .field("name", &self.name)
            .finish()
    }
}

impl ServerUrl {
    /// The host as client tools take it: an IPv6 address without the URL's brackets.
    pub(crate) fn tool_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl Database {
    /// Parses `sqlite:///abs/path`, `mysql://user:pass@host[:port]/name[?socket=/path]`,
    /// `postgres://` or `postgresql://user:pass@host[:port]/name`.
    pub fn parse(url: &str) -> Result<Database> {
        let bad = |why: &str| Error::Invalid(format!("database URL '{}': {why}", redact(url)));
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let p = PathBuf::from(rest);
            if !p.is_absolute() {
                return Err(bad("an SQLite path must be absolute (sqlite:///abs/path)"));
            }
            fsutil::check_relative(rest.trim_start_matches('/'), "SQLite path")?;
            return Ok(Database::Sqlite(p));
        }
        let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let dec = |s: &str| -> Result<String> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("it is not valid UTF-8 once decoded"))
        };
        let name = u.path().trim_start_matches('/').to_string();
        if name.is_empty() || name.contains('/') {
            return Err(bad("it must name one database (…/name)"));
        }
        let socket = u
            .query_pairs()
            .find(|(k, _)| k == "socket" || k == "host")
            .map(|(_, v)| PathBuf::from(v.into_owned()));
        let server = ServerUrl {
            user: dec(u.username())?,
            password: u.password().map(dec).transpose()?,
            host: u.host_str().unwrap_or("localhost").to_string(),
            port: u.port(),
            socket,
            name: dec(&name)?,
        };
        match u.scheme() {
            "mysql" | "mariadb" => Ok(Database::Mysql(server)),
            "postgres" | "postgresql" => Ok(Database::Postgres(server)),
            other => Err(bad(&format!(
                "unknown scheme '{other}' (use sqlite, mysql or postgres)"
            ))),
        }
    }

    /// The database a site's stored URL names: a URL as `parse` takes it, or a credentials
    /// reference (`aegir:///<vhost or drushrc.php>`) read from that file now.
    pub fn resolve(url: &str) -> Result<Database> {
        match aegir::reference(url) {
            Some(file) => aegir::read(file),
            None => Database::parse(url),
        }
    }

    /// The engine's name as stored in snapshots (`sqlite`, `mysql`, `postgres`).
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Mysql(_) => "mysql",
            Database::Postgres(_) => "postgres",
        }
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite://{}", p.display()),
            Database::Mysql(s) | Database::Postgres(s) => {
                let scheme = if matches!(self, Database::Mysql(_)) {
                    "mysql"
                } else {
                    "postgres"
                };
                let pw = if s.password.is_some() { ":***" } else { "" };
                let port = s.port.map(|p| format!(":{p}")).unwrap_or_default();
                let sock = s
                    .socket
                    .as_ref()
                    .map(|p| format!("?socket={}", p.display()))
                    .unwrap_or_default();
                format!(
                    "{scheme}://{}{pw}@{}{port}/{}{sock}",
                    s.user, s.host, s.name
                )
            }
        }
    }

    /// The database file, for SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p),
            _ => None,
        }
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Database {
            url: self.redacted(),
            msg: msg.into(),
        }
    }

    /// Checks that the database can be read, before anything is written.
    pub fn check(&self) -> Result<()> {
        match self {
            Database::Sqlite(p) => {
                if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                    return Err(self.err(
                        "the database path is a symlink: refused (it could lead to another file)",
                    ));
                }
                if !p.is_file() {
                    return Err(self.err("database file does not exist"));
                }
                // No SQLite connection here: a live site commits all the time, and a fresh
                // connection's first lock can starve behind it for seconds. The file must be
                // readable and start with the SQLite header; the backup checks the rest.
                let mut f = fs::File::open(p)
                    .map_err(|e| self.err(format!("cannot read the database file: {e}")))?;
                let mut head = Vec::with_capacity(16);
                (&mut f)
                    .take(16)
                    .read_to_end(&mut head)
                    .map_err(|e| self.err(format!("cannot read the database file: {e}")))?;
                match head.as_slice() {
                    b"SQLite format 3\0" => Ok(()),
                    [] => Err(self.err("the database file is empty")),
                    _ => Err(self.err("file is not a database")),
                }
            }
            Database::Mysql(s) | Database::Postgres(s) => {
                let tools = self.tools()?;
                self.query_in(&tools, s, None, &s.name, "SELECT 1")
                    .map_err(|m| self.err(format!("cannot connect: {m}")))?;
                Ok(())
            }
        }
    }

    /// Runs one read-only query and returns its rows, each field as text (NULL as empty).
    /// Used for small lookups (a Drupal site's extension list), not for data.
    pub fn query_rows(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        match self {
            Database::Sqlite(p) => {
                let c = Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|e| self.err(e.to_string()))?;
                let mut st = c.prepare(sql).map_err(|e| self.err(e.to_string()))?;
                let n = st.column_count();
                let rows = st
                    .query_map([], |r| {
                        (0..n)
                            .map(|i| {
                                Ok(match r.get_ref(i)? {
                                    rusqlite::types::ValueRef::Null => String::new(),
                                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                                    rusqlite::types::ValueRef::Text(t)
                                    | rusqlite::types::ValueRef::Blob(t) => {
                                        String::from_utf8_lossy(t).into_owned()
                                    }
                                })
                            })
                            .collect::<rusqlite::Result<Vec<String>>>()
                    })
                    .map_err(|e| self.err(e.to_string()))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(|e| self.err(e.to_string()))
            }
            Database::Mysql(s) | Database::Postgres(s) => {
                let tools = self.tools()?;
                let out = self
                    .query_in(&tools, s, None, &s.name, sql)
                    .map_err(|m| self.err(m))?;
                let sep = if matches!(self, Database::Mysql(_)) {
                    '\t'
                } else {
                    '|'
                };
                Ok(String::from_utf8_lossy(&out)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split(sep).map(String::from).collect())
                    .collect())
            }
        }
    }

    /// Dumps the database with `DumpOptions::from_env()`; see `dump_with`.
    pub fn dump<T>(
        &self,
        tmp: &Path,
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        self.dump_with(tmp, &DumpOptions::from_env()?, consume)
    }

    /// Dumps the database and hands the dump to `consume` as a stream. `tmp` is a private
    /// folder for SQLite's backup copy and MariaDB's option file (option files left there by
    /// killed runs are removed first, and said so). Returns what `consume` returned; fails if
    /// the dump tool fails, outlives `opts.timeout` (it is killed) or its output is cut short,
    /// so a partial dump is never taken for a good one.
    pub fn dump_with<T>(
        &self,
        tmp: &Path,
        opts: &DumpOptions,
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        match self {
            Database::Sqlite(p) => self.dump_sqlite(p, tmp, opts, consume),
            Database::Mysql(s) => {
                let tools = self.tools()?;
                let stale = mysql::clean_stale(tmp);
                if stale > 0 {
                    eprintln!(
                        "sitesnap: note: removed {stale} MariaDB option file(s) left in {} by a killed run",
                        tmp.display()
                    );
                }
                let cnf = mysql::OptionFile::create(s, Some(tmp))?;
                let empty = self.mysql_structure_tables(&tools, &cnf, s, &opts.structure_tables)?;
                // The definitions of the structure-only tables first (no rows, so nothing to
                // keep consistent), then every other table's rows in one transaction.
                let head = if empty.is_empty() {
                    Vec::new()
                } else {
                    // Bounded by the same timeout: a table lock blocks this dump too.
                    let mut cmd = cnf.command(&tools.dump);
                    cmd.args(mysql::structure_args(&s.name, &empty));
                    let mut all = |r: &mut dyn Read| {
                        let mut v = Vec::new();
                        r.read_to_end(&mut v).at(tmp)?;
                        Ok(v)
                    };
                    child::stream_out(
                        cmd,
                        mysql::trailer(),
                        self.secret(),
                        opts.timeout,
                        &opts.cancel,
                        &mut all,
                    )
                    .map_err(|m| self.err(m))??
                };
                let mut cmd = cnf.command(&tools.dump);
                cmd.args(mysql::dump_args(&s.name, &empty));
                let mut joined =
                    |r: &mut dyn Read| consume(&mut std::io::Cursor::new(&head).chain(r));
                child::stream_out(
                    cmd,
                    mysql::trailer(),
                    self.secret(),
                    opts.timeout,
                    &opts.cancel,
                    &mut joined,
                )
                .map_err(|m| self.err(m))?
            }
            Database::Postgres(s) => {
                let tools = self.tools()?;
                let mut cmd = postgres::command(&tools.dump, s, &s.name);
                cmd.args(postgres::dump_args(
                    opts.lock_wait_timeout,
                    &opts.structure_tables,
                ));
                child::stream_out(
                    cmd,
                    postgres::trailer(),
                    self.secret(),
                    opts.timeout,
                    &opts.cancel,
                    consume,
                )
                .map_err(|m| self.err(m))?
            }
        }
    }

    /// The SQLite "dump": a consistent copy of the file in `tmp` (structure-only tables
    /// emptied), streamed to `consume` and removed afterwards.
    fn dump_sqlite<T>(
        &self,
        p: &Path,
        tmp: &Path,
        opts: &DumpOptions,
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        self.check()?;
        let copy = tmp.join(format!("sqlite-{}.db", fsutil::random_hex(8)));
        let res = (|| {
            // Created 0600 here: SQLite would create it (and its journal, which takes the
            // file's mode) with the umask, and a crash leaves it behind.
            drop(fsutil::create_private_file(&copy)?);
            sqlite::backup(p, &copy, &opts.cancel).map_err(|e| self.err(e))?;
            structure::empty_sqlite(&copy, &opts.structure_tables)
                .map_err(|e| self.err(format!("emptying its structure-only tables failed: {e}")))?;
            fsutil::failpoint("db-copied");
            let mut f = fs::File::open(&copy).at(&copy)?;
            consume(&mut f)
        })();
        let _ = fs::remove_file(&copy);
        res
    }

    /// Replaces the database's whole content with the dump read from `r`: objects created after
    /// the dump do not survive. A server dump is checked line by line on its way to the client
    /// (see `check_dump`); a refused line stops the load: PostgreSQL's single transaction
    /// leaves the database unchanged, MariaDB may be part loaded, so restores use
    /// `load_checked`, which refuses before anything is changed.
    pub fn load(&self, r: &mut dyn Read) -> Result<()> {
        self.load_noted(r).map(|_| ())
    }

    /// Checks the whole dump (`check_dump`) and the account's privileges (`preflight`), then
    /// loads it: a hostile dump or a missing privilege changes nothing. `open` is called once
    /// per pass and must yield the same bytes each time. Returns what the load had to change
    /// (definers, owners), for the operator.
    pub fn load_checked<'a>(
        &self,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'a>>,
    ) -> Result<LoadNotes> {
        let summary = self.check_dump(&mut open()?)?;
        self.preflight(&summary).map_err(Error::from)?;
        self.load_noted(&mut open()?)
    }

    /// Reads a dump through without loading it: what it holds, or the first line that is
    /// not data, as one line naming its number. SQLite snapshots are database files, not SQL
    /// text (no client runs them), so they pass as they are.
    pub fn check_dump(&self, r: &mut dyn Read) -> Result<DumpSummary> {
        let flavor = match self {
            Database::Sqlite(_) => return Ok(DumpSummary::default()),
            Database::Mysql(_) => Flavor::Mysql,
            Database::Postgres(_) => Flavor::Postgres,
        };
        match script::check(flavor, r) {
            Ok(s) => Ok(s),
            Err(Ok(refusal)) => Err(self.err(refusal.to_string())),
            Err(Err(e)) => Err(self.err(format!("reading the dump failed: {e}"))),
        }
    }

    fn load_noted(&self, r: &mut dyn Read) -> Result<LoadNotes> {
        match self {
            Database::Sqlite(p) => {
                let tmp = fsutil::temp_sibling(p, "load");
                let res = (|| {
                    {
                        let mut f = fsutil::create_private_file(&tmp)?;
                        std::io::copy(r, &mut f).at(&tmp)?;
                        f.sync_all().at(&tmp)?;
                    }
                    if p.exists() {
                        // Copy page by page into the live file through the backup API: safe
                        // with the site's own connections and its WAL.
                        let src =
                            Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)
                                .map_err(|e| self.err(e.to_string()))?;
                        let mut dst =
                            Connection::open_with_flags(p, OpenFlags::SQLITE_OPEN_READ_WRITE)
                                .map_err(|e| self.err(e.to_string()))?;
                        dst.busy_timeout(std::time::Duration::from_secs(30))
                            .map_err(|e| self.err(e.to_string()))?;
                        let b = rusqlite::backup::Backup::new(&src, &mut dst)
                            .map_err(|e| self.err(e.to_string()))?;
                        b.step(-1).map_err(|e| self.err(e.to_string()))?;
                        drop(b);
                        drop(src);
                        fs::remove_file(&tmp).at(&tmp)?;
                    } else {
                        fs::set_permissions(
                            &tmp,
                            std::os::unix::fs::PermissionsExt::from_mode(0o640),
                        )
                        .at(&tmp)?;
                        fs::rename(&tmp, p).at(p)?;
                        if let Some(d) = p.parent() {
                            fsutil::sync_dir(d)?;
                        }
                    }
                    Ok(())
                })();
                let _ = fs::remove_file(&tmp);
                res.map(|()| LoadNotes::default())
            }
            Database::Mysql(s) => self.load_mysql(s, r),
            Database::Postgres(s) => self.load_postgres(s, r),
        }
    }

    /// The tables of a MariaDB database that `tables` makes structure-only.
    fn mysql_structure_tables(
        &self,
        tools: &Tools,
        cnf: &mysql::OptionFile,
        s: &ServerUrl,
        tables: &StructureTables,
    ) -> Result<Vec<String>> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .query_in(tools, s, Some(cnf), &s.name, mysql::LIST_TABLES)
            .map_err(|m| self.err(format!("cannot list its tables: {m}")))?;
        let names = mysql::parse_objects(&out).map_err(|m| self.err(m))?;
        Ok(names
            .into_iter()
            .map(|(_, n)| n)
            .filter(|n| tables.matches(n))
            .collect())
    }

    fn secret(&self) -> Option<&str> {
        match self {
            Database::Mysql(s) | Database::Postgres(s) => s.password.as_deref(),
            Database::Sqlite(_) => None,
        }
    }

    /// The engine's dump tool and client, or one line naming what is missing.
    fn tools(&self) -> Result<Tools> {
        let (dumps, clients, pkg) = match self {
            Database::Mysql(_) => (mysql::DUMP_TOOLS, mysql::CLIENTS, "mariadb-client"),
            Database::Postgres(_) => (postgres::DUMP_TOOLS, postgres::CLIENTS, "postgresql-client"),
            Database::Sqlite(_) => unreachable!("SQLite needs no client tools"),
        };
        let find = |names: &[&str]| {
            child::find_tool(names).ok_or_else(|| {
                self.err(format!(
                    "{} not found in PATH (install {pkg})",
                    names.join(" or ")
                ))
            })
        };
        Ok(Tools {
            dump: find(dumps)?,
            client: find(clients)?,
        })
    }

    /// Runs one SQL text through the engine's client against `database` and returns its
    /// tab-separated output, or one line saying why it failed. For MariaDB, `cnf` is an option
    /// file to reuse (else one is made for this run).
    fn query_in(
        &self,
        tools: &Tools,
        s: &ServerUrl,
        cnf: Option<&mysql::OptionFile>,
        database: &str,
        sql: &str,
    ) -> std::result::Result<Vec<u8>, String> {
        match self {
            Database::Mysql(_) => {
                let own;
                let cnf = match cnf {
                    Some(c) => c,
                    None => {
                        own = mysql::OptionFile::create(s, None).map_err(|e| e.to_string())?;
                        &own
                    }
                };
                let mut cmd = cnf.command(&tools.client);
                cmd.args(mysql::query_args(database));
                child::run(cmd, sql.as_bytes(), self.secret())
            }
            Database::Postgres(_) => {
                let mut cmd = postgres::command(&tools.client, s, database);
                cmd.args(postgres::psql_args());
                cmd.args(["-f", "-"]);
                child::run(cmd, sql.as_bytes(), self.secret())
            }
            Database::Sqlite(_) => unreachable!("SQLite is queried through rusqlite"),
        }
    }

    /// MariaDB/MySQL: create the database if it is missing, list every table, view, sequence,
    /// routine and event in it, then in one client session drop them all and load the dump.
    /// Everything that can fail without changing anything (tools, connection, listing) is
    /// checked first.
    fn load_mysql(&self, s: &ServerUrl, r: &mut dyn Read) -> Result<LoadNotes> {
        let tools = self.tools()?;
        let cnf = mysql::OptionFile::create(s, None)?;
        let exists = self
            .query_in(
                &tools,
                s,
                Some(&cnf),
                "",
                &format!(
                    "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE HEX(SCHEMA_NAME) = {}",
                    mysql::hex_lit(&s.name)
                ),
            )
            .map_err(|m| self.err(format!("cannot connect: {m}")))?;
        if String::from_utf8_lossy(&exists).trim() == "0" {
            self.query_in(
                &tools,
                s,
                Some(&cnf),
                "",
                &format!(
                    "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                    mysql::ident(&s.name)
                ),
            )
            .map_err(|m| self.err(format!("cannot create the database: {m}")))?;
        }
        let listing = self
            .query_in(&tools, s, Some(&cnf), &s.name, mysql::LIST_OBJECTS)
            .map_err(|m| self.err(format!("cannot list its objects: {m}")))?;
        let objects = mysql::parse_objects(&listing).map_err(|m| self.err(m))?;
        let who = self
            .query_in(&tools, s, Some(&cnf), "", mysql::WHO_AM_I)
            .map_err(|m| self.err(format!("cannot read the account's privileges: {m}")))?;
        let rewrite = script::Rewrite {
            definers_allowed: mysql::definers_allowed(&who),
            strip_owners: false,
        };
        let script = mysql::drop_script(&objects);
        let mut cmd = cnf.command(&tools.client);
        cmd.args(mysql::load_args(&s.name));
        let mut f = script::Filtered::new(r, script::Scanner::new(Flavor::Mysql, rewrite));
        let res = child::stream_in(cmd, script.as_bytes(), &mut f, self.secret());
        self.loaded(res, &mut f, "load failed")
    }

    /// The outcome of streaming a filtered dump into a client: a refusal is reported as such
    /// (one line naming the dump's line), else the client's own error.
    fn loaded(
        &self,
        res: std::result::Result<u64, String>,
        f: &mut script::Filtered<'_>,
        failed: &str,
    ) -> Result<LoadNotes> {
        if let Some(r) = f.refusal.take() {
            return Err(self.err(r.to_string()));
        }
        res.map_err(|m| self.err(format!("{failed}: {m}")))?;
        let mut notes = Vec::new();
        for a in &f.scanner.rewritten {
            notes.push(format!(
                "objects defined by {a} were loaded with the restoring account as definer \
                 (it may not act as {a})"
            ));
        }
        if f.scanner.dropped > 0 {
            notes.push(format!(
                "{} ownership/privilege statements of the dump were left out; the objects \
                 belong to the restoring role",
                f.scanner.dropped
            ));
        }
        Ok(LoadNotes { notes })
    }

    /// PostgreSQL: create the database if it is missing (through the `postgres` maintenance
    /// database), then in one transaction drop everything in it and load the dump: a failed
    /// load leaves the database as it was.
    fn load_postgres(&self, s: &ServerUrl, r: &mut dyn Read) -> Result<LoadNotes> {
        let tools = self.tools()?;
        if let Err(first) = self.query_in(&tools, s, None, &s.name, "SELECT 1") {
            // Is it missing, or unreachable? Ask the maintenance database.
            let q = format!(
                "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = {}",
                postgres::literal(&s.name)
            );
            let n = ["postgres", "template1"]
                .iter()
                .find_map(|m| self.query_in(&tools, s, None, m, &q).ok())
                .ok_or_else(|| self.err(format!("cannot connect: {first}")))?;
            if String::from_utf8_lossy(&n).trim() != "0" {
                return Err(self.err(format!("cannot connect: {first}")));
            }
            self.query_in(
                &tools,
                s,
                None,
                "postgres",
                &format!("CREATE DATABASE {}", postgres::ident(&s.name)),
            )
            .map_err(|m| self.err(format!("cannot create the database: {m}")))?;
        }
        let mut cmd = postgres::command(&tools.client, s, &s.name);
        cmd.args(postgres::psql_args());
        cmd.args(["--single-transaction", "-f", "-"]);
        let rewrite = script::Rewrite {
            definers_allowed: None,
            strip_owners: true,
        };
        let mut f = script::Filtered::new(r, script::Scanner::new(Flavor::Postgres, rewrite));
        let prefix = postgres::drop_script();
        let res = child::stream_in(cmd, prefix.as_bytes(), &mut f, self.secret());
        self.loaded(res, &mut f, "load failed (nothing was changed)")
    }
}

/// How long a dump may run before its tool is killed and the dump fails.
pub const DEFAULT_DUMP_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the dump tool waits for one table's lock (PostgreSQL's `--lock-wait-timeout`).
pub const DEFAULT_LOCK_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

/// A dump's stop switch, shared with another thread: once set, the dump tool is killed (or an
/// SQLite copy stops waiting for its database) and the dump fails. A capture sets it when its
/// files fail while the dump runs beside them.
#[derive(Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Stops the dump.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Has the dump been stopped?
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cancel").field(&self.is_cancelled()).finish()
    }
}

/// Limits and content of one dump.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// The whole dump, from start to end of stream.
    pub timeout: Duration,
    /// The server-side wait for a table lock (PostgreSQL; MariaDB's dump tool has no such
    /// setting, `timeout` bounds it).
    pub lock_wait_timeout: Duration,
    /// Tables dumped as their definition alone (none by default; a snapshot uses the
    /// site's list).
    pub structure_tables: StructureTables,
    /// Stops the dump when set from elsewhere.
    pub cancel: Cancel,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            timeout: DEFAULT_DUMP_TIMEOUT,
            lock_wait_timeout: DEFAULT_LOCK_WAIT_TIMEOUT,
            structure_tables: StructureTables::none(),
            cancel: Cancel::default(),
        }
    }
}

impl DumpOptions {
    /// The defaults, overridden by `SITESNAP_DUMP_TIMEOUT` and `SITESNAP_DUMP_LOCK_WAIT`
    /// (seconds) when set.
    pub fn from_env() -> Result<DumpOptions> {
        let mut o = DumpOptions::default();
        for (var, field) in [
            ("SITESNAP_DUMP_TIMEOUT", &mut o.timeout),
            ("SITESNAP_DUMP_LOCK_WAIT", &mut o.lock_wait_timeout),
        ] {
            if let Some(v) = std::env::var_os(var) {
                let v = v.to_string_lossy();
                let secs: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e9)
                    .ok_or_else(|| Error::Usage(format!("{var}='{v}': expected seconds")))?;
                *field = Duration::from_secs_f64(secs);
            }
        }
        Ok(o)
    }
}

/// What a load had to change to fit the restoring account, one line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadNotes {
    /// E.g. "objects defined by root@localhost were loaded with the restoring account as
    /// definer".
    pub notes: Vec<String>,
}

impl LoadNotes {
    /// Prints each note on stderr as `sitesnap: note: …`.
    pub fn print(&self) {
        for n in &self.notes {
            eprintln!("sitesnap: note: {n}");
        }
    }
}

/// Where the engine's tools are.
struct Tools {
    dump: PathBuf,
    client: PathBuf,
}

/// Puts the first line of `file` into a server URL as its password (percent-encoded), so
/// operators never type it on a command line.
pub fn with_password_from_file(url: &str, file: &Path) -> Result<String> {
    let text = fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    let pw = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if pw.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no password on its first line",
            file.display()
        )));
    }
    let mut u = url::Url::parse(url)
        .map_err(|e| Error::Invalid(format!("database URL '{}': {e}", redact(url))))?;
    if !matches!(u.scheme(), "mysql" | "mariadb" | "postgres" | "postgresql") {
        return Err(Error::Invalid(format!(
            "database URL '{}': only server databases take a password",
            redact(url)
        )));
    }
    u.set_password(Some(pw)).map_err(|_| {
        Error::Invalid(format!(
            "database URL '{}' cannot hold a password",
            redact(url)
        ))
    })?;
    Ok(u.to_string())
}

/// Replaces the password in a URL-looking string with `***` (for messages about bad URLs).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((cred, host)) = rest.rsplit_once('@')
    {
        let user = cred.split(':').next().unwrap_or("");
        let pw = if cred.contains(':') { ":***" } else { "" };
        return format!("{scheme}://{user}{pw}@{host}");
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        // No `@`: `user:secret/db` parses as host `user`, port `secret`. Anything after a
        // colon in the authority that is not a port number is masked.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (auth, tail) = rest.split_at(end);
        if let Some((h, port)) = auth.split_once(':')
            && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
        {
            return format!("{scheme}://{h}:***{tail}");
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn password_from_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "p@ss:w/rd%?#\nsecond line\n").unwrap();
        let url = with_password_from_file("mysql://aegir@db.example/site_1", &f).unwrap();
        match Database::parse(&url).unwrap() {
            Database::Mysql(s) => assert_eq!(s.password.as_deref(), Some("p@ss:w/rd%?#")),
            other => panic!("{other:?}"),
        }
        assert!(with_password_from_file("sqlite:///x.db", &f).is_err());
        std::fs::write(&f, "\n").unwrap();
        assert!(with_password_from_file("mysql://a@h/d", &f).is_err());
    }

    use super::*;

    #[test]
    fn parses_and_redacts() {
        let d = Database::parse("mysql://aegir:p%40ss%2Fw@db.example:3307/site_1").unwrap();
        match &d {
            Database::Mysql(s) => {
                assert_eq!(s.password.as_deref(), Some("p@ss/w"));
                assert_eq!(s.port, Some(3307));
                assert_eq!(s.name, "site_1");
            }
            _ => panic!("not mysql"),
        }
        assert_eq!(d.redacted(), "mysql://aegir:***@db.example:3307/site_1");
        assert!(!format!("{d:?}").contains("p@ss"));
        let p = Database::parse("postgresql://u:x@localhost/db").unwrap();
        assert_eq!(p.kind(), "postgres");
        assert!(Database::parse("sqlite://relative.db").is_err());
        assert!(Database::parse("sqlite:///a/../b.db").is_err());
        assert_eq!(redact("mysql://u:secret@h/d"), "mysql://u:***@h/d");
        for bad in [
            "mysql://u:secret/db",
            "mysql://u:secret@h:99999/db",
            "mysql://u:secret@h:port/db",
            "mysql://u:s%40cret%2F@h:x/db",
            "mysql://u:secret",
            "postgres://u:secret/",
            "oracle://u:secret@h/d",
            "mysql://u:sec/ret@h/",
            "mysql://u:secret@h/a/b",
            "mysql://u:secret@/db",
            "mysql://u:%FF%FEsecret@h/db",
        ] {
            let e = Database::parse(bad).unwrap_err().to_string();
            assert!(
                !e.contains("secret") && !e.contains("s%40cret"),
                "{bad}: {e}"
            );
            assert!(!e.contains("ret@"), "{bad}: {e}");
        }
        assert_eq!(redact("mysql://h:3306/db"), "mysql://h:3306/db");
        let e = Database::parse("oracle://u:secret@h/d")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
