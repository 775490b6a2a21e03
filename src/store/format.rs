//! The pack format's constants and plain types (magics, entry sizes, `PackFormat`,
//! `PackEntry`), apart from the header's encoding in `pack.rs`, so the chunk codec can name
//! them without a circle between `chunk.rs` and `pack.rs`.

use crate::error::{Error, Result};
use crate::hash::Hash;
/// The first 8 bytes of a format-1 pack of an unencrypted repository.
pub const PACK_MAGIC: &[u8; 8] = b"SSNPACK1";
/// The first 8 bytes of a format-1 pack of an encrypted repository.
pub const PACK_MAGIC_SEALED: &[u8; 8] = b"SSNPACKS";
/// The first 8 bytes of a format-2 pack of an unencrypted repository.
pub const PACK_MAGIC_V2: &[u8; 8] = b"SSNPACK2";
/// The first 8 bytes of a format-2 pack of an encrypted repository.
pub const PACK_MAGIC_SEALED_V2: &[u8; 8] = b"SSNPACS2";
/// Format-1 header entry: hash (32) + offset (8) + clen (4) + ulen (4).
pub const HEADER_ENTRY_V1: usize = 48;
/// Format-2 header entry: hash (32) + frame offset (8) + frame clen (4) + ulen (4) + inner (4).
pub const HEADER_ENTRY: usize = 52;
/// Pack bytes beyond the frames: magic (8) + header length (4); each chunk adds a header entry.
pub const PACK_OVERHEAD: u64 = 12;
/// A pack is closed once it holds this many compressed bytes.
pub const PACK_TARGET: u64 = 16 << 20;
/// The most plain bytes one frame may hold (a reader refuses a frame saying more).
pub const MAX_FRAME: u64 = 32 << 20;

/// A pack's format: how its frames hold chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, std::hash::Hash, Default)]
pub enum PackFormat {
    /// One chunk per frame; a sealed frame is bound to its chunk id.
    V1,
    /// Frames of one or more chunks; a sealed frame is bound to "frame".
    #[default]
    V2,
}

impl PackFormat {
    /// The magic of packs of this format, sealed or not.
    pub fn magic(self, sealed: bool) -> &'static [u8; 8] {
        match (self, sealed) {
            (PackFormat::V1, false) => PACK_MAGIC,
            (PackFormat::V1, true) => PACK_MAGIC_SEALED,
            (PackFormat::V2, false) => PACK_MAGIC_V2,
            (PackFormat::V2, true) => PACK_MAGIC_SEALED_V2,
        }
    }

    /// The format and sealing a pack's first 8 bytes say.
    pub fn of_magic(magic: &[u8]) -> Option<(PackFormat, bool)> {
        [PackFormat::V1, PackFormat::V2]
            .into_iter()
            .flat_map(|f| [(f, false), (f, true)])
            .find(|(f, s)| magic == f.magic(*s))
    }

    /// Bytes of one header entry.
    pub fn entry_len(self) -> usize {
        match self {
            PackFormat::V1 => HEADER_ENTRY_V1,
            PackFormat::V2 => HEADER_ENTRY,
        }
    }

    /// The number the catalogue stores.
    pub fn number(self) -> i64 {
        match self {
            PackFormat::V1 => 1,
            PackFormat::V2 => 2,
        }
    }

    /// The format a catalogue number names.
    pub fn from_number(n: i64) -> Result<PackFormat> {
        match n {
            1 => Ok(PackFormat::V1),
            2 => Ok(PackFormat::V2),
            _ => Err(Error::Corrupt(format!(
                "unknown pack format {n} in the index"
            ))),
        }
    }
}

/// One chunk's place in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, std::hash::Hash)]
pub struct PackEntry {
    /// The chunk's hash (of its plain bytes).
    pub hash: Hash,
    /// Where the stored bytes of its frame start in the pack.
    pub offset: u64,
    /// Stored length of its frame.
    pub clen: u32,
    /// Plain length of the chunk.
    pub ulen: u32,
    /// Where the chunk starts in its frame's plain bytes (0 in format 1).
    pub inner: u32,
}
