//! Totals for `sitesnap stats`: the chunk index summed in SQLite (never loaded whole).

use super::Catalog;
use crate::error::Result;

/// The chunk index summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkTotals {
    /// Indexed chunks.
    pub chunks: u64,
    /// Their plain bytes (each distinct chunk once).
    pub plain: u64,
    /// Their compressed bytes in the packs (each frame once).
    pub stored: u64,
}

impl Catalog {
    /// Count and sizes of every indexed chunk.
    pub fn chunk_totals(&self) -> Result<ChunkTotals> {
        let t = self.conn.query_row(
            "SELECT count(*), coalesce(sum(ulen), 0),
                    (SELECT coalesce(sum(clen), 0)
                     FROM (SELECT DISTINCT pack_id, offset, clen FROM chunks))
             FROM chunks",
            [],
            |r| {
                Ok(ChunkTotals {
                    chunks: r.get::<_, i64>(0)? as u64,
                    plain: r.get::<_, i64>(1)? as u64,
                    stored: r.get::<_, i64>(2)? as u64,
                })
            },
        )?;
        Ok(t)
    }
}
