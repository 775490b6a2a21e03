//! Site databases: parsing their URLs, redacting them for display, dumping them as a stream and
//! loading a dump back. SQLite goes through rusqlite's online backup API (a consistent copy of a
//! live database); MariaDB/MySQL and PostgreSQL go through their own dump and client tools,
//! streamed. This module never prints or logs a password and never passes one in argv.

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use rusqlite::{Connection, OpenFlags};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
            Database::Mysql(_) | Database::Postgres(_) => Err(self.err(format!(
                "{} databases are not supported by this build yet",
                self.kind()
            ))),
        }
    }

    /// Dumps the database and hands the dump to `consume` as a stream. `tmp` is a private
    /// folder for SQLite's backup copy. Returns what `consume` returned.
    pub fn dump<T>(
        &self,
        tmp: &Path,
        consume: &mut dyn FnMut(&mut dyn Read) -> Result<T>,
    ) -> Result<T> {
        match self {
            Database::Sqlite(p) => {
                self.check()?;
                let copy = tmp.join(format!("sqlite-{}.db", fsutil::random_hex(8)));
                let res = (|| {
                    // Created 0600 here: SQLite would create it (and its journal, which takes
                    // the file's mode) with the umask, and a crash leaves it behind.
                    drop(fsutil::create_private_file(&copy)?);
                    sqlite_backup(p, &copy).map_err(|e| self.err(e))?;
                    fsutil::failpoint("db-copied");
                    let mut f = fs::File::open(&copy).at(&copy)?;
                    consume(&mut f)
                })();
                let _ = fs::remove_file(&copy);
                res
            }
            _ => Err(self.err(format!(
                "{} databases are not supported by this build yet",
                self.kind()
            ))),
        }
    }

    /// Replaces the database's whole content with the dump read from `r`: objects created after
    /// the dump do not survive.
    pub fn load(&self, r: &mut dyn Read) -> Result<()> {
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
                res
            }
            _ => Err(self.err(format!(
                "{} databases are not supported by this build yet",
                self.kind()
            ))),
        }
    }
}

/// How long a capture waits for a site's SQLite database to let it read.
const SQLITE_BUSY_LIMIT: Duration = Duration::from_secs(120);

/// A short random pause (0.5 to 3 ms). A site that commits back to back leaves only short
/// gaps between its exclusive locks; SQLite's default busy handler backs off to 100 ms sleeps
/// and can miss them for many seconds, so poll often and out of step with the writer.
fn jitter() -> Duration {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    Duration::from_micros(500 + b[0] as u64 * 10)
}

fn busy_poll(calls: i32) -> bool {
    // About 1.8 ms per call on average.
    if calls as u128 * 18 >= SQLITE_BUSY_LIMIT.as_millis() * 10 {
        return false;
    }
    std::thread::sleep(jitter());
    true
}

/// Consistent online copy of a live SQLite database into `dest`, in one backup step (the
/// source's writers wait for the copy instead of restarting it). Gives up, with a message
/// saying so, if the database stays locked for `SQLITE_BUSY_LIMIT`.
fn sqlite_backup(src: &Path, dest: &Path) -> std::result::Result<(), String> {
    let locked = || {
        format!(
            "database is locked (still busy after {} s)",
            SQLITE_BUSY_LIMIT.as_secs()
        )
    };
    let busy = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => locked(),
        _ => e.to_string(),
    };
    let mut s =
        Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(busy)?;
    s.busy_handler(Some(busy_poll)).map_err(busy)?;
    let mut d = Connection::open(dest).map_err(busy)?;
    {
        let b = rusqlite::backup::Backup::new(&s, &mut d).map_err(busy)?;
        let deadline = Instant::now() + SQLITE_BUSY_LIMIT;
        loop {
            match b.step(-1).map_err(busy)? {
                rusqlite::backup::StepResult::Done => break,
                _ if Instant::now() < deadline => std::thread::sleep(jitter()),
                _ => return Err(locked()),
            }
        }
    }
    // A rollback-journal copy is one self-contained file.
    d.pragma_update(None, "journal_mode", "DELETE")
        .map_err(busy)?;
    Ok(())
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
    url.to_string()
}

#[cfg(test)]
mod tests {
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
        let e = Database::parse("oracle://u:secret@h/d")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
