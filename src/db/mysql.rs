//! MariaDB/MySQL through their own tools: `mariadb-dump`/`mysqldump` to dump, `mariadb`/`mysql`
//! to query and load. Connection details and the password go to the tools in a private option
//! file (`--defaults-extra-file`, mode 0600, in a private folder, deleted when done); argv holds
//! only the option file's path, flags and the database name. When the URL carries a password the
//! child runs with `HOME` pointing at that private folder, so a `~/.my.cnf` (read after the extra
//! file) cannot override the URL's user or password. This module never writes a password anywhere
//! else.

use super::ServerUrl;
use crate::error::{Error, Result};
use crate::fsutil;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const DUMP_TOOLS: &[&str] = &["mariadb-dump", "mysqldump"];
pub(crate) const CLIENTS: &[&str] = &["mariadb", "mysql"];
/// The dump's last comment (with `--skip-dump-date`, which also keeps identical databases'
/// dumps identical).
const TRAILER: &str = "-- Dump completed";

/// The dump tool's arguments after `--defaults-extra-file`: one consistent InnoDB snapshot
/// (`--single-transaction`), rows streamed rather than buffered (`--quick`), every kind of
/// object, binary data as hex (safe through any charset), utf8mb4 so 4-byte characters survive,
/// no tablespaces (they need the PROCESS privilege, and sites do not own any), no date in the
/// trailer (so an unchanged database dumps to identical bytes). No `--databases`: the dump
/// has no `CREATE DATABASE`/`USE`, so it loads into whatever database the site uses now.
/// Tables in `structure` are left out (`--ignore-table`); `structure_args` dumps their
/// definitions.
pub(crate) fn dump_args(name: &str, structure: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
        "--skip-dump-date",
        "--max-allowed-packet=1G",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(
        structure
            .iter()
            .map(|t| format!("--ignore-table={name}.{t}")),
    );
    v.extend(["--".to_string(), name.to_string()]);
    v
}

/// The dump tool's arguments for the definitions (with their triggers) of `tables` alone.
pub(crate) fn structure_args(name: &str, tables: &[String]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--no-data",
        "--triggers",
        "--skip-routines",
        "--skip-events",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
        "--skip-dump-date",
        "--",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(tables.iter().cloned());
    v
}

/// The base tables of the current database, as ('TABLE', HEX(name)) rows for `parse_objects`.
pub(crate) const LIST_TABLES: &str = "SELECT 'TABLE', HEX(TABLE_NAME) FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME";

pub(crate) fn trailer() -> &'static str {
    TRAILER
}

/// Client arguments for one query read from stdin: no column names, tab-separated, a bounded
/// wait for the server.
pub(crate) fn query_args(database: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "--connect-timeout=10",
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !database.is_empty() {
        v.push(format!("--database={database}"));
    }
    v
}

/// Client arguments to load a dump from stdin (stops at the first error: no `--force`).
pub(crate) fn load_args(database: &str) -> Vec<String> {
    vec![
        "--connect-timeout=10".into(),
        "--batch".into(),
        "--binary-mode".into(),
        "--max-allowed-packet=1G".into(),
        "--default-character-set=utf8mb4".into(),
        format!("--database={database}"),
    ]
}

/// A private option file for one or more client runs: `[client]` user, password, host, port or
/// socket. Removed (with its folder, when it made one) on drop.
pub(crate) struct OptionFile {
    pub path: PathBuf,
    home: PathBuf,
    _dir: Option<tempfile::TempDir>,
    has_password: bool,
}

impl Drop for OptionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Quotes an option file value: double quotes, with `\`, `"` and control characters escaped
/// (the client's option parser unescapes `\\ \" \n \r \t`).
fn cnf_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The option file's text for `s`.
pub(crate) fn option_text(s: &ServerUrl) -> Result<String> {
    for (what, v) in [("user", &s.user), ("host", &s.host)] {
        if v.contains('\0') {
            return Err(Error::Invalid(format!(
                "database {what} contains a NUL byte"
            )));
        }
    }
    let mut t = String::from("[client]\n");
    if !s.user.is_empty() {
        let _ = writeln!(t, "user={}", cnf_value(&s.user));
    }
    if let Some(p) = &s.password {
        if p.contains('\0') {
            return Err(Error::Invalid(
                "database password contains a NUL byte".into(),
            ));
        }
        let _ = writeln!(t, "password={}", cnf_value(p));
    }
    match &s.socket {
        Some(sock) => {
            let _ = writeln!(t, "protocol=socket");
            let _ = writeln!(t, "socket={}", cnf_value(&sock.to_string_lossy()));
        }
        None => {
            let _ = writeln!(t, "host={}", cnf_value(s.tool_host()));
            if let Some(p) = s.port {
                let _ = writeln!(t, "port={p}");
            }
        }
    }
    Ok(t)
}

impl OptionFile {
    /// Writes the option file into `dir` (a private folder such as the repository's tmp), or
    /// into a new private temporary folder when `dir` is None.
    pub(crate) fn create(s: &ServerUrl, dir: Option<&Path>) -> Result<OptionFile> {
        let text = option_text(s)?;
        let (owned, base) = match dir {
            Some(d) => (None, d.to_path_buf()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("sitesnap-db-")
                    .tempdir()
                    .map_err(|e| Error::io(std::env::temp_dir(), e))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let path = base.join(format!(
            "mysql-{}-{}.cnf",
            std::process::id(),
            fsutil::random_hex(8)
        ));
        // create_private_file: O_CREAT|O_EXCL, mode 0600, before a single byte is written.
        let mut f = fsutil::create_private_file(&path)?;
        let file = OptionFile {
            path: path.clone(),
            home: base,
            _dir: owned,
            has_password: s.password.is_some(),
        };
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        Ok(file)
    }

    /// A command for `tool` reading this option file first.
    pub(crate) fn command(&self, tool: &Path) -> Command {
        let mut c = Command::new(tool);
        c.arg(format!("--defaults-extra-file={}", self.path.display()));
        if self.has_password {
            // ~/.my.cnf is read after the extra file and would override the URL's password.
            c.env("HOME", &self.home);
            c.env_remove("MYSQL_PWD");
        }
        c
    }
}

/// Removes option files in `dir` left by runs that were killed: `mysql-<pid>-<hex>.cnf`
/// whose process is gone, and `mysql-<hex>.cnf` (older runs, which put no pid in the name).
/// Returns how many it removed.
pub(crate) fn clean_stale(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(mid) = name
            .strip_prefix("mysql-")
            .and_then(|m| m.strip_suffix(".cnf"))
        else {
            continue;
        };
        let alive = match mid.split_once('-') {
            Some((pid, _)) => pid.parse::<i32>().is_ok_and(process_alive),
            None => false,
        };
        if !alive && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only asks whether `pid` exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Quotes an identifier with backticks.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal that survives any `sql_mode` (no quotes or backslashes inside): the hex of
/// its bytes, compared against `HEX(column)`.
pub(crate) fn hex_lit(s: &str) -> String {
    format!("'{}'", hex::encode_upper(s.as_bytes()))
}

/// The loading account (`user@host`) and whether it may name any definer (SUPER or
/// SET USER), tab-separated.
pub(crate) const WHO_AM_I: &str = "SELECT CURRENT_USER(), (SELECT COUNT(*) FROM \
     information_schema.USER_PRIVILEGES WHERE GRANTEE = CONCAT('''', \
     SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), \
     '''') AND PRIVILEGE_TYPE IN ('SUPER', 'SET USER'))";

/// How many of the account's grants (global or on a pattern matching the current database)
/// hold DROP.
pub(crate) const HAS_DROP: &str = "SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
     WHERE PRIVILEGE_TYPE = 'DROP') + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES \
     WHERE PRIVILEGE_TYPE = 'DROP' AND DATABASE() LIKE TABLE_SCHEMA)";

/// From `WHO_AM_I`'s output: `None` when the account may keep every definer, else the one
/// account it may name (itself).
pub(crate) fn definers_allowed(out: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(out);
    let (me, n) = text.trim().split_once('\t')?;
    if n.trim() != "0" {
        return None;
    }
    Some(vec![me.to_string()])
}

/// Objects of the current database, as (kind, name), decoded from the HEX(name) the query
/// returns so no name needs unescaping.
pub(crate) const LIST_OBJECTS: &str = "SELECT CASE TABLE_TYPE WHEN 'VIEW' THEN 'VIEW' \
     WHEN 'SEQUENCE' THEN 'SEQUENCE' ELSE 'TABLE' END, HEX(TABLE_NAME) \
     FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
     UNION ALL SELECT ROUTINE_TYPE, HEX(ROUTINE_NAME) FROM information_schema.ROUTINES \
     WHERE ROUTINE_SCHEMA = DATABASE() \
     UNION ALL SELECT 'EVENT', HEX(EVENT_NAME) FROM information_schema.EVENTS \
     WHERE EVENT_SCHEMA = DATABASE()";

/// Parses `LIST_OBJECTS` output (tab-separated, one object a line).
pub(crate) fn parse_objects(out: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    let text = String::from_utf8_lossy(out);
    let mut v = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (kind, hexname) = line
            .split_once('\t')
            .ok_or_else(|| format!("unexpected object listing line '{line}'"))?;
        let name = hex::decode(hexname)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("unexpected object name '{hexname}'"))?;
        v.push((kind.to_string(), name));
    }
    Ok(v)
}

/// The script that drops every listed object: views first, then tables (foreign keys off, so
/// order does not matter; triggers go with their tables), sequences, routines and events.
pub(crate) fn drop_script(objects: &[(String, String)]) -> String {
    let mut s = String::from("SET FOREIGN_KEY_CHECKS=0;\n");
    let of = |k: &str| -> Vec<String> {
        objects
            .iter()
            .filter(|(kind, _)| kind == k)
            .map(|(_, n)| ident(n))
            .collect()
    };
    for (kind, stmt) in [
        ("VIEW", "DROP VIEW IF EXISTS"),
        ("TABLE", "DROP TABLE IF EXISTS"),
        ("SEQUENCE", "DROP SEQUENCE IF EXISTS"),
    ] {
        let names = of(kind);
        if !names.is_empty() {
            let _ = writeln!(s, "{stmt} {};", names.join(", "));
        }
    }
    for (kind, stmt) in [
        ("PROCEDURE", "DROP PROCEDURE IF EXISTS"),
        ("FUNCTION", "DROP FUNCTION IF EXISTS"),
        ("EVENT", "DROP EVENT IF EXISTS"),
    ] {
        for n in of(kind) {
            let _ = writeln!(s, "{stmt} {n};");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(pw: Option<&str>, socket: Option<&str>) -> ServerUrl {
        ServerUrl {
            user: "site_1".into(),
            password: pw.map(String::from),
            host: "db.example".into(),
            port: Some(3307),
            socket: socket.map(PathBuf::from),
            name: "site-db".into(),
        }
    }

    #[test]
    fn option_file_quotes_and_argv_has_no_secret() {
        let pw = "p@ss:w/o?r#d%&\"'\\ \n x";
        let t = option_text(&url(Some(pw), None)).unwrap();
        assert_eq!(
            t,
            "[client]\nuser=\"site_1\"\npassword=\"p@ss:w/o?r#d%&\\\"'\\\\ \\n x\"\nhost=\"db.example\"\nport=3307\n"
        );
        let Ok(crate::db::Database::Mysql(v6)) =
            crate::db::Database::parse("mysql://u@[::1]:3306/d")
        else {
            panic!("not mysql")
        };
        assert!(
            option_text(&v6)
                .unwrap()
                .contains("host=\"::1\"\nport=3306\n")
        );
        let t = option_text(&url(None, Some("/run/mysqld/mysqld.sock"))).unwrap();
        assert!(t.contains("protocol=socket\nsocket=\"/run/mysqld/mysqld.sock\"\n"));
        assert!(!t.contains("password"));

        let dir = tempfile::tempdir().unwrap();
        let f = OptionFile::create(&url(Some(pw), None), Some(dir.path())).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&f.path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let mut c = f.command(Path::new("/usr/bin/mariadb-dump"));
        c.args(dump_args("site-db", &["cache".into()]));
        let argv: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(argv[0].starts_with("--defaults-extra-file="));
        assert!(argv.iter().all(|a| !a.contains("p@ss")), "{argv:?}");
        let p = f.path.clone();
        drop(f);
        assert!(!p.exists(), "option file removed on drop");
    }

    #[test]
    fn drops_every_kind() {
        let out = format!(
            "TABLE\t{}\nVIEW\t{}\nPROCEDURE\t{}\nEVENT\t{}\n",
            hex::encode("node"),
            hex::encode("v`1"),
            hex::encode("p"),
            hex::encode("e")
        );
        let objs = parse_objects(out.as_bytes()).unwrap();
        assert_eq!(
            drop_script(&objs),
            "SET FOREIGN_KEY_CHECKS=0;\nDROP VIEW IF EXISTS `v``1`;\nDROP TABLE IF EXISTS `node`;\n\
             DROP PROCEDURE IF EXISTS `p`;\nDROP EVENT IF EXISTS `e`;\n"
        );
    }
}
