//! Typed values the catalogue stores as text: snapshot kinds, snapshot ids and restore journal
//! states. The stored strings never change; these types only stop a typo from compiling.

use crate::error::{Error, Result};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::fmt;

/// Why a snapshot was taken. Stored as its kebab-case name (`pre-restore`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    /// `sitesnap snapshot` (the default kind).
    Manual,
    /// `sitesnap snapshot --kind scheduled` (cron).
    Scheduled,
    /// `sitesnap checkpoint`: pinned by default.
    Checkpoint,
    /// Taken by `restore` before it changes anything (the undo point).
    PreRestore,
    /// Taken by `migrate` before it moves the site.
    PreMigrate,
    /// Made by `import` from an Aegir backup tarball.
    Imported,
}

impl SnapshotKind {
    /// Every kind, in the order listings and help show them.
    pub const ALL: [SnapshotKind; 6] = [
        SnapshotKind::Manual,
        SnapshotKind::Scheduled,
        SnapshotKind::Checkpoint,
        SnapshotKind::PreRestore,
        SnapshotKind::PreMigrate,
        SnapshotKind::Imported,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Manual => "manual",
            SnapshotKind::Scheduled => "scheduled",
            SnapshotKind::Checkpoint => "checkpoint",
            SnapshotKind::PreRestore => "pre-restore",
            SnapshotKind::PreMigrate => "pre-migrate",
            SnapshotKind::Imported => "imported",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<SnapshotKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that retention keeps for a grace period whatever the policy says: they are the
    /// undo points of a restore or a migration.
    pub fn is_protected(self) -> bool {
        matches!(self, SnapshotKind::PreRestore | SnapshotKind::PreMigrate)
    }

    /// Kinds pinned when taken (kept by every retention policy until unpinned).
    pub fn pinned_when_taken(self) -> bool {
        self == SnapshotKind::Checkpoint
    }
}

impl fmt::Display for SnapshotKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for SnapshotKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<SnapshotKind> {
        SnapshotKind::parse(s).ok_or_else(|| {
            let all: Vec<&str> = SnapshotKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::Usage(format!(
                "unknown snapshot kind '{s}' (one of {})",
                all.join(", ")
            ))
        })
    }
}

impl PartialEq<&str> for SnapshotKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ToSql for SnapshotKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for SnapshotKind {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        SnapshotKind::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown kind {s}").into()))
    }
}

/// Where a restore journal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalState {
    /// The restore is under way (or was interrupted): `recover` must finish or undo it.
    Open,
    /// The restore finished.
    Done,
    /// The restore was undone: the site is as it was before.
    RolledBack,
    /// A step failed (or `recover --abort` was asked) and the undo is under way; `recover`
    /// finishes the undo, never the restore.
    RollingBack,
}

impl JournalState {
    /// The state as the catalogue stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Open => "open",
            JournalState::Done => "done",
            JournalState::RolledBack => "rolled-back",
            JournalState::RollingBack => "rolling-back",
        }
    }

    /// The state from its stored string.
    pub fn parse(s: &str) -> Result<JournalState> {
        match s {
            "open" => Ok(JournalState::Open),
            "done" => Ok(JournalState::Done),
            "rolled-back" => Ok(JournalState::RolledBack),
            "rolling-back" => Ok(JournalState::RollingBack),
            other => Err(Error::Corrupt(format!("unknown journal state '{other}'"))),
        }
    }
}

impl std::fmt::Display for JournalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for JournalState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JournalState {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        JournalState::parse(v.as_str()?).map_err(|e| FromSqlError::Other(e.to_string().into()))
    }
}

/// Length of a short snapshot id as printed in listings and hints.
pub const SHORT_ID_LEN: usize = 8;

/// The short form of a snapshot id (its first [`SHORT_ID_LEN`] hex digits), as listings print
/// it and as every command accepts it. Safe on ids shorter than that.
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_ID_LEN).unwrap_or(id)
}

/// Extension for snapshot ids held as `String`: `snap.id.short()`.
pub trait ShortId {
    /// See [`short_id`].
    fn short(&self) -> &str;
}

impl ShortId for str {
    fn short(&self) -> &str {
        short_id(self)
    }
}

impl ShortId for String {
    fn short(&self) -> &str {
        short_id(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_stored_names() {
        for k in SnapshotKind::ALL {
            assert_eq!(SnapshotKind::parse(k.as_str()), Some(k));
            assert_eq!(k.as_str().parse::<SnapshotKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert!("weekly".parse::<SnapshotKind>().is_err());
        assert!(SnapshotKind::PreRestore.is_protected());
        assert!(!SnapshotKind::Manual.is_protected());
    }

    #[test]
    fn short_ids() {
        assert_eq!("0123456789abcdef".short(), "01234567");
        assert_eq!("abc".short(), "abc");
    }

    #[test]
    fn states_keep_their_stored_strings() {
        for (st, s) in [
            (JournalState::Open, "open"),
            (JournalState::Done, "done"),
            (JournalState::RolledBack, "rolled-back"),
        ] {
            assert_eq!(st.as_str(), s);
            assert_eq!(JournalState::parse(s).unwrap(), st);
        }
        assert!(JournalState::parse("finished").is_err());
    }
}
