//! Structure-only tables: tables whose rows a Drupal site can lose at no cost (caches,
//! sessions, logs, flood control, locks, the search index), dumped as their definition alone,
//! like drush's `--structure-tables-key=common`. A restore recreates them empty.
//!
//! A site names them with patterns: lowercase letters, digits and `_`, with `*` standing for
//! any run of characters (`cache_*`). The same pattern means the same tables on every engine:
//! pg_dump's `--exclude-table-data` takes it as it is, MariaDB and SQLite match it here.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// The default list: Drupal's cache tables, sessions, log, flood control, semaphore (locks)
/// and the core search module's index (rebuilt by cron).
pub const DEFAULT: &[&str] = &[
    "cache",
    "cache_*",
    "cachetags",
    "sessions",
    "watchdog",
    "flood",
    "semaphore",
    "search_index",
    "search_dataset",
    "search_total",
];

/// A site's structure-only table patterns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StructureTables(Vec<String>);

impl Default for StructureTables {
    fn default() -> Self {
        StructureTables(DEFAULT.iter().map(|s| s.to_string()).collect())
    }
}

impl StructureTables {
    /// No table is structure-only: every row is dumped.
    pub fn none() -> StructureTables {
        StructureTables(Vec::new())
    }

    /// Parses a comma-separated list (`cache,cache_*,sessions`); blanks around names are
    /// ignored, an empty list means none. One line naming the bad pattern otherwise.
    pub fn parse(list: &str) -> Result<StructureTables> {
        let mut v: Vec<String> = Vec::new();
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let ok = p.len() <= 64
                && p.chars().any(|c| c != '*')
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '*');
            if !ok {
                return Err(Error::Usage(format!(
                    "structure table pattern '{p}': use lowercase letters, digits, '_' and '*' \
                     (at most 64 characters, not '*' alone)"
                )));
            }
            if !v.iter().any(|x| x == p) {
                v.push(p.to_string());
            }
        }
        Ok(StructureTables(v))
    }

    /// The patterns.
    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    /// Whether no table is structure-only.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The list as stored and shown: comma-separated (empty for none).
    pub fn to_list(&self) -> String {
        self.0.join(",")
    }

    /// Whether the table `name` matches one of the patterns.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// `*`-only glob match over bytes (iterative, with one backtrack point).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Empties the matching tables of the SQLite database at `path` (a private copy being dumped)
/// and, when any rows went, rebuilds the file (`VACUUM`) so none of their bytes remain in it.
/// Triggers on those tables are set aside during the delete, so it changes nothing else.
pub(crate) fn empty_sqlite(path: &Path, tables: &StructureTables) -> rusqlite::Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let c = Connection::open(path)?;
    let names: Vec<String> = {
        let mut st = c.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )?;
        st.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut deleted = 0;
    for t in names.iter().filter(|t| tables.matches(t)) {
        deleted += empty_one(&c, t)?;
    }
    if deleted > 0 {
        c.execute_batch("VACUUM")?;
    }
    Ok(())
}

/// Deletes every row of table `t`, its triggers dropped for the delete and put back after.
fn empty_one(c: &Connection, t: &str) -> rusqlite::Result<usize> {
    let tx = c.unchecked_transaction()?;
    let triggers: Vec<(String, String)> = {
        let mut st = tx.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?1",
        )?;
        st.query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let q = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    for (name, _) in &triggers {
        tx.execute_batch(&format!("DROP TRIGGER {}", q(name)))?;
    }
    let n = tx.execute(&format!("DELETE FROM {}", q(t)), [])?;
    for (_, sql) in &triggers {
        tx.execute_batch(sql)?;
    }
    tx.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_and_parse() {
        let d = StructureTables::default();
        for t in [
            "cache",
            "cache_form",
            "cache_bootstrap",
            "sessions",
            "watchdog",
        ] {
            assert!(d.matches(t), "{t}");
        }
        for t in ["node", "cachex", "users", "search_api_index", "my_cache"] {
            assert!(!d.matches(t), "{t}");
        }
        let p = StructureTables::parse(" cache_* , *_log,a*b*c,cache_*,").unwrap();
        assert_eq!(p.to_list(), "cache_*,*_log,a*b*c");
        assert!(p.matches("access_log") && p.matches("abc") && p.matches("axxbyyc"));
        assert!(!p.matches("acb") && !p.matches("cache"));
        assert!(StructureTables::parse("").unwrap().is_empty());
        for bad in ["Cache", "cache;drop", "*", "a.b", "a?b", "x y"] {
            let e = StructureTables::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn sqlite_tables_emptied_with_triggers_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE cache_form (cid TEXT PRIMARY KEY, data BLOB);
             CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT);
             CREATE TABLE log (n INTEGER);
             CREATE TRIGGER t AFTER DELETE ON cache_form BEGIN INSERT INTO log VALUES (1); END;
             INSERT INTO cache_form VALUES ('a', 'MARKER-xyz'), ('b', 'MARKER-xyz');
             INSERT INTO node VALUES (1, 'hello');",
        )
        .unwrap();
        drop(c);
        empty_sqlite(&p, &StructureTables::default()).unwrap();
        let c = Connection::open(&p).unwrap();
        let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(n("SELECT count(*) FROM cache_form"), 0);
        assert_eq!(n("SELECT count(*) FROM node"), 1);
        assert_eq!(n("SELECT count(*) FROM log"), 0, "the trigger did not fire");
        assert_eq!(
            n("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"),
            1
        );
        drop(c);
        let bytes = std::fs::read(&p).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"MARKER-xyz"));
    }
}
