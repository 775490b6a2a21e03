//! Repository-wide settings kept in the catalogue (`meta`), and the file-level housekeeping
//! `repair catalog` needs.

use super::Catalog;
use crate::error::{Error, Result};
use rusqlite::{OptionalExtension, params};

/// Whether a catalogue's rows all have their objects in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StoreFormat {
    /// Made by an older sitesnap: snapshots and sites may lack their store objects.
    V1,
    /// Every snapshot row has its manifest, every site row its site object.
    V2,
}

impl Catalog {
    /// Seals (with `Some`) the secret columns written from now on, and opens sealed ones read.
    pub fn set_sealing(&mut self, key: Option<std::sync::Arc<crate::crypto::MasterKey>>) {
        self.sealing = key;
    }

    /// Records that the repository is encrypted (commands then refuse to open it without its
    /// passphrase, even if its key files went missing).
    pub fn set_encrypted(&self) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('encrypted', '1')
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [],
        )?;
        Ok(())
    }

    /// Does the catalogue say the repository is encrypted?
    pub fn is_encrypted(&self) -> Result<bool> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'encrypted'", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.as_deref() == Some("1"))
    }

    /// The repository format this catalogue's rows are in.
    pub fn store_format(&self) -> Result<StoreFormat> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'store_format'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match v.as_deref() {
            Some("2") => Ok(StoreFormat::V2),
            Some("1") | None => Ok(StoreFormat::V1),
            Some(other) => Err(Error::Invalid(format!(
                "catalogue: unknown store format '{other}'"
            ))),
        }
    }

    /// Records the repository format of this catalogue's rows.
    pub fn set_store_format(&self, f: StoreFormat) -> Result<()> {
        let v = match f {
            StoreFormat::V1 => "1",
            StoreFormat::V2 => "2",
        };
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('store_format', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![v],
        )?;
        Ok(())
    }

    /// Folds the write-ahead log into the main file and stops using one, so the file alone is
    /// the whole catalogue (before `repair catalog` renames it into place).
    pub fn make_self_contained(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("delete") && !mode.eq_ignore_ascii_case("memory") {
            return Err(Error::Invalid(format!(
                "catalogue: cannot leave WAL mode (journal mode is {mode})"
            )));
        }
        Ok(())
    }
}
