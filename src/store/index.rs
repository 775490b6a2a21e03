//! The chunk index as the store sees it: the traits the catalogue implements, so the store never
//! imports the catalogue (data flows one way: store -> backend; the catalogue plugs in here).

use super::pack::{ChunkLocation, PackInfo};
use crate::error::Result;
use crate::hash::Hash;

/// One connection to the chunk index: where each stored chunk lives.
pub trait ChunkIndex {
    /// Whether a chunk with this hash is already stored (indexed).
    fn chunk_exists(&self, h: &Hash) -> Result<bool>;
    /// Where a stored chunk lives, or `None` when it is not indexed.
    fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>>;
    /// Records a durable pack and indexes its chunks, in one transaction.
    fn insert_pack(&self, info: &PackInfo) -> Result<()>;
}

/// Opens chunk-index connections for the store's worker threads.
pub trait IndexOpener: Send + Sync + std::fmt::Debug {
    /// Opens one new connection.
    fn open_index(&self) -> Result<Box<dyn ChunkIndex + Send>>;
}
