//! Chunks: content-defined chunking parameters per kind of stream, zstd compression with a
//! reused per-thread context, and decoding (decompress, then check against the hash). Every
//! chunk read anywhere goes through [`decode_chunk`].

use crate::error::{Error, Result};
use crate::hash::Hash;
use std::cell::RefCell;

/// Content-defined chunking parameters and zstd level for one kind of stream.
#[derive(Debug, Clone, Copy)]
pub struct ChunkParams {
    /// Smallest chunk (a smaller input is one chunk).
    pub min: usize,
    /// Average chunk.
    pub avg: usize,
    /// Largest chunk.
    pub max: usize,
    /// zstd level for this stream's new chunks.
    pub level: i32,
}

/// Files: large chunks (restic's sizes); files smaller than `min` (nearly every code file) are
/// one chunk. Level 4 stores code 2.4% smaller than level 3 for about 20% more compression
/// time; media does not compress at any level and costs little (docs/performance.md).
pub const FILE_CHUNKS: ChunkParams = ChunkParams {
    min: 512 << 10,
    avg: 1 << 20,
    max: 8 << 20,
    level: 4,
};
/// Database dumps: small chunks, so scattered row changes leave most chunks intact. Level 3:
/// on 8 KiB chunks of SQL, level 4 saves under 1% and compresses a third slower.
pub const DUMP_CHUNKS: ChunkParams = ChunkParams {
    min: 2 << 10,
    avg: 8 << 10,
    max: 64 << 10,
    level: 3,
};
/// Serialized trees.
pub const TREE_CHUNKS: ChunkParams = ChunkParams {
    min: 16 << 10,
    avg: 64 << 10,
    max: 256 << 10,
    level: 4,
};
/// zstd level of chunks stored without a stream's parameters (`ChunkSink::put`): the files'
/// level.
pub const ZSTD_LEVEL: i32 = FILE_CHUNKS.level;

thread_local! {
    /// One zstd context per thread, reused for every chunk (creating one costs as much as
    /// compressing a small file).
    static CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// One decompression context per thread.
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses one chunk at `level` with the thread's reused zstd context.
pub fn compress_chunk(data: &[u8], level: i32) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| Error::Invalid(format!("zstd: {e}"));
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some((l, cx)) if *l != level => {
                cx.set_compression_level(level).map_err(err)?;
                *l = level;
            }
            Some(_) => {}
            None => *c = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?)),
        }
        c.as_mut()
            .expect("compressor")
            .1
            .compress(data)
            .map_err(err)
    })
}

/// Decompresses and checks one chunk's bytes.
pub fn decode_chunk(hash: &Hash, compressed: &[u8], ulen: u32) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| {
        Error::Corrupt(format!("chunk {} does not decompress: {e}", hash.short()))
    };
    let data = DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(bad)?);
        }
        d.as_mut()
            .expect("decompressor")
            .decompress(compressed, ulen as usize)
            .map_err(bad)
    })?;
    if data.len() != ulen as usize || Hash::of(&data) != *hash {
        return Err(Error::Corrupt(format!(
            "chunk {} does not match its hash",
            hash.short()
        )));
    }
    Ok(data)
}

/// Chunks a buffer without storing (used to compare live trees with snapshots).
pub fn hash_bytes(data: &[u8], params: ChunkParams) -> Vec<Hash> {
    cut_bytes(data, params)
        .map(|(o, l)| Hash::of(&data[o..o + l]))
        .collect()
}

/// The (offset, length) cuts of an in-memory buffer: one chunk if it is at most `min` bytes.
pub fn cut_bytes(
    data: &[u8],
    params: ChunkParams,
) -> Box<dyn Iterator<Item = (usize, usize)> + '_> {
    if data.len() <= params.min {
        return Box::new(std::iter::once((0, data.len())));
    }
    Box::new(
        fastcdc::v2020::FastCDC::new(data, params.min, params.avg, params.max)
            .map(|c| (c.offset, c.length)),
    )
}
