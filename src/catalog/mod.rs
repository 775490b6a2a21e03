//! The catalogue: `catalog.sqlite` in the repository, holding sites, packs, the chunk index,
//! blobs (trees and dumps), snapshots, the files cache and restore journals. It owns the schema
//! (`schema.sql`, versioned with `PRAGMA user_version`) and every SQL statement; other modules
//! call typed methods, and its connection stays private. It never touches pack files or live
//! sites, and of the store it knows only the pack format's types (`store::pack`).
//!
//! In an encrypted repository the sites' database URLs (which may hold passwords) are sealed
//! with the master key ([`Catalog::set_sealing`]); paths, names and ids stay in clear (the
//! catalogue is a local cache, never sent anywhere).
//!
//! One file per concern: `sites`, `snapshots` (and blobs), `packs` (the chunk index), `live`
//! (the live set of gc and verify), `cache` (the files cache), `journal` (restore journals).

mod cache;
mod damage;
mod journal;
mod kinds;
mod live;
mod meta;
mod packs;
mod sites;
mod snapshots;
mod stats;
#[cfg(test)]
mod tests;

pub use crate::store::pack::ChunkLocation;
pub use cache::{CacheEntry, Cached, FileKey, FilesCache};
pub use damage::LostItem;
pub use journal::JournalRecord;
pub use kinds::{JournalState, SHORT_ID_LEN, ShortId, SnapshotKind, short_id};
pub use live::{Batch, DeadRows};
pub use meta::StoreFormat;
pub use packs::{CatalogIndex, PackUsage};
pub use sites::SiteRecord;
pub use snapshots::{BlobRow, CommitFailed, SnapshotCommit, SnapshotRecord};
pub use stats::ChunkTotals;

use crate::error::{Error, Result};
use crate::hash::Hash;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::path::Path;

const SCHEMA_V1: &str = include_str!("../../schema.sql");
/// Migration from version 1 to 2: the files cache keyed by folder id + file name.
const SCHEMA_V2: &str = include_str!("../../schema_v2.sql");
/// Migration from version 2 to 3: web roots per platform and snapshot, extra site paths.
const SCHEMA_V3: &str = include_str!("../../schema_v3.sql");
/// Migration from version 3 to 4: `meta` (the repository format of the rows).
const SCHEMA_V4: &str = include_str!("../../schema_v4.sql");
/// Migration from version 4 to 5: damaged chunks and snapshots with lost data.
const SCHEMA_V5: &str = include_str!("../../schema_v5.sql");
/// Migration from version 5 to 6: structure-only tables per site.
const SCHEMA_V6: &str = include_str!("../../schema_v6.sql");
/// Migration from version 6 to 7: pack formats and chunks' places inside frames.
const SCHEMA_V7: &str = include_str!("../../schema_v7.sql");
/// Schema version this build writes.
/// Version 8: indirect chunk lists of large blobs (`blobs.count`).
const SCHEMA_V8: &str = include_str!("../../schema_v8.sql");
/// Migration from version 8 to 9: lists of more levels (`blobs.levels`).
const SCHEMA_V9: &str = include_str!("../../schema_v9.sql");
/// Migration from version 9 to 10: the files cache as one blob per folder.
const SCHEMA_V10: &str = include_str!("../../schema_v10.sql");
/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 10;

/// An open catalogue: one SQLite connection (in WAL mode, fully synchronous).
pub struct Catalog {
    conn: Connection,
    /// An encrypted repository's master key: the database URL column (it may hold a password)
    /// is sealed with it.
    sealing: Option<std::sync::Arc<crate::crypto::MasterKey>>,
}

/// Packs a chunk list into the bytes stored in the catalogue (32 bytes per hash).
pub fn hashes_to_blob(hs: &[Hash]) -> Vec<u8> {
    let mut v = Vec::with_capacity(hs.len() * 32);
    for h in hs {
        v.extend_from_slice(&h.0);
    }
    v
}

/// Unpacks a chunk list stored by [`hashes_to_blob`].
pub fn blob_to_hashes(b: &[u8]) -> Result<Vec<Hash>> {
    if !b.len().is_multiple_of(32) {
        return Err(Error::Corrupt(
            "chunk list of odd length in catalogue".into(),
        ));
    }
    Ok(b.chunks_exact(32)
        .map(|c| Hash(c.try_into().expect("32 bytes")))
        .collect())
}

/// A time as the catalogue stores it (RFC 3339, milliseconds, UTC).
pub(crate) fn time_str(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Catalog {
    /// Opens (and creates or migrates) the catalogue at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A stable query plan: without it the bundled SQLite (STAT4 compiled in) prepared the
        // chunk-location join again at every call, whatever the bound hash (14% of a
        // restore's CPU); the catalogue has no statistics for a plan to depend on.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        let cat = Catalog {
            conn,
            sealing: None,
        };
        cat.migrate()?;
        Ok(cat)
    }

    fn migrate(&self) -> Result<()> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(Error::Invalid(format!(
                "catalogue schema version {v} is newer than this sitesnap understands ({SCHEMA_VERSION})"
            )));
        }
        if v == 0 {
            let tx = self.conn.unchecked_transaction()?;
            // A concurrent opener may have created it meanwhile.
            let again: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if again == 0 {
                tx.execute_batch(SCHEMA_V1)?;
                tx.pragma_update(None, "user_version", 1)?;
            }
            tx.commit()?;
        }
        for (to, sql) in [
            (2, SCHEMA_V2),
            (3, SCHEMA_V3),
            (4, SCHEMA_V4),
            (5, SCHEMA_V5),
            (6, SCHEMA_V6),
            (7, SCHEMA_V7),
            (8, SCHEMA_V8),
            (9, SCHEMA_V9),
            (10, SCHEMA_V10),
        ] {
            if v < to {
                self.migrate_to(to, sql)?;
            }
        }
        Ok(())
    }

    /// Runs one forward migration to version `to`, unless a concurrent opener already did.
    fn migrate_to(&self, to: i64, sql: &str) -> Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let again: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if again < to {
            tx.execute_batch(sql)?;
            if to == 10 {
                cache::migrate_rows(&tx)?;
                tx.execute_batch("DROP TABLE files_cache")?;
            }
            tx.pragma_update(None, "user_version", to)?;
        }
        tx.commit()?;
        Ok(())
    }
}
