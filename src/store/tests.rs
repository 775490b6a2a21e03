//! Unit tests of the local backend and the pack writer.

use super::*;
use std::io::Write;

fn backend() -> (tempfile::TempDir, LocalBackend) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("tmp")).unwrap();
    let b = LocalBackend::new(d.path());
    (d, b)
}

/// A plain sink over a fresh local backend, indexing into an in-memory index (shared with the
/// returned handle).
fn mem_sink() -> (tempfile::TempDir, MemIndex, ChunkSink) {
    let (d, b) = backend();
    let index = MemIndex::default();
    let sink = ChunkSink::start_with(
        std::sync::Arc::new(b),
        std::sync::Arc::new(index.clone()),
        ChunkCodec::plain(),
    )
    .unwrap();
    (d, index, sink)
}

fn name(c: char) -> ObjectName {
    ObjectName::pack(&c.to_string().repeat(64))
}

/// An upload is invisible until committed, then visible whole under its name; a discarded one
/// leaves nothing, not even its temporary file.
#[test]
fn put_is_atomic() {
    let (_d, b) = backend();
    let n = name('a');
    let mut up = b.create(ObjectKind::Pack).unwrap();
    up.write_all(b"first half ").unwrap();
    up.flush_all().unwrap();
    assert_eq!(b.size(&n).unwrap(), None);
    assert!(b.list(ObjectKind::Pack).unwrap().is_empty());
    assert_eq!(b.incomplete().unwrap().len(), 1);
    up.write_all(b"second half").unwrap();
    up.flush_all().unwrap();
    up.commit(&n).unwrap();
    assert_eq!(b.read(&n).unwrap(), b"first half second half");
    assert!(b.incomplete().unwrap().is_empty());

    let mut up = b.create(ObjectKind::Pack).unwrap();
    up.write_all(b"never").unwrap();
    up.discard();
    assert!(b.incomplete().unwrap().is_empty());
    assert_eq!(b.list(ObjectKind::Pack).unwrap().len(), 1);
}

/// Ranges read exactly the asked bytes; a range past the end is an error.
#[test]
fn read_range() {
    let (_d, b) = backend();
    let n = name('b');
    b.put(&n, b"0123456789").unwrap();
    assert_eq!(b.read_range(&n, 0, 3).unwrap(), b"012");
    assert_eq!(b.read_range(&n, 7, 3).unwrap(), b"789");
    assert_eq!(b.read_range(&n, 4, 0).unwrap(), b"");
    assert!(b.read_range(&n, 8, 3).is_err());
    assert!(b.read_range(&name('c'), 0, 1).is_err());
    assert_eq!(b.size(&n).unwrap(), Some(10));
}

/// Listing returns content-named objects with sizes, sorted, and ignores anything else.
#[test]
fn list() {
    let (d, b) = backend();
    b.put(&name('d'), b"dd").unwrap();
    b.put(&name('1'), b"1").unwrap();
    std::fs::write(d.path().join("dd").join("not-a-pack"), b"x").unwrap();
    std::fs::write(d.path().join("tmp").join("pack-half"), b"half").unwrap();
    let l = b.list(ObjectKind::Pack).unwrap();
    assert_eq!(
        l,
        vec![
            ObjectInfo {
                name: name('1'),
                size: 1
            },
            ObjectInfo {
                name: name('d'),
                size: 2
            }
        ]
    );
    let inc = b.incomplete().unwrap();
    assert_eq!(inc.len(), 1);
    assert_eq!((inc[0].id.as_str(), inc[0].size), ("pack-half", 4));
    assert!(b.remove_incomplete("pack-half").unwrap());
    assert!(!b.remove_incomplete("pack-half").unwrap());
    assert!(b.remove_incomplete("../x").is_err());
}

/// Removing an object makes it vanish (also from open-file reuse); removing a missing one is
/// not an error.
#[test]
fn remove_missing_object() {
    let (_d, b) = backend();
    let n = name('e');
    b.put(&n, b"abc").unwrap();
    assert_eq!(b.read_range(&n, 0, 1).unwrap(), b"a");
    assert!(b.remove(&n).unwrap());
    assert_eq!(b.size(&n).unwrap(), None);
    assert!(b.read_range(&n, 0, 1).is_err());
    assert!(!b.remove(&n).unwrap());
}

/// A pack written by the roller reads back through its own header and the backend, plain and
/// sealed; small chunks share a frame, a large one has its own; a sealed pack does not read
/// with the plain codec nor with another key.
#[test]
fn written_pack_reads_back() {
    let key = std::sync::Arc::new(crate::crypto::MasterKey::generate().unwrap());
    for codec in [ChunkCodec::plain(), ChunkCodec::sealed(key)] {
        written_pack_reads_back_with(codec);
    }
}

fn written_pack_reads_back_with(codec: ChunkCodec) {
    let (_d, b) = backend();
    let b: std::sync::Arc<dyn Backend> = std::sync::Arc::new(b);
    let mut roller = PackRoller::new(b.clone(), codec.clone());
    let mut chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 1000 + i as usize]).collect();
    chunks.push((0..200_000u32).map(|i| (i % 251) as u8).collect());
    for c in &chunks {
        assert!(roller.add_chunk(codec.id(c), c).unwrap().is_none());
    }
    let sealed = roller.finish().unwrap();
    assert_eq!(sealed.len(), 1);
    let info = sealed.into_iter().next().unwrap().commit().unwrap();
    let n = ObjectName::pack(&info.name);
    let bytes = b.read(&n).unwrap();
    assert_eq!(bytes.len() as u64, info.size);
    assert_eq!(&bytes[..8], codec.pack_magic());
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        info.name
    );
    let read =
        |c: &ChunkCodec| pack::read_header_with("t", info.size, c, |o, l| b.read_range(&n, o, l));
    let header = read(&codec).unwrap();
    assert_eq!(header.format, PackFormat::V2);
    assert_eq!(header.entries, info.entries);
    let frames: std::collections::HashSet<u64> = header.entries.iter().map(|e| e.offset).collect();
    assert_eq!(
        frames.len(),
        2,
        "five small chunks in one frame, the large one alone"
    );
    let mut cache = FrameCache::default();
    for e in &header.entries {
        let c = chunks.iter().find(|c| codec.id(c) == e.hash).unwrap();
        let z = || b.read_range(&n, e.offset, e.clen as usize);
        assert_eq!(
            &cache
                .chunk(&codec, &info.name, header.format, e, z)
                .unwrap(),
            c
        );
    }
    if codec.is_sealed() {
        assert!(read(&ChunkCodec::plain()).is_err());
        let other = ChunkCodec::sealed(std::sync::Arc::new(
            crate::crypto::MasterKey::generate().unwrap(),
        ));
        assert!(read(&other).is_err());
    }
    assert!(
        PackRoller::new(b.clone(), codec)
            .finish()
            .unwrap()
            .is_empty()
    );
}

/// An in-memory chunk index for sink tests: where each chunk lives, and how many times a pack
/// brought each chunk.
#[derive(Debug, Default, Clone)]
struct MemIndex(std::sync::Arc<std::sync::Mutex<MemState>>);

#[derive(Debug, Default)]
struct MemState {
    at: std::collections::HashMap<crate::hash::Hash, ChunkLocation>,
    stored: std::collections::HashMap<crate::hash::Hash, u32>,
    /// Lookups fail.
    broken: bool,
}

impl ChunkIndex for MemIndex {
    fn chunk_exists(&self, h: &crate::hash::Hash) -> crate::error::Result<bool> {
        let st = self.0.lock().unwrap();
        if st.broken {
            return Err(crate::error::Error::Invalid("index lookup failed".into()));
        }
        Ok(st.at.contains_key(h))
    }
    fn chunk_location(&self, h: &crate::hash::Hash) -> crate::error::Result<Option<ChunkLocation>> {
        Ok(self.0.lock().unwrap().at.get(h).cloned())
    }
    fn insert_pack(&self, info: &PackInfo) -> crate::error::Result<()> {
        let mut st = self.0.lock().unwrap();
        for e in &info.entries {
            *st.stored.entry(e.hash).or_default() += 1;
            let loc = ChunkLocation {
                pack: info.name.clone(),
                format: info.format,
                offset: e.offset,
                clen: e.clen,
                ulen: e.ulen,
                inner: e.inner,
            };
            st.at.entry(e.hash).or_insert(loc);
        }
        Ok(())
    }
}

impl IndexOpener for MemIndex {
    fn open_index(&self) -> crate::error::Result<Box<dyn ChunkIndex + Send>> {
        Ok(Box::new(self.clone()))
    }
}

/// `n` bytes no compressor shrinks (xorshift from `seed`): each is a frame of its own.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A chunk taken again after its pack was indexed, and a small one repeated while the packs
/// fill, are each stored once and read back; the sink forgets every chunk once its pack is
/// indexed (its memory does not grow with the capture).
#[test]
fn sink_stores_a_chunk_repeated_across_packs_once() {
    let (d, b) = backend();
    let b: std::sync::Arc<dyn Backend> = std::sync::Arc::new(b);
    let index = MemIndex::default();
    let sink = ChunkSink::start_with(
        b.clone(),
        std::sync::Arc::new(index.clone()),
        ChunkCodec::plain(),
    )
    .unwrap();
    let big = noise(1, 1 << 20);
    let small = b"INSERT INTO t VALUES (1,'a row that repeats');\n".repeat(40);
    let (hb, hs) = (sink.put(&big).unwrap(), sink.put(&small).unwrap());
    let mut seed = 2;
    // Fill packs until the first one (holding both) is indexed: the writer's queues are
    // bounded, so this ends after a few packs.
    while !index.chunk_exists(&hb).unwrap() {
        assert!(seed < 1000, "the first pack was never indexed");
        sink.put(&noise(seed, 1 << 20)).unwrap();
        assert_eq!(sink.put(&small).unwrap(), hs);
        seed += 1;
    }
    assert_eq!(sink.put(&big).unwrap(), hb);
    assert_eq!(sink.put(&small).unwrap(), hs);
    let packs = sink.finish().unwrap();
    assert!(packs.len() >= 2, "the chunks crossed a pack boundary");
    assert_eq!(
        sink.pending_chunks(),
        0,
        "every chunk is forgotten once indexed"
    );
    let st = index.0.lock().unwrap();
    assert_eq!(st.stored.get(&hb), Some(&1));
    assert_eq!(st.stored.get(&hs), Some(&1));
    assert!(st.stored.values().all(|n| *n == 1), "no chunk stored twice");
    drop(st);
    let mut r = ChunkReader::new(d.path(), &index);
    assert_eq!(r.read(&hb).unwrap(), big);
    assert_eq!(r.read(&hs).unwrap(), small);
}

/// A second sink given chunks the index holds stores none and holds none of them.
#[test]
fn sink_holds_no_chunk_the_index_has() {
    let (_d, b) = backend();
    let b: std::sync::Arc<dyn Backend> = std::sync::Arc::new(b);
    let index = std::sync::Arc::new(MemIndex::default());
    let chunks: Vec<Vec<u8>> = (0..50u64).map(|i| noise(i, 3000)).collect();
    let first = ChunkSink::start_with(b.clone(), index.clone(), ChunkCodec::plain()).unwrap();
    for c in &chunks {
        first.put(c).unwrap();
    }
    first.finish().unwrap();
    let second = ChunkSink::start_with(b, index, ChunkCodec::plain()).unwrap();
    for c in &chunks {
        second.put(c).unwrap();
    }
    assert_eq!(second.pending_chunks(), 0);
    assert_eq!(
        second
            .stats
            .chunks_added
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(second.finish().unwrap().is_empty());
}

/// A chunk the sink took but could not store (its index lookup failed) stops the sink: the
/// same chunk given again is not skipped as taken, and `finish` fails with the reason, so no
/// snapshot can name a chunk that is in no pack.
#[test]
fn sink_stops_when_a_taken_chunk_is_lost() {
    let (_d, index, sink) = mem_sink();
    let a = noise(7, 5000);
    index.0.lock().unwrap().broken = true;
    assert!(sink.put(&a).is_err());
    index.0.lock().unwrap().broken = false;
    let again = sink.put(&a).map(|_| ());
    let finished = sink.finish().map(|_| ());
    let why = again.and(finished).unwrap_err().to_string();
    assert!(why.contains("index lookup failed"), "{why}");
    assert_eq!(index.0.lock().unwrap().stored.get(&codec_id(&a)), None);
}

fn codec_id(data: &[u8]) -> crate::hash::Hash {
    ChunkCodec::plain().id(data)
}

/// A group of `n` objects of `kind` named `<c><i>...`, each holding its name.
fn group(kind: ObjectKind, c: char, n: usize) -> Vec<(ObjectName, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let s = format!("{c}{i:x}").repeat(kind.name_len())[..kind.name_len()].to_string();
            (ObjectName::new(kind, &s), s.into_bytes())
        })
        .collect()
}

/// A batch is written group by group: when a group is done, every object of it is there whole
/// and none of a later group shows yet (they wait as temporary files); at the end no
/// temporary file is left.
#[test]
fn put_groups_shows_each_group_after_the_one_before() {
    let (_d, b) = backend();
    let lists = group(ObjectKind::BlobList, 'a', 9);
    let manifests = group(ObjectKind::Snapshot, 'b', 3);
    let seen = std::sync::Mutex::new(Vec::new());
    b.put_groups(&[&lists, &[], &manifests], &|i| {
        let l = b.list(ObjectKind::BlobList).unwrap().len();
        let m = b.list(ObjectKind::Snapshot).unwrap().len();
        let t = b.incomplete().unwrap().len();
        seen.lock().unwrap().push((i, l, m, t));
    })
    .unwrap();
    assert_eq!(
        seen.into_inner().unwrap(),
        vec![(0, 9, 0, 3), (1, 9, 0, 3), (2, 9, 3, 0)]
    );
    for (n, bytes) in lists.iter().chain(&manifests) {
        assert_eq!(&b.read(n).unwrap(), bytes);
    }
}

/// A group that cannot be put in place fails the batch: the groups before it stay, nothing of
/// it or after it shows, and no temporary file is left.
#[test]
fn put_groups_failing_leaves_no_temporary_file() {
    let (_d, b) = backend();
    let lists = group(ObjectKind::BlobList, 'c', 9);
    let manifests = group(ObjectKind::Snapshot, 'd', 3);
    // A folder where the first manifest goes: its rename fails.
    std::fs::create_dir_all(b.path(&manifests[0].0)).unwrap();
    let done = std::sync::Mutex::new(Vec::new());
    let e = b.put_groups(&[&lists, &manifests], &|i| done.lock().unwrap().push(i));
    assert!(e.is_err());
    assert_eq!(done.into_inner().unwrap(), vec![0]);
    assert_eq!(b.list(ObjectKind::BlobList).unwrap().len(), 9);
    assert!(b.list(ObjectKind::Snapshot).unwrap().is_empty());
    assert!(b.incomplete().unwrap().is_empty());
}

/// Compressible text chunk `i` (groupable: it goes into a section).
fn text(i: u64) -> Vec<u8> {
    format!("INSERT INTO t VALUES ({i},'row {i}');\n")
        .repeat(80)
        .into_bytes()
}

/// What one section of `chunks` takes once sealed.
fn sealed_size(chunks: &[Vec<u8>]) -> u64 {
    let codec = ChunkCodec::plain();
    let mut s = super::frame::Section::new(ZSTD_LEVEL);
    for c in chunks {
        s.push(codec.id(c), c);
    }
    s.seal(&codec).unwrap().stored.len() as u64
}

/// Sections handed to a sealer are compressed in the background and counted in the account
/// they were handed with, whatever account is current by then: each capture of a batch reports
/// exactly the bytes it added, and every chunk reads back.
#[test]
fn sealer_counts_each_section_in_its_account() {
    let (d, index, sink) = mem_sink();
    let sink = std::sync::Arc::new(sink);
    let sealer = Sealer::start(sink.clone()).unwrap();
    let first: Vec<Vec<u8>> = (0..20).map(text).collect();
    let second: Vec<Vec<u8>> = (100..130).map(text).collect();
    let a = sink.begin_account();
    let ha: Vec<_> = first.iter().map(|c| sink.put(c).unwrap()).collect();
    sealer.seal_open(&a).unwrap();
    let b2 = sink.begin_account();
    let hb: Vec<_> = second.iter().map(|c| sink.put(c).unwrap()).collect();
    sealer.seal_open(&b2).unwrap();
    sealer.wait().unwrap();
    sink.finish().unwrap();
    let load = |x: &std::sync::atomic::AtomicU64| x.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&a), sealed_size(&first));
    assert_eq!(load(&b2), sealed_size(&second));
    assert_eq!(load(&sink.stats.bytes_added), load(&a) + load(&b2));
    let mut r = ChunkReader::new(d.path(), &index);
    for (h, c) in ha.iter().zip(&first).chain(hb.iter().zip(&second)) {
        assert_eq!(&r.read(h).unwrap(), c);
    }
}

/// A blob of more chunks than a list holds directly is stored with an indirect list through a
/// real sink; expanding it reads the list chunks back and the blob comes back byte for byte.
/// A list that counts one id more than its list chunks hold is refused.
#[test]
fn a_big_blob_round_trips_through_an_indirect_list() {
    let (d, index, sink) = mem_sink();
    // Noise cut at rows falls back to byte-level cuts of about 1 KiB: some 6,000 chunks.
    let data = noise(9, 6 << 20);
    let (id, list, size) = sink.put_stream_listed(&data[..], DUMP_ROW_CHUNKS).unwrap();
    sink.finish().unwrap();
    assert_eq!(size, data.len() as u64);
    let ChunkList::Indirect {
        count,
        levels: 1,
        lists,
    } = list.clone()
    else {
        panic!("a direct list of {} chunks", list.count())
    };
    assert!(count > list::DIRECT_MAX as u64, "{count} chunks");
    let n = lists.len() as u64;
    assert!(
        n > count / list::LIST_MAX as u64 && n < count / list::LIST_MIN as u64,
        "{n} lists"
    );
    let mut r = ChunkReader::new(d.path(), &index);
    let chunks = list.expand(&id, &mut r).unwrap();
    assert_eq!(chunks.len() as u64, count);
    assert_eq!(crate::hash::Hash::of_list(&chunks), id);
    let mut back = Vec::new();
    r.copy_chunks(&chunks, &mut back).unwrap();
    assert!(back == data, "the blob reads back");
    let wrong = ChunkList::Indirect {
        count: count + 1,
        levels: 1,
        lists,
    };
    assert!(wrong.expand(&id, &mut r).is_err());
}

/// The packs a sink returns keep no entries: they are indexed, and a large capture's entries
/// would be held to its end (130 MB for the 1.9 million chunks of a 2 GB dump cut at rows).
#[test]
fn a_finished_sink_keeps_no_pack_entries() {
    let (_d, index, sink) = mem_sink();
    let hashes: Vec<_> = (0..40u64)
        .map(|i| sink.put(&noise(i, 1 << 20)).unwrap())
        .collect();
    let packs = sink.finish().unwrap();
    assert!(packs.len() >= 2, "{} packs", packs.len());
    assert!(packs.iter().all(|p| p.entries.is_empty() && p.size > 0));
    assert!(hashes.iter().all(|h| index.chunk_exists(h).unwrap()));
}

/// Storing a buffer on every core gives the chunk ids, in order, that storing it on one thread
/// gives, and stores every chunk once; a failure on any thread fails the call.
#[test]
fn put_bytes_parallel_matches_put_bytes() {
    use crate::store::TREE_CHUNKS;
    let data = noise(11, 3 << 20);
    let (_d, index, sink) = mem_sink();
    let want = cut_bytes(&data, TREE_CHUNKS)
        .map(|(o, l)| codec_id(&data[o..o + l]))
        .collect::<Vec<_>>();
    assert!(want.len() > 4, "{} chunks", want.len());
    assert_eq!(sink.put_bytes_parallel(&data, TREE_CHUNKS).unwrap(), want);
    assert_eq!(sink.put_bytes_parallel(&data, TREE_CHUNKS).unwrap(), want);
    sink.finish().unwrap();
    let stored = &index.0.lock().unwrap().stored;
    assert!(want.iter().all(|h| stored.contains_key(h)));
    let (_d, index, sink) = mem_sink();
    index.0.lock().unwrap().broken = true;
    assert!(
        sink.put_bytes_parallel(&noise(12, 3 << 20), TREE_CHUNKS)
            .is_err()
    );
}
