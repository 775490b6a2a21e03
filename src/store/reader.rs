//! Reading chunks back: the catalogue's index says which pack, frame and place in the frame hold
//! a chunk, the backend reads the frame, and the chunk cut from it is checked against its id.
//! A reader keeps its last frames opened, so reading a frame's chunks in turn opens it once.

use super::backend::{Backend, LocalBackend, ObjectName};
use super::chunk::ChunkCodec;
use super::frame::FrameCache;
use super::index::ChunkIndex;
use super::list::{ChunkList, ListIds};
use super::pack::ChunkLocation;
use crate::error::{Error, Result};
use crate::hash::Hash;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Reads chunks by hash through a backend. One per thread.
pub struct ChunkReader<'a> {
    backend: Arc<dyn Backend>,
    codec: ChunkCodec,
    cat: &'a dyn ChunkIndex,
    frames: FrameCache,
}

impl<'a> ChunkReader<'a> {
    /// A reader over a local, unencrypted `data/` folder (kept for tests and tools that hold
    /// a path; prefer `Repo::chunk_reader`).
    pub fn new(data: &Path, cat: &'a dyn ChunkIndex) -> Self {
        Self::with_backend(Arc::new(LocalBackend::new(data)), cat, ChunkCodec::plain())
    }

    /// A reader through `backend`, locating chunks with `cat`, opening them with `codec`.
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        cat: &'a dyn ChunkIndex,
        codec: ChunkCodec,
    ) -> Self {
        ChunkReader {
            backend,
            codec,
            cat,
            frames: FrameCache::default(),
        }
    }

    /// Reads, decompresses and verifies a chunk.
    pub fn read(&mut self, hash: &Hash) -> Result<Vec<u8>> {
        let loc = self.cat.chunk_location(hash)?.ok_or_else(|| {
            Error::Corrupt(format!("chunk {} is missing from the index", hash.short()))
        })?;
        self.read_at(hash, &loc)
    }

    /// Reads, decompresses and verifies a chunk at a known place.
    pub fn read_at(&mut self, hash: &Hash, loc: &ChunkLocation) -> Result<Vec<u8>> {
        let short = &loc.pack[..8.min(loc.pack.len())];
        let backend = &self.backend;
        let read = || {
            backend
                .read_range(&ObjectName::pack(&loc.pack), loc.offset, loc.clen as usize)
                .map_err(|e| {
                    Error::Corrupt(format!(
                        "pack {short} holding chunk {}: {}",
                        hash.short(),
                        super::cause(&e)
                    ))
                })
        };
        self.frames
            .chunk(&self.codec, &loc.pack, loc.format, &loc.entry(*hash), read)
            .map_err(|e| match e {
                Error::Corrupt(m) if m.starts_with("pack ") => Error::Corrupt(m),
                e => Error::Corrupt(format!("{e} (in pack {short})")),
            })
    }

    /// Writes a whole blob (list of chunks) into `w`.
    pub fn copy_chunks(&mut self, chunks: &[Hash], w: &mut dyn Write) -> Result<u64> {
        let mut n = 0;
        for h in chunks {
            let d = self.read(h)?;
            w.write_all(&d)
                .map_err(|e| Error::Invalid(format!("write failed: {e}")))?;
            n += d.len() as u64;
        }
        Ok(n)
    }
}

/// A `Read` over a blob's chunks, verifying each. Its ids come from the blob's list as they
/// are needed ([`ListIds`]): a dump's list is never expanded whole.
pub struct BlobReader<'a> {
    reader: ChunkReader<'a>,
    ids: ListIds,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> BlobReader<'a> {
    /// A blob reader over a local `data/` folder (prefer [`BlobReader::with_reader`]).
    pub fn new(data: &Path, cat: &'a dyn ChunkIndex, chunks: Vec<Hash>) -> Self {
        Self::with_reader(ChunkReader::new(data, cat), chunks)
    }

    /// A blob reader reading `chunks` through `reader`.
    pub fn with_reader(reader: ChunkReader<'a>, chunks: Vec<Hash>) -> Self {
        let id = Hash([0; 32]);
        Self::listed(reader, &id, ChunkList::Direct(chunks))
    }

    /// A blob reader over blob `id` with list `list`, reading its list chunks (if any) and
    /// chunks through `reader` as it goes; the list's count and id are checked after its
    /// last chunk (a mismatch is the last read's error).
    pub fn listed(reader: ChunkReader<'a>, id: &Hash, list: ChunkList) -> Self {
        BlobReader {
            reader,
            ids: list.ids(id),
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let reader = &mut self.reader;
            let next = self.ids.next_id(&mut |l| reader.read(l));
            let Some(h) = next.map_err(std::io::Error::other)? else {
                return Ok(0);
            };
            self.buf = self.reader.read(&h).map_err(std::io::Error::other)?;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
