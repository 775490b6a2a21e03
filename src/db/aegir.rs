//! Database credentials written by Aegir: `fastcgi_param db_* <value>;` in an nginx vhost,
//! `SetEnv db_* <value>` in an Apache vhost, `$options['db_*'] = '<value>';` in a site's
//! `drushrc.php`. A site registered with the reference `aegir:///<file>` keeps no credentials
//! in the catalogue: they are read from that file at each use, so a password Aegir rotated on
//! Migrate or Clone is picked up by the next run.

use super::{Database, ServerUrl};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The prefix of a credentials reference.
pub const SCHEME: &str = "aegir://";

/// The file a credentials reference (`aegir:///abs/path`) names, if `url` is one.
pub fn reference(url: &str) -> Option<&Path> {
    url.strip_prefix(SCHEME).map(Path::new)
}

/// The reference naming `file`.
pub fn reference_to(file: &Path) -> String {
    format!("{SCHEME}{}", file.display())
}

/// The `db_*` keys Aegir writes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Creds {
    db_type: Option<String>,
    name: Option<String>,
    user: Option<String>,
    passwd: Option<String>,
    host: Option<String>,
    port: Option<String>,
}

impl Creds {
    fn set(&mut self, key: &str, value: String) {
        let slot = match key {
            "db_type" => &mut self.db_type,
            "db_name" => &mut self.name,
            "db_user" => &mut self.user,
            "db_passwd" => &mut self.passwd,
            "db_host" => &mut self.host,
            "db_port" => &mut self.port,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// Strips one pair of matching quotes.
fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// `db_x value` after a directive (nginx: trailing `;`).
fn directive(rest: &str) -> Option<(&str, String)> {
    let rest = rest.trim().trim_end_matches(';').trim_end();
    let (k, v) = rest.split_once(char::is_whitespace)?;
    k.starts_with("db_").then(|| (k, unquote(v)))
}

/// `$options['db_x'] = 'value';`
fn drushrc_option(line: &str) -> Option<(&str, String)> {
    let rest = line.trim().strip_prefix("$options[")?;
    let (k, rest) = rest.split_once(']')?;
    let k = k.trim().trim_matches(|c| c == '\'' || c == '"');
    let v = rest.trim().strip_prefix('=')?.trim().trim_end_matches(';');
    k.starts_with("db_").then(|| (k, unquote(v)))
}

fn parse(text: &str) -> Creds {
    let mut c = Creds::default();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.starts_with("//") {
            continue;
        }
        let kv = t
            .strip_prefix("fastcgi_param ")
            .and_then(directive)
            .or_else(|| t.strip_prefix("SetEnv ").and_then(directive))
            .or_else(|| drushrc_option(t));
        if let Some((k, v)) = kv {
            c.set(k, v);
        }
    }
    c
}

/// Whether `text` holds Aegir database credentials (at least `db_type` and `db_name`).
pub fn has_credentials(text: &str) -> bool {
    let c = parse(text);
    c.db_type.is_some() && c.name.is_some()
}

/// The database whose credentials `file` holds, read now.
pub fn read(file: &Path) -> Result<Database> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::Invalid(format!(
            "{}: cannot read the site's database credentials: {e}",
            file.display()
        ))
    })?;
    from_text(file, &text)
}

fn from_text(file: &Path, text: &str) -> Result<Database> {
    let c = parse(text);
    let bad = |why: &str| Error::Invalid(format!("{}: {why}", file.display()));
    let kind = c.db_type.as_deref().ok_or_else(|| bad("no db_type"))?;
    let name = c.name.clone().ok_or_else(|| bad("no db_name"))?;
    if kind == "sqlite" {
        let p = PathBuf::from(&name);
        if !p.is_absolute() {
            return Err(bad("an SQLite db_name must be an absolute path"));
        }
        return Ok(Database::Sqlite(p));
    }
    let port = match c.port.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| bad(&format!("db_port '{p}' is not a port number")))?,
        ),
        None => None,
    };
    let server = ServerUrl {
        user: c.user.clone().unwrap_or_default(),
        password: c.passwd.clone(),
        host: c.host.clone().unwrap_or_else(|| "localhost".into()),
        port,
        socket: None,
        name,
    };
    match kind {
        "mysql" | "mysqli" | "mariadb" => Ok(Database::Mysql(server)),
        "pgsql" | "postgres" | "postgresql" => Ok(Database::Postgres(server)),
        other => Err(bad(&format!(
            "db_type '{other}' is not one sitesnap knows (mysql, pgsql, sqlite)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_apache_and_drushrc() {
        let f = Path::new("/x");
        let nginx = "server {\n  fastcgi_param db_type mysql;\n  fastcgi_param db_name site_1;\n  fastcgi_param db_user u1;\n  fastcgi_param db_passwd 'p w';\n  fastcgi_param db_host db.local;\n  fastcgi_param db_port 3307;\n}\n";
        match from_text(f, nginx).unwrap() {
            Database::Mysql(s) => {
                assert_eq!(
                    (s.name.as_str(), s.user.as_str(), s.host.as_str()),
                    ("site_1", "u1", "db.local")
                );
                assert_eq!(s.password.as_deref(), Some("p w"));
                assert_eq!(s.port, Some(3307));
            }
            other => panic!("{other:?}"),
        }
        let apache = "<VirtualHost *:80>\n  SetEnv db_type pgsql\n  SetEnv db_name d\n  SetEnv db_user u\n  SetEnv db_passwd secret\n</VirtualHost>\n";
        assert!(
            matches!(from_text(f, apache).unwrap(), Database::Postgres(s) if s.password.as_deref() == Some("secret") && s.host == "localhost")
        );
        let drushrc =
            "<?php\n$options['db_type'] = 'sqlite';\n$options['db_name'] = '/srv/d.sqlite';\n";
        assert!(
            matches!(from_text(f, drushrc).unwrap(), Database::Sqlite(p) if p == Path::new("/srv/d.sqlite"))
        );
        assert!(has_credentials(drushrc));
        assert!(!has_credentials("server { root /x; }"));
        let e = from_text(f, "fastcgi_param db_type oracle;\nfastcgi_param db_name x;")
            .unwrap_err()
            .to_string();
        assert!(e.contains("oracle"), "{e}");
        assert_eq!(
            reference(&reference_to(Path::new("/v/a"))),
            Some(Path::new("/v/a"))
        );
    }
}
