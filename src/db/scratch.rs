//! Scratch databases for `rehearse`: a copy of a site's database under another name on the
//! same server (same account), and dropping it afterwards. The copy goes through the normal
//! dump and load (streamed, checked, no password in argv); the drop refuses any name that
//! does not carry the scratch marker, so a live database can never be dropped by mistake.

use super::{Database, ServerUrl, mysql, postgres};
use crate::error::{Error, Result};
use std::path::Path;

/// What every scratch database name contains (`<live name>_rh<hex>`).
pub const SCRATCH_MARK: &str = "_rh";

/// The longest database name both MariaDB (64) and PostgreSQL (63) take.
const MAX_NAME: usize = 63;

/// A scratch name for a copy of `live`: `<live, shortened>_rh<tag>`.
pub fn scratch_name(live: &str, tag: &str) -> String {
    let suffix = format!("{SCRATCH_MARK}{tag}");
    let keep = MAX_NAME.saturating_sub(suffix.len());
    let mut head: String = live.chars().take(keep).collect();
    while head.len() > keep {
        head.pop();
    }
    format!("{head}{suffix}")
}

impl Database {
    /// The same server and account with database `name` (server databases only).
    pub fn with_name(&self, name: &str) -> Option<Database> {
        let rename = |s: &ServerUrl| ServerUrl {
            name: name.to_string(),
            ..s.clone()
        };
        match self {
            Database::Mysql(s) => Some(Database::Mysql(rename(s))),
            Database::Postgres(s) => Some(Database::Postgres(rename(s))),
            Database::Sqlite(_) => None,
        }
    }

    /// The database's name on its server (`None` for SQLite).
    pub fn server_name(&self) -> Option<&str> {
        match self {
            Database::Mysql(s) | Database::Postgres(s) => Some(&s.name),
            Database::Sqlite(_) => None,
        }
    }

    /// Copies this database's whole content (every table's rows) into `dest`, which is
    /// created if it is missing. `tmp` is a private folder for the dump's temporary files.
    pub fn copy_to(&self, dest: &Database, tmp: &Path) -> Result<()> {
        if self == dest {
            return Err(self.err("refusing to copy a database onto itself"));
        }
        self.dump(tmp, &mut |r| dest.load(r))
    }

    /// Drops a scratch database (whose name carries [`SCRATCH_MARK`]) if it exists; an SQLite
    /// file is removed. Returns whether there was something to drop.
    pub fn drop_scratch(&self) -> Result<bool> {
        match self {
            Database::Sqlite(p) => match std::fs::remove_file(p) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(p, e)),
            },
            Database::Mysql(s) | Database::Postgres(s) => {
                if !s.name.contains(SCRATCH_MARK) {
                    return Err(self.err("not a scratch database: refusing to drop it"));
                }
                let tools = self.tools()?;
                let (maintenance, exists_sql, drop_sql) = match self {
                    Database::Mysql(_) => (
                        "",
                        format!(
                            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE HEX(SCHEMA_NAME) = {}",
                            mysql::hex_lit(&s.name)
                        ),
                        format!("DROP DATABASE IF EXISTS {}", mysql::ident(&s.name)),
                    ),
                    _ => (
                        "postgres",
                        format!(
                            "SELECT count(*) FROM pg_catalog.pg_database WHERE datname = {}",
                            postgres::literal(&s.name)
                        ),
                        format!("DROP DATABASE IF EXISTS {}", postgres::ident(&s.name)),
                    ),
                };
                let n = self
                    .query_in(&tools, s, None, maintenance, &exists_sql)
                    .map_err(|m| self.err(format!("cannot connect: {m}")))?;
                if String::from_utf8_lossy(&n).trim() == "0" {
                    return Ok(false);
                }
                self.query_in(&tools, s, None, maintenance, &drop_sql)
                    .map_err(|m| self.err(format!("cannot drop the scratch database: {m}")))?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_fit_and_carry_the_mark() {
        assert_eq!(scratch_name("site_1", "ab12cd"), "site_1_rhab12cd");
        let long = "x".repeat(80);
        let n = scratch_name(&long, "ab12cd");
        assert_eq!(n.len(), MAX_NAME);
        assert!(n.ends_with("_rhab12cd"));
        let d = Database::parse("mysql://u:pw@h/live").unwrap();
        assert!(d.with_name("live").unwrap().drop_scratch().is_err());
    }
}
