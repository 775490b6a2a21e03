//! The read side: getting a stored snapshot back out of the repository. It loads a snapshot's
//! trees (platform, site directory, binding files), reads blobs whole or as a verified stream
//! (the database dump), and hands out chunk readers for file contents. Every chunk is verified
//! against its hash as it is read. Restore, diff, export and verify read through here; it
//! never writes to the repository or to a live site, and it never walks live folders (that is
//! `capture`).

use crate::catalog::{Catalog, SnapshotRecord};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::Repo;
use crate::store::{Backend, BlobReader, ChunkList, ChunkReader};
use crate::tree::{Tree, TreePart};
use std::path::PathBuf;
use std::sync::Arc;

/// Reads a blob's bytes back (verified chunk by chunk).
pub fn read_blob(repo: &Repo, id: &Hash) -> Result<Vec<u8>> {
    let (list, size) = repo.cat.blob(id)?;
    let mut out = Vec::with_capacity(size as usize);
    let mut r = chunk_reader(repo);
    let chunks = list.expand(id, &mut r)?;
    r.copy_chunks(&chunks, &mut out)?;
    Ok(out)
}

/// Loads a stored tree (and checks none of its paths leaves its root).
pub fn load_tree(repo: &Repo, id: &Hash) -> Result<Tree> {
    let t = Tree::decode(&read_blob(repo, id)?)?;
    t.validate()?;
    Ok(t)
}

/// A stored tree, decoded once per command: trees are named by their content, so the copy a
/// restore's plan decoded is the one its space check and its writing read (the platform
/// tree of the Rust docs, 52,000 entries, took about 40 ms to read, check and decode).
pub fn shared_tree(repo: &Repo, id: &Hash) -> Result<Arc<Tree>> {
    if let Some(t) = repo.kept_tree(id) {
        return Ok(t);
    }
    let t = Arc::new(load_tree(repo, id)?);
    repo.keep_tree(*id, t.clone());
    Ok(t)
}

/// [`part_tree`] through [`shared_tree`].
pub fn shared_part_tree(
    repo: &Repo,
    snap: &SnapshotRecord,
    part: TreePart,
) -> Result<Option<Arc<Tree>>> {
    let Some(id) = part_id(snap, part) else {
        return Ok(None);
    };
    shared_tree(repo, &id)
        .map(Some)
        .map_err(|e| in_tree(e, snap, part))
}

/// A tree's damage, saying which snapshot and which of its trees.
fn in_tree(e: Error, snap: &SnapshotRecord, part: TreePart) -> Error {
    match e {
        Error::Corrupt(m) => Error::Corrupt(format!("snapshot {}, {part} tree: {m}", snap.id)),
        other => other,
    }
}

/// Loads one of a snapshot's trees; a failure names the snapshot and the tree.
pub fn snapshot_tree(
    repo: &Repo,
    snap: &SnapshotRecord,
    part: TreePart,
    id: &Hash,
) -> Result<Tree> {
    load_tree(repo, id).map_err(|e| in_tree(e, snap, part))
}

/// The blob id of a snapshot's tree for `part` (None when the snapshot does not hold it).
pub fn part_id(snap: &SnapshotRecord, part: TreePart) -> Option<Hash> {
    match part {
        TreePart::Platform => snap.platform_tree,
        TreePart::Site => snap.site_tree,
        TreePart::Bindings => snap.bindings_tree,
        TreePart::Extra => snap.extra_tree,
    }
}

/// Loads a snapshot's tree for `part`, if it holds one; a failure names the snapshot and tree.
pub fn part_tree(repo: &Repo, snap: &SnapshotRecord, part: TreePart) -> Result<Option<Tree>> {
    part_id(snap, part)
        .map(|id| snapshot_tree(repo, snap, part, &id))
        .transpose()
}

/// Loads a stored tree, or an empty tree when there is none.
pub fn tree_or_empty(repo: &Repo, id: Option<Hash>) -> Result<Tree> {
    match id {
        Some(id) => load_tree(repo, &id),
        None => Ok(Tree::default()),
    }
}

/// Opens a stored blob for streaming, one verified chunk at a time: an indirect list's ids
/// are read from its list chunks as the stream reaches them (a dump's restore holds one list
/// chunk a level, not its millions of ids), and checked after the last.
pub fn blob_reader<'a>(repo: &'a Repo, id: &Hash) -> Result<BlobReader<'a>> {
    let (list, _) = repo.cat.blob(id)?;
    Ok(BlobReader::listed(repo.chunk_reader(), id, list))
}

/// The plain size of a stored blob (its list is not read).
pub fn blob_size(repo: &Repo, id: &Hash) -> Result<u64> {
    Ok(repo.cat.blob(id)?.1)
}

/// The full chunk list and size of a stored blob (the database dump, say): an indirect list
/// is expanded here, its list chunks read and checked. Every reader of a blob's chunks on
/// this repository comes through here (or through [`expand`] with a reader of its own).
pub fn blob_chunks(repo: &Repo, id: &Hash) -> Result<(Vec<Hash>, u64)> {
    let (list, size) = repo.cat.blob(id)?;
    Ok((expand(repo, id, list)?, size))
}

/// Expands a blob's stored chunk list (a no-op for a direct list).
pub fn expand(repo: &Repo, id: &Hash, list: ChunkList) -> Result<Vec<Hash>> {
    list.expand(id, &mut chunk_reader(repo))
}

/// A `Read` over the given chunks (a file's content), verifying each.
pub fn chunks_reader(repo: &Repo, chunks: Vec<Hash>) -> BlobReader<'_> {
    BlobReader::with_reader(repo.chunk_reader(), chunks)
}

/// A reader of single chunks by hash, keeping pack files open (one per thread).
pub fn chunk_reader(repo: &Repo) -> ChunkReader<'_> {
    repo.chunk_reader()
}

/// Where a repository's chunks are read from, without a catalogue connection: it can be
/// shared by worker threads, each opening its own catalogue (a connection is not `Sync`).
#[derive(Debug, Clone)]
pub struct Source {
    backend: Arc<dyn Backend>,
    codec: crate::store::ChunkCodec,
    catalog: PathBuf,
}

impl Source {
    /// The read source of `repo`.
    pub fn of(repo: &Repo) -> Source {
        Source {
            backend: repo.backend().clone(),
            codec: repo.codec(),
            catalog: Repo::catalog_path(&repo.root),
        }
    }

    /// Opens a catalogue connection of this thread's own.
    pub fn open_catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.catalog)
    }

    /// A chunk reader over a connection opened with [`Source::open_catalog`].
    pub fn reader<'a>(&self, cat: &'a Catalog) -> ChunkReader<'a> {
        ChunkReader::with_backend(self.backend.clone(), cat, self.codec.clone())
    }
}
