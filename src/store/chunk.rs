//! Chunks: content-defined chunking parameters per kind of stream, zstd compression with a
//! reused per-thread context, and decoding (decompress, then check against the hash). Every
//! chunk read anywhere goes through [`decode_chunk`].

use super::format::{MAX_FRAME, PackEntry, PackFormat};
use crate::crypto::{Binding, MasterKey};
use crate::error::{Error, Result};
use crate::hash::Hash;
use std::cell::RefCell;
use std::sync::Arc;

/// Where a stream may be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Anywhere (FastCDC 2020).
    Bytes,
    /// Only at the end of a row of a database dump, unless `max` bytes hold none
    /// ([`super::rows`]).
    Rows,
}

/// Content-defined chunking parameters and zstd level for one kind of stream.
#[derive(Debug, Clone, Copy)]
pub struct ChunkParams {
    /// Where cuts may fall.
    pub cut: Cut,
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
/// one chunk. Level 2: on the Rust documentation tree (782 MB of HTML, JS and SVG), against
/// level 4 it takes 23% less CPU time for a first snapshot and stores 4% more (70.4 against
/// 67.7 MB; level 3: 14% less time, 1.5% more; level 1: 25% less, 6.5% more); media does not
/// compress at any level and costs little (docs/performance.md).
pub const FILE_CHUNKS: ChunkParams = ChunkParams {
    cut: Cut::Bytes,
    min: 512 << 10,
    avg: 1 << 20,
    max: 8 << 20,
    level: 2,
};
/// SQL dumps (MariaDB, PostgreSQL): row-aligned cuts ([`Cut::Rows`], store/rows.rs) at
/// 512 B/1 KiB/8 KiB: a scattered 1% row change of a 200 MB dump adds 9.4% (its rewritten
/// list chunks included) instead of the 43.7% of FastCDC 2/8/64 KiB. A dump of ten times the
/// chunks keeps a flat list no longer:
/// past 4,096 chunks its ids go into list chunks (store/list.rs), so neither the capture nor
/// the commit holds the whole list and an unchanged stretch of it is shared between
/// snapshots (docs/performance.md). Level 3: on small chunks of SQL, level 4 saves under 1%
/// and compresses a third slower.
pub const DUMP_CHUNKS: ChunkParams = ChunkParams {
    cut: Cut::Rows,
    min: 512,
    avg: 1 << 10,
    max: 8 << 10,
    level: 3,
};
/// Row-aligned dump chunks: the same as [`DUMP_CHUNKS`] (the name the row chunker's tests and
/// benches use).
pub const DUMP_ROW_CHUNKS: ChunkParams = DUMP_CHUNKS;
/// SQLite databases, stored as a page image (an online copy), not as SQL text: FastCDC 2/8/64
/// KiB, what every dump was cut with before row-aligned cuts (so SQLite sites keep deduping
/// against their older snapshots).
pub const SQLITE_CHUNKS: ChunkParams = ChunkParams {
    cut: Cut::Bytes,
    min: 2 << 10,
    avg: 8 << 10,
    max: 64 << 10,
    level: 3,
};
/// Serialized trees.
pub const TREE_CHUNKS: ChunkParams = ChunkParams {
    cut: Cut::Bytes,
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
    /// Each thread's output buffer for compression, reused (the worst-case output of a
    /// section is a megabyte; the frame keeps only the bytes it needs).
    static COUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// One decompression context per thread.
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// A compression output buffer above this capacity is not kept for the next chunk.
const KEPT_OUTPUT: usize = 2 << 20;

/// Compresses one chunk at `level` with the thread's reused zstd context and output buffer;
/// the result holds exactly the compressed bytes.
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
        let cx = &mut c.as_mut().expect("compressor").1;
        COUT.with(|o| {
            let mut o = o.borrow_mut();
            o.clear();
            o.reserve(zstd::zstd_safe::compress_bound(data.len()));
            cx.compress_to_buffer(data, &mut *o).map_err(err)?;
            if o.capacity() > KEPT_OUTPUT {
                // A big chunk's output is handed over (shrunk in place), not copied: a worker
                // holds one such buffer, not two.
                let mut out = std::mem::take(&mut *o);
                out.shrink_to_fit();
                return Ok(out);
            }
            Ok(o.to_vec())
        })
    })
}

/// Decompresses and checks one chunk's bytes of an unencrypted repository (prefer
/// [`ChunkCodec::decode`]).
pub fn decode_chunk(hash: &Hash, compressed: &[u8], ulen: u32) -> Result<Vec<u8>> {
    let data = decompress(hash, compressed, ulen)?;
    if data.len() != ulen as usize || Hash::of(&data) != *hash {
        return Err(mismatch(hash));
    }
    Ok(data)
}

/// A stream cut into chunks with `params`, each chunk's bytes in turn.
pub fn stream_chunks<'a>(
    r: impl std::io::Read + 'a,
    params: ChunkParams,
) -> Box<dyn Iterator<Item = Result<Vec<u8>>> + 'a> {
    let read_err = |e: std::io::Error| Error::Invalid(format!("read failed: {e}"));
    match params.cut {
        Cut::Rows => {
            Box::new(super::rows::RowChunks::new(r, params).map(move |c| c.map_err(read_err)))
        }
        Cut::Bytes => Box::new(
            fastcdc::v2020::StreamCDC::new(r, params.min, params.avg, params.max).map(move |c| {
                c.map(|c| c.data).map_err(|e| match e {
                    fastcdc::v2020::Error::IoError(e) => read_err(e),
                    other => Error::Invalid(format!("chunker: {other}")),
                })
            }),
        ),
    }
}

/// Chunks a buffer without storing, naming chunks as an unencrypted repository does (prefer
/// [`ChunkCodec::hash_bytes`]).
pub fn hash_bytes(data: &[u8], params: ChunkParams) -> Vec<Hash> {
    ChunkCodec::plain().hash_bytes(data, params)
}

/// How a repository names and stores chunks: plain (chunk id = SHA-256, chunk bytes = one zstd
/// frame, pack header in clear) or sealed under the repository's master key (chunk id =
/// HMAC-SHA-256 under its MAC key; each compressed chunk and each pack header sealed with
/// XChaCha20-Poly1305, bound to the chunk id or to "pack header"). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ChunkCodec {
    key: Option<Arc<MasterKey>>,
}

impl ChunkCodec {
    /// An unencrypted repository's codec.
    pub fn plain() -> ChunkCodec {
        ChunkCodec { key: None }
    }

    /// An encrypted repository's codec.
    pub fn sealed(key: Arc<MasterKey>) -> ChunkCodec {
        ChunkCodec { key: Some(key) }
    }

    /// Is it an encrypted repository's?
    pub fn is_sealed(&self) -> bool {
        self.key.is_some()
    }

    /// The id of a chunk with these plain bytes.
    pub fn id(&self, data: &[u8]) -> Hash {
        match &self.key {
            Some(k) => k.chunk_id(data),
            None => Hash::of(data),
        }
    }

    /// Chunks a buffer without storing (used to compare live trees with snapshots).
    pub fn hash_bytes(&self, data: &[u8], params: ChunkParams) -> Vec<Hash> {
        cut_bytes(data, params)
            .map(|(o, l)| self.id(&data[o..o + l]))
            .collect()
    }

    /// The bytes stored in a pack for chunk `id` with plain bytes `data`.
    pub fn encode(&self, id: &Hash, data: &[u8], level: i32) -> Result<Vec<u8>> {
        let c = compress_chunk(data, level)?;
        match &self.key {
            Some(k) => k.seal(Binding::Chunk(id), &c),
            None => Ok(c),
        }
    }

    /// The plain bytes of chunk `id` from its stored bytes, checked against the id.
    pub fn decode(&self, id: &Hash, stored: &[u8], ulen: u32) -> Result<Vec<u8>> {
        let Some(k) = &self.key else {
            return decode_chunk(id, stored, ulen);
        };
        let c = k.open(Binding::Chunk(id), stored, &format!("chunk {}", id.short()))?;
        let data = decompress(id, &c, ulen)?;
        if data.len() != ulen as usize || k.chunk_id(&data) != *id {
            return Err(mismatch(id));
        }
        Ok(data)
    }

    /// A pack's header bytes as stored (sealed in an encrypted repository).
    pub fn seal_header(&self, entries: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            Some(k) => k.seal(Binding::PackHeader, entries),
            None => Ok(entries.to_vec()),
        }
    }

    /// A pack's header entries from their stored bytes.
    pub fn open_header(&self, what: &str, stored: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            Some(k) => k.open(Binding::PackHeader, stored, &format!("pack {what} header")),
            None => Ok(stored.to_vec()),
        }
    }

    /// The magic bytes new packs of this codec start with (format 2).
    pub fn pack_magic(&self) -> &'static [u8; 8] {
        PackFormat::V2.magic(self.is_sealed())
    }

    /// The stored bytes of a format-2 frame holding `plain` (one or more chunks back to back):
    /// one zstd frame, sealed as one message bound to "frame" in an encrypted repository.
    pub fn encode_frame(&self, plain: &[u8], level: i32) -> Result<Vec<u8>> {
        let c = compress_chunk(plain, level)?;
        match &self.key {
            Some(k) => k.seal(Binding::Frame, &c),
            None => Ok(c),
        }
    }

    /// The plain bytes of a stored frame of a `format` pack, read to get chunk `id` of plain
    /// length `ulen` (named in messages; in format 1 the frame is that chunk, sealed bound to
    /// its id). Not checked against any id: see [`ChunkCodec::chunk_of`].
    pub fn open_frame(
        &self,
        format: PackFormat,
        id: &Hash,
        stored: &[u8],
        ulen: u32,
    ) -> Result<Vec<u8>> {
        let binding = match format {
            PackFormat::V1 => Binding::Chunk(id),
            PackFormat::V2 => Binding::Frame,
        };
        let opened;
        let c = match &self.key {
            Some(k) => {
                opened = k.open(binding, stored, &format!("chunk {}", id.short()))?;
                &opened[..]
            }
            None => stored,
        };
        let cap = match format {
            PackFormat::V1 => ulen as u64,
            PackFormat::V2 => frame_size(id, c)?,
        };
        decompress(id, c, cap as u32)
    }

    /// Chunk `id` from its frame's plain bytes, at `inner`, `ulen` long, checked against id.
    pub fn chunk_of(&self, id: &Hash, frame: &[u8], inner: u32, ulen: u32) -> Result<Vec<u8>> {
        let (start, end) = (inner as usize, inner as usize + ulen as usize);
        let data = frame.get(start..end).ok_or_else(|| {
            Error::Corrupt(format!("chunk {} lies outside its frame", id.short()))
        })?;
        if self.id(data) != *id {
            return Err(mismatch(id));
        }
        Ok(data.to_vec())
    }

    /// Opens a stored frame and takes chunk `e` out of it (one-off reads; readers of many
    /// chunks keep frames in a [`super::frame::FrameCache`]).
    pub fn decode_entry(
        &self,
        format: PackFormat,
        e: &PackEntry,
        stored: &[u8],
    ) -> Result<Vec<u8>> {
        let frame = self.open_frame(format, &e.hash, stored, e.ulen)?;
        self.chunk_of(&e.hash, &frame, e.inner, e.ulen)
    }
}

fn mismatch(hash: &Hash) -> Error {
    Error::Corrupt(format!("chunk {} does not match its hash", hash.short()))
}

/// The plain size a format-2 zstd frame says it holds (written by every compressor here),
/// refused when missing or beyond [`MAX_FRAME`].
fn frame_size(id: &Hash, compressed: &[u8]) -> Result<u64> {
    match zstd::zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(n)) if n <= MAX_FRAME => Ok(n),
        _ => Err(Error::Corrupt(format!(
            "chunk {}: its frame does not say a valid size",
            id.short()
        ))),
    }
}

/// Decompresses one chunk's zstd frame to at most `ulen` bytes.
fn decompress(hash: &Hash, compressed: &[u8], ulen: u32) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| {
        Error::Corrupt(format!("chunk {} does not decompress: {e}", hash.short()))
    };
    DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(bad)?);
        }
        d.as_mut()
            .expect("decompressor")
            .decompress(compressed, ulen as usize)
            .map_err(bad)
    })
}

/// The (offset, length) cuts of an in-memory buffer: one chunk if it is at most `min` bytes.
pub fn cut_bytes(
    data: &[u8],
    params: ChunkParams,
) -> Box<dyn Iterator<Item = (usize, usize)> + '_> {
    if params.cut == Cut::Rows {
        return Box::new(super::rows::cut_rows(data, params));
    }
    if data.len() <= params.min {
        return Box::new(std::iter::once((0, data.len())));
    }
    Box::new(
        fastcdc::v2020::FastCDC::new(data, params.min, params.avg, params.max)
            .map(|c| (c.offset, c.length)),
    )
}
