//! The live set used by `gc` and `verify`: temp tables `live_blobs` / `live_chunks` on this
//! connection, so the referenced set of a large repository lives in SQLite, not in RAM; and
//! gc's deletion of what is not live.

use super::Catalog;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::pack::PackEntry;

/// What one gc deletion transaction removed.
#[derive(Debug, Clone, Default)]
pub struct DeadRows {
    /// Files-cache rows.
    pub cache_rows: u64,
    /// Index rows.
    pub chunks: u64,
    /// Blob rows.
    pub blobs: u64,
    /// Pack rows.
    pub packs: u64,
}

/// A batch of writes in one transaction (e.g. marking the live set): committed by
/// [`Batch::commit`], rolled back if dropped.
pub struct Batch<'a>(rusqlite::Transaction<'a>);

impl Batch<'_> {
    /// Commits the batch.
    pub fn commit(self) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

impl Catalog {
    /// Starts a batch: the writes until [`Batch::commit`] share one transaction.
    pub fn batch(&self) -> Result<Batch<'_>> {
        Ok(Batch(self.conn.unchecked_transaction()?))
    }
}

impl Catalog {
    /// Starts a live set: (re)creates the temp tables and fills `live_blobs` with every blob a
    /// snapshot names (trees flagged 1, dumps 0).
    pub fn live_begin(&self) -> Result<()> {
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS live_blobs (id BLOB PRIMARY KEY, tree INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS live_chunks (hash BLOB PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM temp.live_blobs;
             DELETE FROM temp.live_chunks;
             INSERT OR IGNORE INTO temp.live_blobs (id, tree)
                 SELECT platform_tree, 1 FROM snapshots WHERE platform_tree IS NOT NULL
                 UNION SELECT site_tree, 1 FROM snapshots WHERE site_tree IS NOT NULL
                 UNION SELECT bindings_tree, 1 FROM snapshots WHERE bindings_tree IS NOT NULL
                 UNION SELECT extra_tree, 1 FROM snapshots WHERE extra_tree IS NOT NULL
                 UNION SELECT db_dump, 0 FROM snapshots WHERE db_dump IS NOT NULL;",
        )?;
        Ok(())
    }

    /// The live blobs: (id, is a tree).
    pub fn live_blobs(&self) -> Result<Vec<(Hash, bool)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, tree FROM temp.live_blobs ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tree) = row?;
            if let Ok(a) = <[u8; 32]>::try_from(id.as_slice()) {
                out.push((Hash(a), tree != 0));
            }
        }
        Ok(out)
    }

    /// Adds chunks to the live set.
    pub fn live_add(&self, chunks: &[Hash]) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO temp.live_chunks (hash) VALUES (?1)")?;
        for h in chunks {
            st.execute([&h.0[..]])?;
        }
        Ok(())
    }

    /// Is the chunk live?
    pub fn live_contains(&self, h: &Hash) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM temp.live_chunks WHERE hash = ?1")?;
        Ok(st.exists([&h.0[..]])?)
    }

    /// Live chunks.
    pub fn live_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM temp.live_chunks", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Live chunks that the index does not know (damage: their data is lost or unindexed).
    pub fn live_missing(&self) -> Result<Vec<Hash>> {
        let mut st = self.conn.prepare(
            "SELECT l.hash FROM temp.live_chunks l
             WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = l.hash)",
        )?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(a) = <[u8; 32]>::try_from(row?.as_slice()) {
                out.push(Hash(a));
            }
        }
        Ok(out)
    }

    /// The live chunks of one pack, by offset.
    pub fn live_chunks_in_pack(&self, pack_id: i64) -> Result<Vec<PackEntry>> {
        self.pack_entries(
            "SELECT c.hash, c.offset, c.clen, c.ulen, c.inner_offset FROM chunks c
             JOIN temp.live_chunks l ON l.hash = c.hash
             WHERE c.pack_id = ?1 ORDER BY c.offset, c.inner_offset",
            pack_id,
        )
    }

    /// gc's deletion step, in one transaction: files-cache rows naming a chunk that is not live
    /// (else a later snapshot would reuse a chunk about to vanish), index rows of dead chunks,
    /// blob rows no snapshot names, and the rows of `packs` (each must hold no chunk row by
    /// then, or nothing is deleted).
    pub fn delete_dead(&self, packs: &[i64]) -> Result<DeadRows> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out = DeadRows {
            cache_rows: self.drop_stale_cache(&tx, |h| self.live_contains(h))?,
            ..DeadRows::default()
        };
        out.chunks = tx.execute(
            "DELETE FROM chunks WHERE NOT EXISTS
                (SELECT 1 FROM temp.live_chunks l WHERE l.hash = chunks.hash)",
            [],
        )? as u64;
        out.blobs = tx.execute(
            "DELETE FROM blobs WHERE NOT EXISTS
                (SELECT 1 FROM temp.live_blobs l WHERE l.id = blobs.id)",
            [],
        )? as u64;
        {
            let mut st = tx.prepare("SELECT count(*) FROM chunks WHERE pack_id = ?1")?;
            let mut del = tx.prepare("DELETE FROM packs WHERE id = ?1")?;
            for id in packs {
                let n: i64 = st.query_row([id], |r| r.get(0))?;
                if n != 0 {
                    return Err(Error::Invalid(format!(
                        "gc: pack {id} still holds {n} indexed chunk(s); nothing was deleted"
                    )));
                }
                out.packs += del.execute([id])? as u64;
            }
        }
        tx.commit()?;
        Ok(out)
    }
}
