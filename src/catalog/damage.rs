//! Damage the catalogue remembers: chunks `verify` found damaged or missing (never reused, so
//! the next snapshot of a live file that still has the content heals them), and what
//! `repair snapshots` found lost for good, per snapshot.

use super::{Catalog, time_str};
use crate::error::Result;
use crate::hash::Hash;
use chrono::Utc;
use rusqlite::params;
use std::collections::HashSet;

/// A snapshot's data that is lost for good, as `repair snapshots` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LostItem {
    /// `platform`, `site`, `binding`, `extra` or `database`.
    pub part: String,
    /// The file, "database dump", or the tree that cannot be listed.
    pub path: String,
}

impl Catalog {
    /// Records damaged chunks found in `pack`. With `replace`, what is recorded for chunks
    /// not in `found` is forgotten first (a full `verify --read-data` read them all and found
    /// them sound).
    pub fn record_damage(&self, found: &[(Hash, String)], replace: bool) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        if replace {
            tx.execute("DELETE FROM damaged_chunks WHERE healed IS NULL", [])?;
        }
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO damaged_chunks (hash, pack, found) VALUES (?1, ?2, ?3)",
            )?;
            let now = time_str(&Utc::now());
            for (h, pack) in found {
                st.execute(params![&h.0[..], pack, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The chunks recorded as damaged and not stored anew since.
    pub fn damaged_chunks(&self) -> Result<HashSet<Hash>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hash FROM damaged_chunks WHERE healed IS NULL")?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = HashSet::new();
        for row in rows {
            if let Ok(a) = <[u8; 32]>::try_from(row?.as_slice()) {
                out.insert(Hash(a));
            }
        }
        Ok(out)
    }

    /// Packs holding a damaged copy of a chunk (`healed`: one that was stored anew since, so
    /// the damaged copy is no longer indexed; else one still in use).
    pub fn damaged_packs(&self, healed: bool) -> Result<HashSet<String>> {
        let sql = if healed {
            "SELECT DISTINCT pack FROM damaged_chunks WHERE healed IS NOT NULL"
        } else {
            "SELECT DISTINCT pack FROM damaged_chunks WHERE healed IS NULL"
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks the damaged copies of the chunks in `hashes` as healed (a sound copy is indexed).
    pub(super) fn mark_healed(&self, hashes: &[Hash]) -> Result<()> {
        // Nearly always nothing is damaged: one query instead of one write per chunk.
        let any: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM damaged_chunks WHERE healed IS NULL)",
            [],
            |r| r.get(0),
        )?;
        if !any {
            return Ok(());
        }
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut st = tx.prepare_cached(
                "UPDATE damaged_chunks SET healed = ?2 WHERE hash = ?1 AND healed IS NULL",
            )?;
            let now = time_str(&Utc::now());
            for h in hashes {
                st.execute(params![&h.0[..], now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the damage recorded in packs that are gone (after `gc`).
    pub fn forget_damage_of_removed_packs(&self) -> Result<()> {
        self.conn.execute(
            "DELETE FROM damaged_chunks WHERE pack NOT IN (SELECT name FROM packs)",
            [],
        )?;
        Ok(())
    }

    /// Records what is lost for good in each snapshot (replacing what was recorded).
    pub fn mark_lost(&self, lost: &[(String, Vec<LostItem>)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM snapshot_damage", [])?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO snapshot_damage (snapshot_id, lost, marked) VALUES (?1, ?2, ?3)",
            )?;
            let now = time_str(&Utc::now());
            for (id, items) in lost {
                let json = serde_json::to_string(items).expect("lost items serialize");
                st.execute(params![id, json, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// What `repair snapshots` recorded as lost in snapshot `id` (empty when nothing).
    pub fn lost_in(&self, id: &str) -> Result<Vec<LostItem>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT lost FROM snapshot_damage WHERE snapshot_id = ?1")?;
        let mut rows = st.query([id])?;
        match rows.next()? {
            Some(r) => Ok(serde_json::from_str(&r.get::<_, String>(0)?).unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    /// The snapshots `repair snapshots` marked as having lost data.
    pub fn lost_snapshots(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT snapshot_id FROM snapshot_damage ORDER BY snapshot_id")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
