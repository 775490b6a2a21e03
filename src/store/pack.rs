//! The pack format, and nothing else: a pack is a magic, then *frames* (each one zstd frame,
//! sealed in an encrypted repository), then a header listing each chunk's hash and place, then
//! the header's length in the last 4 bytes, so packs describe themselves and the index can be
//! rebuilt from them. Format 1 (`SSNPACK1`/`SSNPACKS`) holds one chunk per frame; format 2
//! (`SSNPACK2`/`SSNPACS2`, every new pack) groups small chunks into one frame, and each entry
//! also says where its chunk starts inside the frame's plain bytes. This module holds the
//! format's types (shared with the catalogue, which imports only this part of the store) and
//! the header's encoding; it does no I/O of its own.

use super::chunk::ChunkCodec;
use crate::crypto::SEAL_OVERHEAD;
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use super::format::{
    HEADER_ENTRY, HEADER_ENTRY_V1, MAX_FRAME, PACK_MAGIC, PACK_MAGIC_SEALED, PACK_MAGIC_SEALED_V2,
    PACK_MAGIC_V2, PACK_OVERHEAD, PACK_TARGET, PackEntry, PackFormat,
};

/// A pack's header: its format and entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackHeader {
    /// The pack's format.
    pub format: PackFormat,
    /// Its chunks, in order.
    pub entries: Vec<PackEntry>,
}

/// A finished, durable pack.
#[derive(Debug, Clone)]
pub struct PackInfo {
    /// The pack's name: the hex SHA-256 of its bytes.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its format.
    pub format: PackFormat,
    /// Its chunks, in order.
    pub entries: Vec<PackEntry>,
}

/// Where a chunk is stored (a row of the catalogue's index).
#[derive(Debug, Clone)]
pub struct ChunkLocation {
    /// The pack's name.
    pub pack: String,
    /// The pack's format.
    pub format: PackFormat,
    /// Offset of the stored bytes of the chunk's frame in the pack.
    pub offset: u64,
    /// Stored length of the frame.
    pub clen: u32,
    /// Plain length of the chunk.
    pub ulen: u32,
    /// Where the chunk starts in its frame's plain bytes.
    pub inner: u32,
}

impl ChunkLocation {
    /// The chunk's place as a header entry.
    pub fn entry(&self, hash: Hash) -> PackEntry {
        PackEntry {
            hash,
            offset: self.offset,
            clen: self.clen,
            ulen: self.ulen,
            inner: self.inner,
        }
    }
}

/// The bytes a format-2 pack needs to hold `chunks` chunks in frames of `bytes` stored bytes.
pub fn pack_size_for(chunks: u64, bytes: u64) -> u64 {
    bytes + chunks * HEADER_ENTRY as u64 + PACK_OVERHEAD
}

/// Encodes a pack's trailing header in `format`: one entry per chunk (sealed as one message
/// by an encrypting codec), then the stored header's length (u32 LE).
pub fn encode_header(
    codec: &ChunkCodec,
    format: PackFormat,
    entries: &[PackEntry],
) -> Result<Vec<u8>> {
    let mut plain = Vec::with_capacity(entries.len() * format.entry_len());
    for e in entries {
        plain.extend_from_slice(&e.hash.0);
        plain.extend_from_slice(&e.offset.to_le_bytes());
        plain.extend_from_slice(&e.clen.to_le_bytes());
        plain.extend_from_slice(&e.ulen.to_le_bytes());
        if format == PackFormat::V2 {
            plain.extend_from_slice(&e.inner.to_le_bytes());
        }
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

/// The format of a pack starting with `magic`, checked against the codec's sealing.
fn format_of(what: &str, magic: &[u8], codec: &ChunkCodec) -> Result<PackFormat> {
    match PackFormat::of_magic(magic) {
        Some((f, sealed)) if sealed == codec.is_sealed() => Ok(f),
        Some(_) => Err(bad(
            what,
            "sealed and unsealed packs mixed in one repository",
        )),
        None => Err(bad(what, "bad magic")),
    }
}

/// Reads and checks a pack's header through `read(offset, len)`, for a pack of `size` bytes
/// named `what` in messages, opening it with `codec`. Three reads: the magic, the header
/// length, the header.
pub fn read_header_with(
    what: &str,
    size: u64,
    codec: &ChunkCodec,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>>,
) -> Result<PackHeader> {
    if size < PACK_OVERHEAD {
        return Err(bad(what, "too short"));
    }
    let format = format_of(what, &read(0, PACK_MAGIC.len())?, codec)?;
    let l = read(size - 4, 4)?;
    let hlen = u32::from_le_bytes(l[..4].try_into().expect("4")) as u64;
    let extra = if codec.is_sealed() {
        SEAL_OVERHEAD as u64
    } else {
        0
    };
    if hlen < extra
        || !(hlen - extra).is_multiple_of(format.entry_len() as u64)
        || hlen + PACK_OVERHEAD > size
    {
        return Err(bad(what, "bad header length"));
    }
    let header = read(size - 4 - hlen, hlen as usize)?;
    let plain = codec.open_header(what, &header)?;
    let entries = decode_entries(what, format, &plain, size - 4 - hlen)?;
    Ok(PackHeader { format, entries })
}

/// Decodes header entries of `format` (without the trailing length); each frame must lie
/// between the magic and `data_end`, each chunk within the most a frame may hold.
pub fn decode_entries(
    what: &str,
    format: PackFormat,
    header: &[u8],
    data_end: u64,
) -> Result<Vec<PackEntry>> {
    let n = format.entry_len();
    if !header.len().is_multiple_of(n) {
        return Err(bad(what, "bad header length"));
    }
    let mut out = Vec::with_capacity(header.len() / n);
    for e in header.chunks_exact(n) {
        let u32_at = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4"));
        let entry = PackEntry {
            hash: Hash(e[..32].try_into().expect("32")),
            offset: u64::from_le_bytes(e[32..40].try_into().expect("8")),
            clen: u32_at(40),
            ulen: u32_at(44),
            inner: if format == PackFormat::V2 {
                u32_at(48)
            } else {
                0
            },
        };
        let end = entry.offset.checked_add(entry.clen as u64);
        if entry.offset < PACK_MAGIC.len() as u64 || end.is_none_or(|end| end > data_end) {
            return Err(bad(what, "header points past the data"));
        }
        if entry.inner as u64 + entry.ulen as u64 > MAX_FRAME {
            return Err(bad(what, "header places a chunk beyond the largest frame"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Reads a pack file's own header entries by path (tests and tools looking at a local,
/// unencrypted repository).
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
    .map(|h| h.entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three chunks: in format 2 the first two share a frame.
    fn entries(format: PackFormat) -> Vec<PackEntry> {
        (0..3u8)
            .map(|i| {
                let grouped = format == PackFormat::V2 && i < 2;
                PackEntry {
                    hash: Hash([i + 1; 32]),
                    offset: if grouped { 8 } else { 8 + 10 * i as u64 },
                    clen: 10,
                    ulen: 20 + i as u32,
                    inner: if grouped { 20 * i as u32 } else { 0 },
                }
            })
            .collect()
    }

    fn pack_bytes(format: PackFormat, entries: &[PackEntry]) -> Vec<u8> {
        let mut p = format.magic(false).to_vec();
        p.extend_from_slice(&[7u8; 30]);
        p.extend_from_slice(&encode_header(&ChunkCodec::plain(), format, entries).unwrap());
        p
    }

    fn read(p: &[u8]) -> Result<PackHeader> {
        read_header_with("test", p.len() as u64, &ChunkCodec::plain(), |off, len| {
            Ok(p[off as usize..off as usize + len].to_vec())
        })
    }

    /// A header of either format encodes and decodes to the same entries; the format comes
    /// from the magic, and a format-2 pack's size matches `pack_size_for`.
    #[test]
    fn header_round_trip_both_formats() {
        for f in [PackFormat::V1, PackFormat::V2] {
            let e = entries(f);
            let p = pack_bytes(f, &e);
            let h = read(&p).unwrap();
            assert_eq!((h.format, h.entries), (f, e));
            assert_eq!(read(&pack_bytes(f, &[])).unwrap().entries, vec![]);
        }
        let p = pack_bytes(PackFormat::V2, &entries(PackFormat::V2));
        assert_eq!(p.len() as u64, pack_size_for(3, 30));
        assert_eq!(
            pack_bytes(PackFormat::V1, &entries(PackFormat::V1)).len(),
            8 + 30 + 3 * HEADER_ENTRY_V1 + 4
        );
        // A format-1 entry is the first 48 bytes of a format-2 one.
        let v1 = encode_header(
            &ChunkCodec::plain(),
            PackFormat::V1,
            &entries(PackFormat::V1),
        );
        assert_eq!(v1.unwrap().len(), 3 * 48 + 4);
    }

    /// Bad magic, a short file, a wrong length, entries past the data or before it, and a
    /// chunk placed beyond the largest frame are all refused as corrupt, in both formats.
    #[test]
    fn header_damage_is_refused() {
        for f in [PackFormat::V1, PackFormat::V2] {
            let e = entries(f);
            let mut p = pack_bytes(f, &e);
            p[0] = b'X';
            assert!(read(&p).unwrap_err().to_string().contains("bad magic"));
            assert!(
                read(f.magic(false))
                    .unwrap_err()
                    .to_string()
                    .contains("too short")
            );
            let mut p = pack_bytes(f, &e);
            let n = p.len();
            p[n - 4] = 47;
            assert!(read(&p).unwrap_err().to_string().contains("header length"));
            for (i, broken) in [
                PackEntry { clen: 1000, ..e[2] },
                PackEntry {
                    offset: u64::MAX - 2,
                    ..e[2]
                },
                PackEntry { offset: 3, ..e[2] },
            ]
            .into_iter()
            .enumerate()
            {
                let mut past = e.clone();
                past[2] = broken;
                let err = read(&pack_bytes(f, &past)).unwrap_err();
                assert!(matches!(err, Error::Corrupt(_)), "{i}: {err}");
                assert!(err.to_string().contains("past the data"), "{i}: {err}");
            }
        }
        let mut far = entries(PackFormat::V2);
        far[1].inner = u32::MAX;
        far[1].ulen = u32::MAX;
        let err = read(&pack_bytes(PackFormat::V2, &far)).unwrap_err();
        assert!(
            err.to_string().contains("beyond the largest frame"),
            "{err}"
        );
        // A format-1 header read as format 2 (wrong magic for its entries) is refused.
        let mut p = pack_bytes(PackFormat::V1, &entries(PackFormat::V1));
        p[..8].copy_from_slice(PACK_MAGIC_V2);
        assert!(read(&p).is_err());
    }

    /// The four magics name two formats, sealed or not; nothing else is a pack.
    #[test]
    fn magics() {
        for f in [PackFormat::V1, PackFormat::V2] {
            for s in [false, true] {
                assert_eq!(PackFormat::of_magic(f.magic(s)), Some((f, s)));
            }
            assert_eq!(PackFormat::from_number(f.number()).unwrap(), f);
        }
        assert_eq!(PackFormat::of_magic(b"SSNPACK3"), None);
        assert!(PackFormat::from_number(3).is_err());
    }
}
