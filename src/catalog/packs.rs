//! Packs and the chunk index: which pack holds each chunk, at which offset.

use super::{Catalog, time_str};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::pack::{ChunkLocation, PackEntry, PackFormat, PackInfo};
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of a pack the snapshots still use (computed against the live set of `gc`/`verify`).
#[derive(Debug, Clone)]
pub struct PackUsage {
    /// The pack's row id.
    pub id: i64,
    /// The pack's name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its indexed chunks.
    pub chunks: u64,
    /// Of those, the live ones.
    pub live_chunks: u64,
    /// Stored bytes of the frames holding live ones.
    pub live_bytes: u64,
}

impl Catalog {
    /// Is the chunk indexed (and not recorded as damaged: a damaged chunk is stored anew)?
    pub fn chunk_exists(&self, h: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached(
            "SELECT 1 FROM chunks WHERE hash = ?1
                 AND NOT EXISTS (SELECT 1 FROM damaged_chunks d
                                 WHERE d.hash = ?1 AND d.healed IS NULL)",
        )?;
        Ok(st.exists([&h.0[..]])?)
    }

    /// Where the chunk is stored, if indexed.
    pub fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>> {
        let mut st = self.conn.prepare_cached(
            "SELECT p.name, p.format, c.offset, c.clen, c.ulen, c.inner_offset
             FROM chunks c JOIN packs p ON p.id = c.pack_id WHERE c.hash = ?1",
        )?;
        let row = st
            .query_row([&h.0[..]], |r| {
                Ok((
                    r.get::<_, i64>(1)?,
                    ChunkLocation {
                        pack: r.get(0)?,
                        format: PackFormat::V1,
                        offset: r.get::<_, i64>(2)? as u64,
                        clen: r.get::<_, i64>(3)? as u32,
                        ulen: r.get::<_, i64>(4)? as u32,
                        inner: r.get::<_, i64>(5)? as u32,
                    },
                ))
            })
            .optional()?;
        row.map(|(format, loc)| {
            Ok(ChunkLocation {
                format: PackFormat::from_number(format)?,
                ..loc
            })
        })
        .transpose()
    }

    /// Where each of `hashes` is stored, for those indexed: one query per 500 hashes instead
    /// of one per chunk (a restore of 50,000 small files spent 14% of its CPU time in the
    /// per-chunk query, which SQLite prepared again on every call).
    pub fn chunk_locations(
        &self,
        hashes: &[Hash],
    ) -> Result<std::collections::HashMap<Hash, ChunkLocation>> {
        /// Hashes per query (well under SQLite's limit of bound parameters).
        const BATCH: usize = 500;
        let mut out = std::collections::HashMap::with_capacity(hashes.len());
        for batch in hashes.chunks(BATCH) {
            let marks = vec!["?"; batch.len()].join(",");
            let mut st = self.conn.prepare_cached(&format!(
                "SELECT c.hash, p.name, p.format, c.offset, c.clen, c.ulen, c.inner_offset
                 FROM chunks c JOIN packs p ON p.id = c.pack_id WHERE c.hash IN ({marks})"
            ))?;
            let params = rusqlite::params_from_iter(batch.iter().map(|h| &h.0[..]));
            let mut rows = st.query(params)?;
            while let Some(r) = rows.next()? {
                let raw: Vec<u8> = r.get(0)?;
                let hash = <[u8; 32]>::try_from(raw.as_slice())
                    .map(Hash)
                    .map_err(|_| Error::Corrupt("chunk index: a hash of the wrong size".into()))?;
                let loc = ChunkLocation {
                    pack: r.get(1)?,
                    format: PackFormat::from_number(r.get::<_, i64>(2)?)?,
                    offset: r.get::<_, i64>(3)? as u64,
                    clen: r.get::<_, i64>(4)? as u32,
                    ulen: r.get::<_, i64>(5)? as u32,
                    inner: r.get::<_, i64>(6)? as u32,
                };
                out.insert(hash, loc);
            }
        }
        Ok(out)
    }

    /// Records a durable pack and its chunks in one transaction. Call only after the pack file
    /// is fsynced and renamed into place.
    pub fn insert_pack(&self, info: &PackInfo) -> Result<()> {
        // A chunk recorded as damaged is stored anew: its index row moves to the sound copy
        // (healing every snapshot that shares it) and its damage row goes.
        self.record_pack(
            info,
            "INSERT INTO chunks (hash, pack_id, offset, clen, ulen, inner_offset)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(hash) DO UPDATE SET pack_id = excluded.pack_id,
                 offset = excluded.offset, clen = excluded.clen, ulen = excluded.ulen,
                 inner_offset = excluded.inner_offset
             WHERE EXISTS (SELECT 1 FROM damaged_chunks d
                           WHERE d.hash = excluded.hash AND d.healed IS NULL)",
        )?;
        self.healed(info)
    }

    /// Marks the damaged copies of the chunks `info` now holds a sound copy of as healed.
    fn healed(&self, info: &PackInfo) -> Result<()> {
        let hashes: Vec<Hash> = info.entries.iter().map(|e| e.hash).collect();
        self.mark_healed(&hashes)
    }

    /// Records a pack and runs `chunk_sql` (parameters: hash, pack id, offset, clen, ulen,
    /// inner offset) for each of its chunks, in one transaction.
    fn record_pack(&self, info: &PackInfo, chunk_sql: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO packs (name, size, created, format) VALUES (?1, ?2, ?3, ?4)",
            params![
                info.name,
                info.size as i64,
                time_str(&Utc::now()),
                info.format.number()
            ],
        )?;
        let pack_id: i64 =
            tx.query_row("SELECT id FROM packs WHERE name = ?1", [&info.name], |r| {
                r.get(0)
            })?;
        {
            let mut st = tx.prepare_cached(chunk_sql)?;
            // In hash order each page of the index B-tree is visited once, not once per
            // chunk landing on it at random.
            let mut entries: Vec<&PackEntry> = info.entries.iter().collect();
            entries.sort_unstable_by_key(|e| e.hash);
            for e in entries {
                st.execute(params![
                    &e.hash.0[..],
                    pack_id,
                    e.offset as i64,
                    e.clen as i64,
                    e.ulen as i64,
                    e.inner as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every pack row: (id, name, size).
    pub fn packs(&self) -> Result<Vec<(i64, String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, size FROM packs ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The index rows of one pack, by offset.
    pub fn chunks_in_pack(&self, pack_id: i64) -> Result<Vec<PackEntry>> {
        self.pack_entries(
            "SELECT hash, offset, clen, ulen, inner_offset FROM chunks WHERE pack_id = ?1
             ORDER BY offset, inner_offset",
            pack_id,
        )
    }

    pub(super) fn pack_entries(&self, sql: &str, pack_id: i64) -> Result<Vec<PackEntry>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([pack_id], |r| {
            let h: Vec<u8> = r.get(0)?;
            Ok((
                h,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (h, offset, clen, ulen, inner) = row?;
            let hash = Hash(h.try_into().map_err(|_| {
                Error::Corrupt("chunk hash of the wrong length in the index".into())
            })?);
            out.push(PackEntry {
                hash,
                offset: offset as u64,
                clen: clen as u32,
                ulen: ulen as u32,
                inner: inner as u32,
            });
        }
        Ok(out)
    }

    /// Per pack: its chunks, how many of them are live, and the stored bytes of the frames
    /// holding live chunks (each frame counted once).
    pub fn pack_usage(&self) -> Result<Vec<PackUsage>> {
        let mut st = self.conn.prepare(
            "SELECT p.id, p.name, p.size, count(c.hash), count(l.hash),
                    coalesce((SELECT sum(f.clen) FROM (SELECT DISTINCT c2.offset, c2.clen
                        FROM chunks c2 JOIN temp.live_chunks l2 ON l2.hash = c2.hash
                        WHERE c2.pack_id = p.id) f), 0)
             FROM packs p
             LEFT JOIN chunks c ON c.pack_id = p.id
             LEFT JOIN temp.live_chunks l ON l.hash = c.hash
             GROUP BY p.id ORDER BY p.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(PackUsage {
                id: r.get(0)?,
                name: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                chunks: r.get::<_, i64>(3)? as u64,
                live_chunks: r.get::<_, i64>(4)? as u64,
                live_bytes: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a durable pack written by gc and points the index rows of its chunks at it, in
    /// one transaction. The old pack keeps its file until its rows are gone.
    pub fn move_chunks(&self, info: &PackInfo) -> Result<()> {
        self.record_pack(
            info,
            "INSERT INTO chunks (hash, pack_id, offset, clen, ulen, inner_offset)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (hash) DO UPDATE SET pack_id = excluded.pack_id,
                offset = excluded.offset, clen = excluded.clen, ulen = excluded.ulen,
                inner_offset = excluded.inner_offset",
        )
    }
}

impl crate::store::ChunkIndex for Catalog {
    fn chunk_exists(&self, h: &Hash) -> Result<bool> {
        Catalog::chunk_exists(self, h)
    }
    fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>> {
        Catalog::chunk_location(self, h)
    }
    fn insert_pack(&self, info: &PackInfo) -> Result<()> {
        Catalog::insert_pack(self, info)
    }
}

/// Opens catalogue connections as chunk-index connections for the store's worker threads.
/// Its connections share a count of the packs they indexed, so that a lookup never reads an
/// index older than the last pack indexed through any of them.
#[derive(Debug, Clone)]
pub struct CatalogIndex {
    /// The catalogue file.
    pub path: std::path::PathBuf,
    indexed: Arc<AtomicU64>,
}

impl CatalogIndex {
    /// Index connections to the catalogue at `path`.
    pub fn new(path: std::path::PathBuf) -> CatalogIndex {
        CatalogIndex {
            path,
            indexed: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl crate::store::IndexOpener for CatalogIndex {
    fn open_index(&self) -> Result<Box<dyn crate::store::ChunkIndex + Send>> {
        Ok(Box::new(IndexConn {
            cat: Catalog::open(&self.path)?,
            indexed: self.indexed.clone(),
            reading: Cell::new(None),
        }))
    }
}

/// A chunk-index connection of a capture. Its lookups share one read transaction until a pack
/// is indexed (through any connection of the same [`CatalogIndex`]): outside a transaction
/// every SQLite query takes and drops its file locks and checks the file again (several
/// system calls), which a capture paid once per chunk.
struct IndexConn {
    cat: Catalog,
    indexed: Arc<AtomicU64>,
    /// The open read transaction, as of which count of indexed packs.
    reading: Cell<Option<u64>>,
}

impl IndexConn {
    /// Ends the read transaction, if one is open.
    fn end_read(&self) -> Result<()> {
        if self.reading.take().is_some() {
            self.cat.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Makes sure a read transaction that sees every pack indexed so far is open.
    fn fresh_read(&self) -> Result<()> {
        let now = self.indexed.load(Ordering::Acquire);
        if self.reading.get() == Some(now) {
            return Ok(());
        }
        self.end_read()?;
        self.cat.conn.execute_batch("BEGIN")?;
        self.reading.set(Some(now));
        Ok(())
    }
}

impl crate::store::ChunkIndex for IndexConn {
    fn chunk_exists(&self, h: &Hash) -> Result<bool> {
        self.fresh_read()?;
        self.cat.chunk_exists(h)
    }
    fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>> {
        self.fresh_read()?;
        self.cat.chunk_location(h)
    }
    fn insert_pack(&self, info: &PackInfo) -> Result<()> {
        self.end_read()?;
        self.cat.insert_pack(info)?;
        self.indexed.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}
