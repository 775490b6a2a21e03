//! Privilege preflight: before a restore changes anything, check that the site's own database
//! account can drop, create and load what the dump holds. MariaDB/MySQL: each needed kind of
//! statement is tried on a scratch object in the site's database (created and dropped again);
//! PostgreSQL: the catalogue is asked (database and schema privileges, owners of what is there).

use super::{Database, DumpSummary, ServerUrl, mysql, postgres};

/// A database privilege a restore needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Create the database when it is missing.
    CreateDatabase,
    Create,
    Drop,
    Insert,
    Alter,
    LockTables,
    CreateView,
    Trigger,
    CreateRoutine,
    Event,
    /// PostgreSQL: CREATE on the `public` schema.
    CreateInSchema,
    /// PostgreSQL: own (or be a member of the owner of) every object the load replaces.
    Ownership,
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Privilege::CreateDatabase => "CREATE (database)",
            Privilege::Create => "CREATE",
            Privilege::Drop => "DROP",
            Privilege::Insert => "INSERT",
            Privilege::Alter => "ALTER",
            Privilege::LockTables => "LOCK TABLES",
            Privilege::CreateView => "CREATE VIEW",
            Privilege::Trigger => "TRIGGER",
            Privilege::CreateRoutine => "CREATE ROUTINE",
            Privilege::Event => "EVENT",
            Privilege::CreateInSchema => "CREATE on schema public",
            Privilege::Ownership => "ownership",
        })
    }
}

/// Why the site's account cannot restore the dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivilegeError {
    /// The account lacks `privilege`; `detail` says what failed.
    #[error(
        "database {url}: the account lacks the {privilege} privilege a restore needs ({detail})"
    )]
    Missing {
        url: String,
        privilege: Privilege,
        detail: String,
    },
    /// The check itself could not run (connection, tools).
    #[error("database {url}: cannot check the account's privileges: {msg}")]
    Check { url: String, msg: String },
}

impl From<PrivilegeError> for crate::error::Error {
    fn from(e: PrivilegeError) -> Self {
        crate::error::Error::Refused(e.to_string())
    }
}

impl Database {
    /// Checks, changing nothing the site can see, that the database's account can replace the
    /// database with a dump holding `summary` (from `check_dump`). SQLite needs nothing.
    pub fn preflight(&self, summary: &DumpSummary) -> Result<(), PrivilegeError> {
        match self {
            Database::Sqlite(_) => Ok(()),
            Database::Mysql(s) => self.preflight_mysql(s, summary),
            Database::Postgres(s) => self.preflight_postgres(s),
        }
    }

    fn check_err(&self, msg: impl Into<String>) -> PrivilegeError {
        PrivilegeError::Check {
            url: self.redacted(),
            msg: msg.into(),
        }
    }

    fn missing(&self, privilege: Privilege, detail: impl Into<String>) -> PrivilegeError {
        PrivilegeError::Missing {
            url: self.redacted(),
            privilege,
            detail: detail.into(),
        }
    }

    fn preflight_mysql(&self, s: &ServerUrl, summary: &DumpSummary) -> Result<(), PrivilegeError> {
        let tools = self.tools().map_err(|e| self.check_err(e.to_string()))?;
        let cnf = mysql::OptionFile::create(s, None).map_err(|e| self.check_err(e.to_string()))?;
        let q = |db: &str, sql: &str| self.query_in(&tools, s, Some(&cnf), db, sql);
        let exists = q(
            "",
            &format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE HEX(SCHEMA_NAME) = {}",
                mysql::hex_lit(&s.name)
            ),
        )
        .map_err(|m| self.check_err(m))?;
        if String::from_utf8_lossy(&exists).trim() == "0" {
            // The load creates it; a failure there changes nothing.
            return Ok(());
        }
        // DROP first, from the grants: a probe table the account cannot drop would stay.
        let drop = q(&s.name, mysql::HAS_DROP).map_err(|m| self.check_err(m))?;
        if String::from_utf8_lossy(&drop).trim() == "0" {
            return Err(self.missing(Privilege::Drop, "no DROP grant covers the database"));
        }
        let t = format!("sitesnap_probe_{}", crate::fsutil::random_hex(4));
        let mut steps: Vec<(Privilege, String)> = vec![
            (Privilege::Create, format!("CREATE TABLE `{t}` (i INT)")),
            (Privilege::Insert, format!("INSERT INTO `{t}` VALUES (1)")),
            (Privilege::Alter, format!("ALTER TABLE `{t}` DISABLE KEYS")),
            (
                Privilege::LockTables,
                format!("LOCK TABLES `{t}` WRITE; UNLOCK TABLES"),
            ),
        ];
        if summary.views {
            steps.push((
                Privilege::CreateView,
                format!("CREATE VIEW `{t}_v` AS SELECT 1 AS one"),
            ));
            steps.push((Privilege::Drop, format!("DROP VIEW `{t}_v`")));
        }
        if summary.triggers {
            steps.push((
                Privilege::Trigger,
                format!("CREATE TRIGGER `{t}_t` BEFORE INSERT ON `{t}` FOR EACH ROW SET @x = 1"),
            ));
        }
        if summary.routines {
            steps.push((
                Privilege::CreateRoutine,
                format!("CREATE PROCEDURE `{t}_p`() SELECT 1"),
            ));
            steps.push((Privilege::CreateRoutine, format!("DROP PROCEDURE `{t}_p`")));
        }
        if summary.events {
            steps.push((
                Privilege::Event,
                format!("CREATE EVENT `{t}_e` ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 DAY DISABLE DO SELECT 1"),
            ));
            steps.push((Privilege::Event, format!("DROP EVENT `{t}_e`")));
        }
        steps.push((Privilege::Drop, format!("DROP TABLE `{t}`")));
        let res = steps
            .iter()
            .try_for_each(|(p, sql)| q(&s.name, sql).map(|_| ()).map_err(|m| self.missing(*p, m)));
        if res.is_err() {
            let _ = q(
                &s.name,
                &format!(
                    "DROP VIEW IF EXISTS `{t}_v`; DROP PROCEDURE IF EXISTS `{t}_p`; \
                     DROP EVENT IF EXISTS `{t}_e`; DROP TABLE IF EXISTS `{t}`"
                ),
            );
        }
        res
    }

    fn preflight_postgres(&self, s: &ServerUrl) -> Result<(), PrivilegeError> {
        let tools = self.tools().map_err(|e| self.check_err(e.to_string()))?;
        let Ok(out) = self.query_in(&tools, s, None, &s.name, postgres::PRIVILEGES) else {
            // Missing (or unreachable): may the role create it?
            let out = ["postgres", "template1"]
                .iter()
                .find_map(|m| {
                    self.query_in(&tools, s, None, m, postgres::MAY_CREATE_DB)
                        .ok()
                })
                .ok_or_else(|| self.check_err("cannot connect"))?;
            if String::from_utf8_lossy(&out).trim() != "1" {
                return Err(self.missing(
                    Privilege::CreateDatabase,
                    "the database is missing and the role may not create databases",
                ));
            }
            return Ok(());
        };
        let text = String::from_utf8_lossy(&out);
        let f: Vec<&str> = text.trim().split('|').collect();
        if f.len() != 3 {
            return Err(self.check_err(format!("unexpected answer '{}'", text.trim())));
        }
        if f[0] != "t" {
            return Err(self.missing(
                Privilege::CreateInSchema,
                "the dump creates its objects in public",
            ));
        }
        if !f[1].is_empty() {
            return Err(self.missing(
                Privilege::Ownership,
                format!(
                    "{} belongs to another role and would have to be dropped",
                    f[1]
                ),
            ));
        }
        let _ = f[2];
        Ok(())
    }
}
