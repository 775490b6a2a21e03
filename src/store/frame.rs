//! Frames of format-2 packs: small chunks are grouped into *sections* that are compressed as
//! one zstd frame (the redundancy between small files is what makes a code tree compress),
//! large chunks are frames of their own. Readers keep the last frames they opened in a
//! [`FrameCache`], so reading the chunks of a frame in turn decompresses it once.

use super::chunk::ChunkCodec;
use super::pack::{PackEntry, PackFormat};
use crate::error::Result;
use crate::hash::Hash;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Chunks smaller than this are grouped into sections; larger ones are frames of their own.
pub const GROUP_BELOW: usize = 64 << 10;
/// A section is closed (compressed as one frame) once it holds this many plain bytes.
pub const SECTION_TARGET: usize = 1 << 20;
/// Frames a reader keeps opened.
const CACHED_FRAMES: usize = 8;
/// Bits of entropy per byte above which a chunk counts as incompressible.
const INCOMPRESSIBLE_BITS: f64 = 7.5;

/// Does chunk `data` join a section? Only small chunks that look compressible: an
/// incompressible one (media, archives, fonts; byte entropy above 7.5 bits) gains nothing from
/// sharing a frame, and on its own a damaged byte in it damages nothing else and reading it
/// decompresses nothing else.
pub fn groupable(data: &[u8]) -> bool {
    data.len() < GROUP_BELOW && entropy_bits(data) <= INCOMPRESSIBLE_BITS
}

/// Bytes an entropy estimate looks at, at most: spread over the chunk in blocks of
/// [`SAMPLE_BLOCK`] (a chunk is small, or one kind of content throughout).
const SAMPLE_BYTES: usize = 2 << 10;
const SAMPLE_BLOCK: usize = 256;

/// The Shannon entropy of `data`'s bytes, in bits per byte: of all of them for a chunk up to
/// [`SAMPLE_BYTES`], else of evenly spaced blocks holding that many.
fn entropy_bits(data: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0usize;
    if data.len() <= SAMPLE_BYTES {
        count_bytes(data, &mut counts);
        n = data.len();
    } else {
        let blocks = SAMPLE_BYTES / SAMPLE_BLOCK;
        let step = (data.len() - SAMPLE_BLOCK) / (blocks - 1);
        for b in 0..blocks {
            let at = b * step;
            count_bytes(&data[at..at + SAMPLE_BLOCK], &mut counts);
            n += SAMPLE_BLOCK;
        }
    }
    let n = n as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn count_bytes(data: &[u8], counts: &mut [u32; 256]) {
    for b in data {
        counts[*b as usize] += 1;
    }
}

/// One chunk of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameChunk {
    /// The chunk id.
    pub hash: Hash,
    /// Where it starts in the frame's plain bytes.
    pub inner: u32,
    /// Its plain length.
    pub ulen: u32,
}

/// A frame ready for a pack: its stored bytes and the chunks it holds.
#[derive(Debug)]
pub struct Frame {
    /// Stored bytes (compressed, and sealed in an encrypted repository).
    pub stored: Vec<u8>,
    /// Its chunks, in order.
    pub chunks: Vec<FrameChunk>,
}

impl Frame {
    /// A frame holding one chunk.
    pub fn single(codec: &ChunkCodec, hash: Hash, data: &[u8], level: i32) -> Result<Frame> {
        Ok(Frame {
            stored: codec.encode_frame(data, level)?,
            chunks: vec![FrameChunk {
                hash,
                inner: 0,
                ulen: data.len() as u32,
            }],
        })
    }
}

/// Small chunks gathered for one frame, compressed at one zstd level.
#[derive(Debug)]
pub struct Section {
    level: i32,
    plain: Vec<u8>,
    chunks: Vec<FrameChunk>,
}

impl Section {
    /// An empty section compressed at `level` when sealed.
    pub fn new(level: i32) -> Section {
        Section {
            level,
            plain: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// Its zstd level.
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Appends a chunk; returns whether the section reached [`SECTION_TARGET`].
    pub fn push(&mut self, hash: Hash, data: &[u8]) -> bool {
        if self.plain.capacity() == 0 {
            self.plain = spare_buffer();
        }
        self.chunks.push(FrameChunk {
            hash,
            inner: self.plain.len() as u32,
            ulen: data.len() as u32,
        });
        self.plain.extend_from_slice(data);
        self.plain.len() >= SECTION_TARGET
    }

    /// Holds no chunk?
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Takes the gathered chunks, leaving the section empty.
    pub fn take(&mut self) -> Section {
        std::mem::replace(self, Section::new(self.level))
    }

    /// Compresses (and seals) the section as one frame.
    pub fn seal(self, codec: &ChunkCodec) -> Result<Frame> {
        let stored = codec.encode_frame(&self.plain, self.level);
        give_back(self.plain);
        Ok(Frame {
            stored: stored?,
            chunks: self.chunks,
        })
    }
}

/// Plain buffers of sealed sections, kept for the next sections: a section's megabyte is
/// reused instead of allocated (and, above the allocator's mmap threshold, page-faulted in)
/// again for every frame.
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Spare buffers kept at most (one per compressing thread is enough).
const SPARE_KEPT: usize = 4;

/// An empty buffer that holds a full section without growing.
fn spare_buffer() -> Vec<u8> {
    let kept = SPARE.lock().map(|mut v| v.pop()).unwrap_or(None);
    kept.unwrap_or_else(|| Vec::with_capacity(SECTION_TARGET + GROUP_BELOW))
}

/// Keeps a sealed section's buffer for a later section.
fn give_back(mut plain: Vec<u8>) {
    if plain.capacity() != SECTION_TARGET + GROUP_BELOW {
        return;
    }
    plain.clear();
    if let Ok(mut v) = SPARE.lock()
        && v.len() < SPARE_KEPT
    {
        v.push(plain);
    }
}

/// Where a frame is: pack name and offset.
type FrameKey = (String, u64, u32);

/// The last frames a reader opened, by pack and offset.
#[derive(Debug, Default)]
pub struct FrameCache {
    frames: VecDeque<(FrameKey, Arc<Vec<u8>>)>,
}

impl FrameCache {
    /// Chunk `e` of pack `pack` (of `format`): from a cached frame, or from the frame's stored
    /// bytes that `read` fetches, opened, cached and then cut. Checked against the chunk id.
    pub fn chunk(
        &mut self,
        codec: &ChunkCodec,
        pack: &str,
        format: PackFormat,
        e: &PackEntry,
        read: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let frame = self.frame(codec, pack, format, e, read)?;
        codec.chunk_of(&e.hash, &frame, e.inner, e.ulen)
    }

    /// The plain bytes of the frame holding chunk `e`.
    fn frame(
        &mut self,
        codec: &ChunkCodec,
        pack: &str,
        format: PackFormat,
        e: &PackEntry,
        read: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        let found = self
            .frames
            .iter()
            .find(|((p, o, c), _)| *o == e.offset && *c == e.clen && p == pack);
        if let Some((_, f)) = found {
            return Ok(f.clone());
        }
        let plain = Arc::new(codec.open_frame(format, &e.hash, &read()?, e.ulen)?);
        if format == PackFormat::V2 {
            if self.frames.len() == CACHED_FRAMES {
                self.frames.pop_front();
            }
            let key = (pack.to_string(), e.offset, e.clen);
            self.frames.push_back((key, plain.clone()));
        }
        Ok(plain)
    }
}

/// Checks every chunk `entries` lists against the pack's bytes (each frame opened once);
/// returns the chunks that are damaged (their frame does not open, or they do not match).
pub fn damaged_chunks(
    codec: &ChunkCodec,
    format: PackFormat,
    bytes: &[u8],
    entries: &[PackEntry],
) -> Vec<Hash> {
    let mut cache = FrameCache::default();
    let mut bad = Vec::new();
    for e in entries {
        let stored = || {
            let end = e.offset as usize + e.clen as usize;
            bytes
                .get(e.offset as usize..end)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    crate::error::Error::Corrupt(format!(
                        "chunk {} lies past the pack's end",
                        e.hash.short()
                    ))
                })
        };
        if cache.chunk(codec, "", format, e, stored).is_err() {
            bad.push(e.hash);
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn codecs() -> Vec<ChunkCodec> {
        let key = Arc::new(crate::crypto::MasterKey::generate().unwrap());
        vec![ChunkCodec::plain(), ChunkCodec::sealed(key)]
    }

    /// Text is grouped, noise and large chunks are not.
    #[test]
    fn what_is_grouped() {
        let text = b"<?php function f() { return 42; }\n".repeat(100);
        assert!(groupable(&text));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!groupable(&noise));
        assert!(!groupable(&b"a".repeat(GROUP_BELOW)));
        assert!(groupable(b""));
        // Chunks above the sampled size are judged by their sample: noise stays noise, text
        // stays text, and a text chunk with a noise tail is judged on both.
        let long_noise: Vec<u8> = noise.iter().cycle().take(60_000).copied().collect();
        assert!(!groupable(&long_noise));
        let long_text = b"<div class=\"item\">hello</div>\n".repeat(2500);
        assert!(groupable(&long_text[..60_000]));
        let mut mixed = long_text[..30_000].to_vec();
        mixed.extend_from_slice(&long_noise[..30_000]);
        let e = entropy_bits(&mixed);
        assert!(e > 4.0 && e < 7.5, "{e}");
    }

    /// A section's chunks come back out of its frame, each at its inner offset; a cut past
    /// the frame or a wrong id is refused as corrupt.
    #[test]
    fn section_round_trip_and_hostile_cuts() {
        for codec in codecs() {
            let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; 100 + i as usize]).collect();
            let mut s = Section::new(3);
            for c in &chunks {
                assert!(!s.push(codec.id(c), c));
            }
            let f = s.take().seal(&codec).unwrap();
            assert!(s.is_empty());
            assert_eq!(f.chunks.len(), 3);
            let e = |i: usize| PackEntry {
                hash: f.chunks[i].hash,
                offset: 8,
                clen: f.stored.len() as u32,
                ulen: f.chunks[i].ulen,
                inner: f.chunks[i].inner,
            };
            let mut cache = FrameCache::default();
            for (i, c) in chunks.iter().enumerate() {
                let got = cache.chunk(&codec, "p", PackFormat::V2, &e(i), || Ok(f.stored.clone()));
                assert_eq!(&got.unwrap(), c);
            }
            // Served from the cache: the read is not called again.
            let again = cache.chunk(&codec, "p", PackFormat::V2, &e(1), || unreachable!());
            assert_eq!(again.unwrap(), chunks[1]);
            let beyond = PackEntry { inner: 300, ..e(2) };
            let err = codec
                .decode_entry(PackFormat::V2, &beyond, &f.stored)
                .unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)) && err.to_string().contains("outside"));
            let wrong = PackEntry { inner: 1, ..e(0) };
            let err = codec
                .decode_entry(PackFormat::V2, &wrong, &f.stored)
                .unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "{err}");
            let mut broken = f.stored.clone();
            let n = broken.len();
            broken[n / 2] ^= 0x40;
            let pack: Vec<u8> = [&b"SSNPACK2"[..], &broken].concat();
            let all: Vec<PackEntry> = (0..3).map(e).collect();
            let bad = damaged_chunks(&codec, PackFormat::V2, &pack, &all);
            if codec.is_sealed() {
                assert_eq!(
                    bad.len(),
                    3,
                    "a sealed frame that does not open damages all"
                );
            } else {
                assert!(
                    !bad.is_empty(),
                    "a damaged frame damages the chunks it changes"
                );
            }
            let good: Vec<u8> = [&b"SSNPACK2"[..], &f.stored].concat();
            assert!(damaged_chunks(&codec, PackFormat::V2, &good, &all).is_empty());
        }
    }

    /// A format-1 frame is one chunk, sealed bound to its id; it does not open as format 2
    /// when sealed, and a format-2 frame whose zstd header lies about its size is refused.
    #[test]
    fn format_one_frames_and_bad_sizes() {
        for codec in codecs() {
            let data = b"hello hello hello".to_vec();
            let id = codec.id(&data);
            let v1 = codec.encode(&id, &data, 3).unwrap();
            let e = PackEntry {
                hash: id,
                offset: 8,
                clen: v1.len() as u32,
                ulen: data.len() as u32,
                inner: 0,
            };
            assert_eq!(codec.decode_entry(PackFormat::V1, &e, &v1).unwrap(), data);
            if codec.is_sealed() {
                assert!(codec.decode_entry(PackFormat::V2, &e, &v1).is_err());
            }
        }
        let codec = ChunkCodec::plain();
        let mut z = codec.encode_frame(b"abcdefgh", 3).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&z).unwrap(),
            Some(8)
        );
        z[4] ^= 0xff; // frame header descriptor
        let e = PackEntry {
            hash: codec.id(b"abcdefgh"),
            offset: 8,
            clen: z.len() as u32,
            ulen: 8,
            inner: 0,
        };
        assert!(matches!(
            codec.decode_entry(PackFormat::V2, &e, &z),
            Err(Error::Corrupt(_))
        ));
    }
}
