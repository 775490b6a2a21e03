//! One folder's files-cache entries in one blob, and the files cache in memory: a map from
//! folder path to its entries sorted by name, read in place from the folder's blob (no map of
//! every path, no allocation per file).
//!
//! Blob format, version 1: the byte 1, then for each file, sorted by name with no name twice:
//! varint name length, the name's bytes, varint device, varint inode, varint size, mtime and
//! ctime (ns, 8 bytes each, little-endian, signed), varint chunk count, 32 bytes per chunk id.
//! Varints are LEB128 (7 bits a byte, low bits first), as in postcard.

use super::{CacheEntry, FileKey};
use crate::hash::Hash;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The blob format's version byte.
const VERSION: u8 = 1;

/// One file of a folder's blob, as offsets into the blob.
#[derive(Debug, Clone, Copy)]
struct Row {
    name: u32,
    name_len: u32,
    chunks: u32,
    count: u32,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Row {
    /// The file's name in `blob`, the blob the row was read from.
    fn name<'b>(&self, blob: &'b [u8]) -> &'b [u8] {
        &blob[self.name as usize..(self.name + self.name_len) as usize]
    }

    /// The file's chunk ids' bytes in `blob`.
    fn chunks<'b>(&self, blob: &'b [u8]) -> &'b [u8] {
        &blob[self.chunks as usize..self.chunks as usize + self.count as usize * 32]
    }
}

/// The entries of one folder: its blob, and a row per file sorted by name.
#[derive(Debug, Default)]
struct Folder {
    blob: Vec<u8>,
    rows: Vec<Row>,
    /// The row after the one last found: a walk asks for a folder's files in name order, so
    /// the next file asked for is usually there. Only a hint (every use checks the name), so
    /// threads looking up files at once may share it with relaxed ordering.
    next: AtomicUsize,
}

impl Folder {
    fn name(&self, r: &Row) -> &[u8] {
        r.name(&self.blob)
    }

    fn chunks(&self, r: &Row) -> &[u8] {
        r.chunks(&self.blob)
    }

    fn find(&self, name: &[u8]) -> Option<&Row> {
        let next = self.next.load(Ordering::Relaxed);
        let i = match self.rows.get(next) {
            Some(r) if self.name(r) == name => next,
            _ => self
                .rows
                .binary_search_by(|r| self.name(r).cmp(name))
                .ok()?,
        };
        self.next.store(i + 1, Ordering::Relaxed);
        Some(&self.rows[i])
    }

    /// Adds `other`'s rows that this folder lacks (its blob appended to this one).
    fn absorb(&mut self, other: Folder) {
        let shift = self.blob.len() as u32;
        let extra: Vec<Row> = other
            .rows
            .iter()
            .filter(|r| {
                let n = other.name(r);
                self.rows.binary_search_by(|m| self.name(m).cmp(n)).is_err()
            })
            .map(|r| Row {
                name: r.name + shift,
                chunks: r.chunks + shift,
                ..*r
            })
            .collect();
        if extra.is_empty() {
            return;
        }
        self.blob.extend_from_slice(&other.blob);
        self.rows.extend(extra);
        let blob = &self.blob;
        self.rows
            .sort_unstable_by(|a, b| a.name(blob).cmp(b.name(blob)));
    }
}

/// What the files cache holds for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cached<'a> {
    /// What the entry vouches for.
    pub key: FileKey,
    chunks: &'a [u8],
}

impl Cached<'_> {
    /// The file's chunk list.
    pub fn chunks(&self) -> Vec<Hash> {
        self.chunks
            .chunks_exact(32)
            .map(|c| Hash(c.try_into().expect("32 bytes")))
            .collect()
    }

    /// Holds no chunk?
    pub fn has_no_chunks(&self) -> bool {
        self.chunks.is_empty()
    }

    /// As an owned entry.
    pub fn to_entry(&self) -> CacheEntry {
        CacheEntry::new(self.key, self.chunks())
    }
}

/// The files-cache entries of some trees, looked up by absolute path.
#[derive(Debug, Default)]
pub struct FilesCache {
    folders: HashMap<Vec<u8>, Folder, foldhash::fast::RandomState>,
}

impl FilesCache {
    /// The entry for the file at absolute path `path`.
    pub fn get(&self, path: &[u8]) -> Option<Cached<'_>> {
        let (dir, name) = split_path(path);
        let f = self.folders.get(dir)?;
        let r = f.find(name)?;
        Some(Cached {
            key: FileKey {
                dev: r.dev,
                ino: r.ino,
                size: r.size,
                mtime_ns: r.mtime_ns,
                ctime_ns: r.ctime_ns,
            },
            chunks: f.chunks(r),
        })
    }

    /// Files held.
    pub fn len(&self) -> usize {
        self.folders.values().map(|f| f.rows.len()).sum()
    }

    /// The absolute paths of the files held, sorted.
    #[cfg(test)]
    pub fn paths(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .folders
            .iter()
            .flat_map(|(dir, f)| {
                f.rows
                    .iter()
                    .map(move |r| [&dir[..], b"/", f.name(r)].concat())
            })
            .collect();
        out.sort();
        out
    }

    /// Holds no file?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `other`'s entries (for a path held by both, this one's stays).
    pub fn extend(&mut self, other: FilesCache) {
        for (dir, f) in other.folders {
            self.add_folder(dir, f);
        }
    }

    fn add_folder(&mut self, dir: Vec<u8>, f: Folder) {
        match self.folders.entry(dir) {
            std::collections::hash_map::Entry::Occupied(mut mine) => mine.get_mut().absorb(f),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(f);
            }
        }
    }

    /// Adds folder `dir`'s blob, keeping only the file named `only` when given. A blob that
    /// does not decode adds nothing (the cache only saves reads: those files are read again
    /// and the next commit writes the folder's blob anew).
    pub(super) fn add_blob(&mut self, dir: Vec<u8>, blob: Vec<u8>, only: Option<&[u8]>) {
        let Some(mut rows) = decode_rows(&blob) else {
            return;
        };
        if let Some(n) = only {
            rows.retain(|r| r.name(&blob) == n);
        }
        if !rows.is_empty() {
            self.add_folder(
                dir,
                Folder {
                    blob,
                    rows,
                    next: Default::default(),
                },
            );
        }
    }

    /// Drops every entry whose chunk list `keep` refuses.
    pub(super) fn retain_chunks(&mut self, keep: impl Fn(&[u8]) -> bool) {
        for f in self.folders.values_mut() {
            let blob = &f.blob;
            f.rows.retain(|r| keep(r.chunks(blob)));
        }
        self.folders.retain(|_, f| !f.rows.is_empty());
    }
}

/// An absolute path split at its last `/`: (folder, name); the root folder is empty.
pub(super) fn split_path(p: &[u8]) -> (&[u8], &[u8]) {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (&[], p),
    }
}

/// One file for [`encode`]: its name, its entry's fields and its chunk ids.
#[derive(Debug, Clone, Copy)]
pub(super) struct Put<'a> {
    pub(super) name: &'a [u8],
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) chunks: Chunks<'a>,
}

/// A file's chunk ids: as a blob holds them (32 bytes each), or as hashes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Chunks<'a> {
    Bytes(&'a [u8]),
    Ids(&'a [Hash]),
}

impl Chunks<'_> {
    fn count(&self) -> usize {
        match self {
            Chunks::Bytes(b) => b.len() / 32,
            Chunks::Ids(h) => h.len(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Chunks::Bytes(b) => out.extend_from_slice(b),
            Chunks::Ids(h) => h.iter().for_each(|h| out.extend_from_slice(&h.0)),
        }
    }

    /// Does `live` accept every chunk?
    pub(super) fn all(
        &self,
        mut live: impl FnMut(&Hash) -> crate::error::Result<bool>,
    ) -> crate::error::Result<bool> {
        match self {
            Chunks::Bytes(b) => {
                for c in b.chunks_exact(32) {
                    if !live(&Hash(c.try_into().expect("32 bytes")))? {
                        return Ok(false);
                    }
                }
            }
            Chunks::Ids(h) => {
                for c in h.iter() {
                    if !live(c)? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }
}

/// The blob of `files`, which must be sorted by name with no name twice.
pub(super) fn encode(files: &[Put<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        1 + files
            .iter()
            .map(|f| 40 + f.name.len() + f.chunks.count() * 32)
            .sum::<usize>(),
    );
    out.push(VERSION);
    for f in files {
        varint(&mut out, f.name.len() as u64);
        out.extend_from_slice(f.name);
        varint(&mut out, f.dev);
        varint(&mut out, f.ino);
        varint(&mut out, f.size);
        out.extend_from_slice(&f.mtime_ns.to_le_bytes());
        out.extend_from_slice(&f.ctime_ns.to_le_bytes());
        varint(&mut out, f.chunks.count() as u64);
        f.chunks.write(&mut out);
    }
    out
}

/// The files of a blob as [`Put`]s borrowing from it; `None` when it does not decode.
pub(super) fn decode(blob: &[u8]) -> Option<Vec<Put<'_>>> {
    Some(
        decode_rows(blob)?
            .iter()
            .map(|r| Put {
                name: r.name(blob),
                dev: r.dev,
                ino: r.ino,
                size: r.size,
                mtime_ns: r.mtime_ns,
                ctime_ns: r.ctime_ns,
                chunks: Chunks::Bytes(r.chunks(blob)),
            })
            .collect(),
    )
}

/// The rows of a blob; `None` when it is not a version-1 blob whose every row lies inside it,
/// sorted by name with no name twice.
fn decode_rows(blob: &[u8]) -> Option<Vec<Row>> {
    if blob.first() != Some(&VERSION) || blob.len() > u32::MAX as usize {
        return None;
    }
    let mut at = 1usize;
    let mut rows = Vec::new();
    let mut last: Option<(usize, usize)> = None;
    while at < blob.len() {
        let name_len = read_varint(blob, &mut at)? as usize;
        let name = at;
        at = at.checked_add(name_len).filter(|&e| e <= blob.len())?;
        if let Some((p, l)) = last
            && blob[p..p + l] >= blob[name..name + name_len]
        {
            return None;
        }
        last = Some((name, name_len));
        let dev = read_varint(blob, &mut at)?;
        let ino = read_varint(blob, &mut at)?;
        let size = read_varint(blob, &mut at)?;
        let mtime_ns = read_i64(blob, &mut at)?;
        let ctime_ns = read_i64(blob, &mut at)?;
        let count = read_varint(blob, &mut at)?;
        let chunks = at;
        let bytes = usize::try_from(count).ok()?.checked_mul(32)?;
        at = at.checked_add(bytes).filter(|&e| e <= blob.len())?;
        rows.push(Row {
            name: name as u32,
            name_len: name_len as u32,
            chunks: chunks as u32,
            count: count as u32,
            dev,
            ino,
            size,
            mtime_ns,
            ctime_ns,
        });
    }
    Some(rows)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint at `at` (moved past it); `None` past the end or beyond 64 bits.
#[inline]
fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*at)?;
        *at += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// An 8-byte little-endian signed integer at `at` (moved past it).
#[inline]
fn read_i64(b: &[u8], at: &mut usize) -> Option<i64> {
    let bytes = b.get(*at..*at + 8)?;
    *at += 8;
    Some(i64::from_le_bytes(bytes.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put<'a>(name: &'a [u8], n: i64, chunks: &'a [u8]) -> Put<'a> {
        Put {
            chunks: Chunks::Bytes(chunks),
            name,
            dev: 1 << 40,
            ino: n as u64,
            size: u64::MAX - n as u64,
            mtime_ns: -n,
            ctime_ns: i64::MAX - n,
        }
    }

    /// A blob reads back field for field, and any cut, appended byte, flipped version or
    /// unsorted pair of names makes it not decode, never read past its end.
    #[test]
    fn blobs_round_trip_and_refuse_damage() {
        let c = [7u8; 64];
        let files = [
            put(b"a.php", 1, &c),
            put(b"b", 2, &c[..32]),
            put(b"\xff\x00", 3, &[]),
        ];
        let blob = encode(&files);
        let back = decode(&blob).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in files.iter().zip(&back) {
            let bytes = |c: &Chunks<'_>| {
                let mut v = Vec::new();
                c.write(&mut v);
                v
            };
            assert_eq!(
                (a.name, a.dev, a.ino, a.size, a.mtime_ns, a.ctime_ns),
                (b.name, b.dev, b.ino, b.size, b.mtime_ns, b.ctime_ns)
            );
            assert_eq!(bytes(&a.chunks), bytes(&b.chunks));
        }
        let ids = [Hash([5; 32]), Hash([6; 32])];
        let as_ids = encode(&[Put {
            chunks: Chunks::Ids(&ids),
            ..put(b"x", 1, &[])
        }]);
        let flat: Vec<u8> = [[5u8; 32], [6; 32]].concat();
        assert_eq!(as_ids, encode(&[put(b"x", 1, &flat)]));
        for cut in 0..blob.len() - 1 {
            let d = decode(&blob[..cut]);
            // Only a cut right after a whole row still decodes, to fewer rows.
            assert!(d.is_none_or(|rows| rows.len() < 3), "cut {cut}");
        }
        let mut more = blob.clone();
        more.push(0x80);
        assert!(decode(&more).is_none());
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert!(decode(&v2).is_none());
        let unsorted = encode(&[put(b"b", 1, &[]), put(b"a", 2, &[])]);
        assert!(decode(&unsorted).is_none());
        let twice = encode(&[put(b"a", 1, &[]), put(b"a", 2, &[])]);
        assert!(decode(&twice).is_none());
        let mut huge_count = vec![1u8, 1, b'a', 0, 0, 0];
        huge_count.extend_from_slice(&[0; 16]);
        huge_count.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode(&huge_count).is_none());
    }

    /// Lookups by absolute path find a folder's files and nothing else; merging two caches
    /// keeps both folders' files and the first's entry for a file both hold.
    #[test]
    fn lookups_and_merges() {
        let c = [9u8; 32];
        let mut a = FilesCache::default();
        a.add_blob(
            b"/srv/p".to_vec(),
            encode(&[put(b"a", 1, &c), put(b"c", 3, &[])]),
            None,
        );
        let mut b = FilesCache::default();
        b.add_blob(
            b"/srv/p".to_vec(),
            encode(&[put(b"a", 9, &[]), put(b"b", 2, &[])]),
            None,
        );
        b.add_blob(
            b"".to_vec(),
            encode(&[put(b"top", 4, &[]), put(b"x", 5, &[])]),
            Some(b"top"),
        );
        a.extend(b);
        assert_eq!(a.len(), 4);
        assert_eq!(a.get(b"/srv/p/a").unwrap().key.ino, 1);
        assert_eq!(a.get(b"/srv/p/a").unwrap().chunks(), vec![Hash(c)]);
        assert_eq!(a.get(b"/srv/p/b").unwrap().key.ino, 2);
        assert_eq!(a.get(b"/srv/p/c").unwrap().key.ino, 3);
        assert_eq!(a.get(b"/top").unwrap().key.ino, 4);
        assert!(a.get(b"/x").is_none());
        assert!(a.get(b"/srv/p").is_none());
        assert!(a.get(b"/srv/p/a/b").is_none());
        a.retain_chunks(|ch| ch.is_empty());
        assert!(a.get(b"/srv/p/a").is_none());
        assert_eq!(a.len(), 3);
        let mut bad = FilesCache::default();
        bad.add_blob(b"/q".to_vec(), vec![1, 5, b'a'], None);
        assert!(bad.is_empty());
    }
}
