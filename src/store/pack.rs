//! The pack format, and nothing else: a pack is `SSNPACK1`, then zstd-compressed chunks, then a
//! header listing each chunk's hash, offset and lengths, then the header's length in the last 4
//! bytes, so packs describe themselves and the index can be rebuilt from them. This module holds
//! the format's types (shared with the catalogue, which imports only this part of the store) and
//! the header's encoding; it does no I/O of its own.

use super::chunk::ChunkCodec;
use crate::crypto::SEAL_OVERHEAD;
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use super::chunk::{PACK_MAGIC, PACK_MAGIC_SEALED};
/// Header entry: hash (32) + offset (8) + clen (4) + ulen (4).
pub const HEADER_ENTRY: usize = 48;
/// Pack bytes beyond the chunks: magic (8) + header length (4); each chunk adds a header entry.
pub const PACK_OVERHEAD: u64 = 12;
/// A pack is closed once it holds this many compressed bytes.
pub const PACK_TARGET: u64 = 16 << 20;

/// One chunk's place in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// The chunk's hash (of its plain bytes).
    pub hash: Hash,
    /// Where its compressed bytes start in the pack.
    pub offset: u64,
    /// Compressed length.
    pub clen: u32,
    /// Plain length.
    pub ulen: u32,
}

/// A finished, durable pack.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// The pack's name: the hex SHA-256 of its bytes.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its chunks, in order.
    pub entries: Vec<PackEntry>,
}

/// Where a chunk is stored (a row of the catalogue's index).
#[derive(Debug, Clone)]
pub struct ChunkLocation {
    /// The pack's name.
    pub pack: String,
    /// Offset of the compressed bytes in the pack.
    pub offset: u64,
    /// Compressed length.
    pub clen: u32,
    /// Plain length.
    pub ulen: u32,
}

/// The bytes a pack needs to hold `chunks` chunks of `bytes` compressed bytes.
pub fn pack_size_for(chunks: u64, bytes: u64) -> u64 {
    bytes + chunks * HEADER_ENTRY as u64 + PACK_OVERHEAD
}

/// Encodes a pack's trailing header: one entry per chunk (sealed as one message by an
/// encrypting codec), then the stored header's length (u32 LE).
pub fn encode_header(codec: &ChunkCodec, entries: &[PackEntry]) -> Result<Vec<u8>> {
    let mut plain = Vec::with_capacity(entries.len() * HEADER_ENTRY);
    for e in entries {
        plain.extend_from_slice(&e.hash.0);
        plain.extend_from_slice(&e.offset.to_le_bytes());
        plain.extend_from_slice(&e.clen.to_le_bytes());
        plain.extend_from_slice(&e.ulen.to_le_bytes());
    }
    let mut header = codec.seal_header(&plain)?;
    let hlen = header.len() as u32;
    header.extend_from_slice(&hlen.to_le_bytes());
    Ok(header)
}

/// Why a pack's framing is wrong.
fn bad(what: &str, why: &str) -> Error {
    Error::Corrupt(format!("pack {what}: {why}"))
}

/// Reads and checks a pack's header through `read(offset, len)`, for a pack of `size` bytes
/// named `what` in messages, opening it with `codec`. Three reads: the magic, the header
/// length, the header.
pub fn read_header_with(
    what: &str,
    size: u64,
    codec: &ChunkCodec,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>>,
) -> Result<Vec<PackEntry>> {
    if size < PACK_OVERHEAD {
        return Err(bad(what, "too short"));
    }
    let magic = read(0, PACK_MAGIC.len())?;
    if magic != codec.pack_magic() {
        let why = if magic == PACK_MAGIC || magic == PACK_MAGIC_SEALED {
            "sealed and unsealed packs mixed in one repository"
        } else {
            "bad magic"
        };
        return Err(bad(what, why));
    }
    let l = read(size - 4, 4)?;
    let hlen = u32::from_le_bytes(l[..4].try_into().expect("4")) as u64;
    let extra = if codec.is_sealed() {
        SEAL_OVERHEAD as u64
    } else {
        0
    };
    if hlen < extra
        || !(hlen - extra).is_multiple_of(HEADER_ENTRY as u64)
        || hlen + PACK_OVERHEAD > size
    {
        return Err(bad(what, "bad header length"));
    }
    let header = read(size - 4 - hlen, hlen as usize)?;
    let plain = codec.open_header(what, &header)?;
    decode_entries(what, &plain, size - 4 - hlen)
}

/// Decodes header entries (without the trailing length); each must lie before `data_end`.
pub fn decode_entries(what: &str, header: &[u8], data_end: u64) -> Result<Vec<PackEntry>> {
    if !header.len().is_multiple_of(HEADER_ENTRY) {
        return Err(bad(what, "bad header length"));
    }
    let mut out = Vec::with_capacity(header.len() / HEADER_ENTRY);
    for e in header.chunks_exact(HEADER_ENTRY) {
        let entry = PackEntry {
            hash: Hash(e[..32].try_into().expect("32")),
            offset: u64::from_le_bytes(e[32..40].try_into().expect("8")),
            clen: u32::from_le_bytes(e[40..44].try_into().expect("4")),
            ulen: u32::from_le_bytes(e[44..48].try_into().expect("4")),
        };
        if entry.offset + entry.clen as u64 > data_end {
            return Err(bad(what, "header points past the data"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Reads a pack file's own header by path (tests and tools looking at a local, unencrypted
/// repository).
pub fn read_pack_header(path: &Path) -> Result<Vec<PackEntry>> {
    let f = File::open(path).at(path)?;
    let size = f.metadata().at(path)?.len();
    read_header_with(
        &path.display().to_string(),
        size,
        &ChunkCodec::plain(),
        |off, len| {
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, off).at(path)?;
            Ok(buf)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<PackEntry> {
        (0..3u8)
            .map(|i| PackEntry {
                hash: Hash([i + 1; 32]),
                offset: 8 + 10 * i as u64,
                clen: 10,
                ulen: 20 + i as u32,
            })
            .collect()
    }

    fn pack_bytes(entries: &[PackEntry]) -> Vec<u8> {
        let mut p = PACK_MAGIC.to_vec();
        p.extend_from_slice(&[7u8; 30]);
        p.extend_from_slice(&encode_header(&ChunkCodec::plain(), entries).unwrap());
        p
    }

    fn read(p: &[u8]) -> Result<Vec<PackEntry>> {
        read_header_with("test", p.len() as u64, &ChunkCodec::plain(), |off, len| {
            Ok(p[off as usize..off as usize + len].to_vec())
        })
    }

    /// A header encodes and decodes to the same entries, and its size matches `pack_size_for`.
    #[test]
    fn header_round_trip() {
        let e = entries();
        let p = pack_bytes(&e);
        assert_eq!(read(&p).unwrap(), e);
        assert_eq!(p.len() as u64, pack_size_for(3, 30));
        assert_eq!(read(&pack_bytes(&[])).unwrap(), Vec::<PackEntry>::new());
    }

    /// Bad magic, a short file, a wrong length and entries past the data are all refused.
    #[test]
    fn header_damage_is_refused() {
        let e = entries();
        let mut p = pack_bytes(&e);
        p[0] = b'X';
        assert!(read(&p).unwrap_err().to_string().contains("bad magic"));
        assert!(
            read(b"SSNPACK1")
                .unwrap_err()
                .to_string()
                .contains("too short")
        );
        let mut p = pack_bytes(&e);
        let n = p.len();
        p[n - 4] = 47;
        assert!(read(&p).unwrap_err().to_string().contains("header length"));
        let mut past = e.clone();
        past[2].clen = 1000;
        let msg = read(&pack_bytes(&past)).unwrap_err().to_string();
        assert!(msg.contains("past the data"), "{msg}");
    }
}
