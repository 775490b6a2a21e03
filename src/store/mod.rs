//! The content store: chunking, pack files and reading chunks back, over a [`Backend`] that
//! says where objects live. A pack (`pack`) is written through an upload, made durable (locally:
//! fsync, rename to `data/<xx>/<sha256 of the pack>`, fsync of the folder) and only then indexed
//! in the catalogue. Every chunk read is decompressed (its frame, once) and checked against
//! its hash. The store
//! never deletes a pack that is still indexed; only `gc` removes packs.
//!
//! Only this module knows the on-disk layout of a local repository's `data/` folder
//! ([`LocalBackend`]); every other module reaches packs through the [`Backend`] trait.

pub mod backend;
pub mod chunk;
pub mod format;
pub mod frame;
pub mod index;
pub mod list;
pub mod pack;
pub mod reader;
pub mod rows;
#[cfg(feature = "s3")]
pub mod s3;
pub mod writer;

#[cfg(test)]
mod tests;

pub use backend::{
    Backend, Incomplete, LocalBackend, ObjectInfo, ObjectKind, ObjectName, Upload, pack_path,
};
pub use chunk::{
    ChunkCodec, ChunkParams, Cut, DUMP_CHUNKS, DUMP_ROW_CHUNKS, FILE_CHUNKS, SQLITE_CHUNKS,
    TREE_CHUNKS, ZSTD_LEVEL, compress_chunk, cut_bytes, decode_chunk, hash_bytes, stream_chunks,
};
pub use frame::{Frame, FrameCache};
pub use index::{ChunkIndex, IndexOpener};
pub use list::{ChunkList, ListBuilder};
pub use pack::{
    ChunkLocation, HEADER_ENTRY, PACK_MAGIC, PACK_OVERHEAD, PACK_TARGET, PackEntry, PackFormat,
    PackHeader, PackInfo, read_pack_header,
};
pub use reader::{BlobReader, ChunkReader};
#[cfg(feature = "s3")]
pub use s3::{S3Backend, S3Config};
pub use writer::{ChunkSink, PackRoller, PackWriter, SealedPack, Sealer, SinkStats};

/// The local folder of a repository's objects, under its root.
pub fn local_data_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.join("data")
}

/// The local scratch folder of a repository under its root: unfinished uploads of the local
/// backend, database dump staging.
pub fn local_tmp_dir(root: &std::path::Path) -> std::path::PathBuf {
    local_data_dir(root).join("tmp")
}

/// The cause of an error without the path it concerns (a backend's object paths are its own
/// business; messages name objects instead).
pub fn cause(e: &crate::error::Error) -> String {
    match e {
        crate::error::Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
