//! The content store: chunking parameters, pack files under `data/`, and reading chunks back.
//! A pack is `SSNPACK1`, then zstd-compressed chunks, then a header listing each chunk's hash,
//! offset and lengths, then the header's length in the last 4 bytes, so packs describe
//! themselves and the index can be rebuilt from them. A pack is written to `data/tmp`, fsynced,
//! renamed to `data/<xx>/<sha256 of the pack>` and only then indexed in the catalogue. Every
//! chunk read is decompressed and checked against its hash. The store never deletes a pack
//! that is still indexed; only `gc` removes packs.

use crate::catalog::{Catalog, ChunkLocation};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::Hash;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

pub const PACK_MAGIC: &[u8; 8] = b"SSNPACK1";
/// Header entry: hash (32) + offset (8) + clen (4) + ulen (4).
pub const HEADER_ENTRY: usize = 48;
/// A pack is closed once it holds this many compressed bytes.
pub const PACK_TARGET: u64 = 16 << 20;
/// zstd level of chunks stored without a stream's parameters (`ChunkSink::put`): the files'
/// level.
pub const ZSTD_LEVEL: i32 = FILE_CHUNKS.level;

/// Content-defined chunking parameters and zstd level for one kind of stream.
#[derive(Debug, Clone, Copy)]
pub struct ChunkParams {
    pub min: usize,
    pub avg: usize,
    pub max: usize,
    /// zstd level for this stream's new chunks.
    pub level: i32,
}

/// Files: large chunks (restic's sizes); files smaller than `min` (nearly every code file) are
/// one chunk. Level 4 stores code 2.4% smaller than level 3 for about 20% more compression
/// time; media does not compress at any level and costs little (docs/performance.md).
pub const FILE_CHUNKS: ChunkParams = ChunkParams {
    min: 512 << 10,
    avg: 1 << 20,
    max: 8 << 20,
    level: 4,
};
/// Database dumps: small chunks, so scattered row changes leave most chunks intact. Level 3:
/// on 8 KiB chunks of SQL, level 4 saves under 1% and compresses a third slower.
pub const DUMP_CHUNKS: ChunkParams = ChunkParams {
    min: 2 << 10,
    avg: 8 << 10,
    max: 64 << 10,
    level: 3,
};
/// Serialized trees.
pub const TREE_CHUNKS: ChunkParams = ChunkParams {
    min: 16 << 10,
    avg: 64 << 10,
    max: 256 << 10,
    level: 4,
};

/// One chunk's place in a pack.
#[derive(Debug, Clone, Copy)]
pub struct PackEntry {
    pub hash: Hash,
    pub offset: u64,
    pub clen: u32,
    pub ulen: u32,
}

/// A finished, durable pack.
#[derive(Debug, Clone)]
pub struct PackInfo {
    pub name: String,
    pub size: u64,
    pub entries: Vec<PackEntry>,
}

/// Path of a pack file by name.
pub fn pack_path(data: &Path, name: &str) -> PathBuf {
    data.join(&name[..2]).join(name)
}

/// Writes one pack.
pub struct PackWriter {
    data: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    hasher: Sha256,
    len: u64,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn create(data: &Path) -> Result<Self> {
        let tmpdir = data.join("tmp");
        let tmp = tmpdir.join(format!("pack-{}", fsutil::random_hex(8)));
        let file = fsutil::create_private_file(&tmp)?;
        let mut w = PackWriter {
            data: data.to_path_buf(),
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            len: 0,
            entries: Vec::new(),
        };
        w.write(PACK_MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.file.write_all(b).at(&self.tmp)?;
        self.hasher.update(b);
        self.len += b.len() as u64;
        Ok(())
    }

    pub fn add(&mut self, hash: Hash, compressed: &[u8], ulen: u32) -> Result<()> {
        let offset = self.len;
        self.write(compressed)?;
        self.entries.push(PackEntry {
            hash,
            offset,
            clen: compressed.len() as u32,
            ulen,
        });
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops an unfinished pack: its temporary file goes, nothing is indexed.
    pub fn discard(self) {
        let PackWriter { file, tmp, .. } = self;
        drop(file);
        let _ = fs::remove_file(&tmp);
    }

    /// Writes the header, fsyncs, renames into place and fsyncs the folder.
    pub fn finish(self) -> Result<PackInfo> {
        self.seal()?.commit()
    }

    /// Writes the header and flushes the pack to the kernel; it is not durable until
    /// [`SealedPack::commit`].
    pub fn seal(mut self) -> Result<SealedPack> {
        let mut header = Vec::with_capacity(self.entries.len() * HEADER_ENTRY + 4);
        for e in &self.entries {
            header.extend_from_slice(&e.hash.0);
            header.extend_from_slice(&e.offset.to_le_bytes());
            header.extend_from_slice(&e.clen.to_le_bytes());
            header.extend_from_slice(&e.ulen.to_le_bytes());
        }
        let hlen = header.len() as u32;
        header.extend_from_slice(&hlen.to_le_bytes());
        self.write(&header)?;
        let file = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        Ok(SealedPack {
            data: self.data,
            tmp: self.tmp,
            file,
            name: hex::encode(self.hasher.finalize()),
            len: self.len,
            entries: self.entries,
        })
    }
}

/// A pack with all its bytes written to its temporary file, not yet durable nor in place.
pub struct SealedPack {
    data: PathBuf,
    tmp: PathBuf,
    file: File,
    name: String,
    len: u64,
    entries: Vec<PackEntry>,
}

impl SealedPack {
    /// Fsyncs the pack, renames it into place and fsyncs its folder: after this it is durable
    /// and may be indexed.
    pub fn commit(self) -> Result<PackInfo> {
        self.file.sync_all().at(&self.tmp)?;
        drop(self.file);
        let name = self.name;
        let dir = self.data.join(&name[..2]);
        if !dir.exists() {
            fsutil::create_private_dir(&dir)?;
            fsutil::sync_dir(&self.data)?;
        }
        let dest = dir.join(&name);
        fs::rename(&self.tmp, &dest).at(&dest)?;
        fsutil::sync_dir(&dir)?;
        Ok(PackInfo {
            name,
            size: self.len,
            entries: self.entries,
        })
    }
}

/// Reads a pack's own header (for verify and index rebuilds).
pub fn read_pack_header(path: &Path) -> Result<Vec<PackEntry>> {
    let f = File::open(path).at(path)?;
    let size = f.metadata().at(path)?.len();
    let bad = |why: &str| Error::Corrupt(format!("pack {}: {why}", path.display()));
    if size < (PACK_MAGIC.len() + 4) as u64 {
        return Err(bad("too short"));
    }
    let mut magic = [0u8; 8];
    f.read_exact_at(&mut magic, 0).at(path)?;
    if &magic != PACK_MAGIC {
        return Err(bad("bad magic"));
    }
    let mut l = [0u8; 4];
    f.read_exact_at(&mut l, size - 4).at(path)?;
    let hlen = u32::from_le_bytes(l) as u64;
    if !hlen.is_multiple_of(HEADER_ENTRY as u64) || hlen + 12 > size {
        return Err(bad("bad header length"));
    }
    let mut h = vec![0u8; hlen as usize];
    f.read_exact_at(&mut h, size - 4 - hlen).at(path)?;
    let mut out = Vec::new();
    for e in h.chunks_exact(HEADER_ENTRY) {
        let entry = PackEntry {
            hash: Hash(e[..32].try_into().expect("32")),
            offset: u64::from_le_bytes(e[32..40].try_into().expect("8")),
            clen: u32::from_le_bytes(e[40..44].try_into().expect("4")),
            ulen: u32::from_le_bytes(e[44..48].try_into().expect("4")),
        };
        if entry.offset + entry.clen as u64 > size - 4 - hlen {
            return Err(bad("header points past the data"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Decompresses and checks one chunk's bytes.
pub fn decode_chunk(hash: &Hash, compressed: &[u8], ulen: u32) -> Result<Vec<u8>> {
    thread_local! {
        static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    let bad = |e: std::io::Error| {
        Error::Corrupt(format!("chunk {} does not decompress: {e}", hash.short()))
    };
    let data = DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(bad)?);
        }
        d.as_mut()
            .expect("decompressor")
            .decompress(compressed, ulen as usize)
            .map_err(bad)
    })?;
    if data.len() != ulen as usize || Hash::of(&data) != *hash {
        return Err(Error::Corrupt(format!(
            "chunk {} does not match its hash",
            hash.short()
        )));
    }
    Ok(data)
}

/// Reads chunks by hash, keeping pack files open. One per thread.
pub struct ChunkReader<'a> {
    data: PathBuf,
    cat: &'a Catalog,
    open: HashMap<String, File>,
    buf: Vec<u8>,
}

impl<'a> ChunkReader<'a> {
    pub fn new(data: &Path, cat: &'a Catalog) -> Self {
        ChunkReader {
            data: data.to_path_buf(),
            cat,
            open: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// Reads, decompresses and verifies a chunk.
    pub fn read(&mut self, hash: &Hash) -> Result<Vec<u8>> {
        let loc = self.cat.chunk_location(hash)?.ok_or_else(|| {
            Error::Corrupt(format!("chunk {} is missing from the index", hash.short()))
        })?;
        self.read_at(hash, &loc)
    }

    pub fn read_at(&mut self, hash: &Hash, loc: &ChunkLocation) -> Result<Vec<u8>> {
        if self.open.len() > 64 {
            self.open.clear();
        }
        if !self.open.contains_key(&loc.pack) {
            let p = pack_path(&self.data, &loc.pack);
            let f = File::open(&p).map_err(|e| {
                Error::Corrupt(format!(
                    "pack {} holding chunk {}: {e}",
                    loc.pack,
                    hash.short()
                ))
            })?;
            self.open.insert(loc.pack.clone(), f);
        }
        let f = &self.open[&loc.pack];
        self.buf.resize(loc.clen as usize, 0);
        f.read_exact_at(&mut self.buf, loc.offset).map_err(|e| {
            Error::Corrupt(format!(
                "pack {} holding chunk {}: {e}",
                &loc.pack[..8],
                hash.short()
            ))
        })?;
        decode_chunk(hash, &self.buf, loc.ulen)
            .map_err(|e| Error::Corrupt(format!("{e} (in pack {})", &loc.pack[..8])))
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

/// A `Read` over a blob's chunks, verifying each.
pub struct BlobReader<'a> {
    reader: ChunkReader<'a>,
    chunks: Vec<Hash>,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> BlobReader<'a> {
    pub fn new(data: &Path, cat: &'a Catalog, chunks: Vec<Hash>) -> Self {
        BlobReader {
            reader: ChunkReader::new(data, cat),
            chunks,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(h) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.buf = self.reader.read(h).map_err(std::io::Error::other)?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Counters a capture reports.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub bytes_added: AtomicU64,
    pub chunks_added: AtomicU64,
}

/// Compressed bytes that may wait between the compressing threads and the pack writer.
const IN_FLIGHT: usize = 32 << 20;
/// Sealed packs that may wait for their fsync while the writer fills the next one.
const SEALED_QUEUE: usize = 2;

thread_local! {
    /// One zstd context per thread, reused for every chunk (creating one costs as much as
    /// compressing a small file).
    static CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

/// Compresses one chunk at `level` with the thread's reused zstd context.
pub fn compress_chunk(data: &[u8], level: i32) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| Error::Invalid(format!("zstd: {e}"));
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut() {
            Some((l, cx)) if *l != level => {
                cx.set_compression_level(level).map_err(err)?;
                *l = level;
            }
            Some(_) => {}
            None => *c = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?)),
        }
        c.as_mut()
            .expect("compressor")
            .1
            .compress(data)
            .map_err(err)
    })
}

/// A byte budget between producers and the pack writer: bounds memory whatever the chunk
/// sizes. Closed when the writer stops, so no producer waits forever.
struct Budget {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Budget {
    fn take(&self, n: usize) {
        let mut st = self.state.lock().expect("budget");
        while !st.1 && st.0 > 0 && st.0 + n > IN_FLIGHT {
            st = self.cv.wait(st).expect("budget");
        }
        st.0 += n;
    }
    fn give(&self, n: usize) {
        let mut st = self.state.lock().expect("budget");
        st.0 = st.0.saturating_sub(n);
        self.cv.notify_all();
    }
    fn close(&self) {
        self.state.lock().expect("budget").1 = true;
        self.cv.notify_all();
    }
}

/// Closes the budget when the writer thread ends, however it ends.
struct CloseOnDrop(Arc<Budget>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct PackItem {
    hash: Hash,
    compressed: Vec<u8>,
    ulen: u32,
}

/// Deduplicating chunk sink shared by capture workers. Callers hash and compress on their own
/// threads (one zstd context each); the dedup check consults the set of chunks this session
/// already took, then the catalogue's index through a pool of read connections (one per
/// concurrent caller, so callers never queue behind one SQLite connection). New chunks go to
/// the pack-writer thread, which fills packs up to `PACK_TARGET` and hands each sealed pack to
/// a sync thread; that one fsyncs it, renames it into place and only then indexes it, while
/// the writer fills the next pack. A capture that fails calls `abort`: the pack being filled is
/// dropped unindexed (packs already sealed are made durable and indexed, and are reused by the
/// next capture).
pub struct ChunkSink {
    seen: Mutex<HashSet<Hash>>,
    aborted: Arc<AtomicBool>,
    lookups: Mutex<Vec<Catalog>>,
    catalog: PathBuf,
    tx: RwLock<Option<crossbeam_channel::Sender<PackItem>>>,
    budget: Arc<Budget>,
    writer: Mutex<Option<std::thread::JoinHandle<Result<Vec<PackInfo>>>>>,
    pub stats: SinkStats,
}

/// The pack-writer thread: fills packs, seals them and passes them to the sync thread.
fn write_packs(
    data: PathBuf,
    catalog: PathBuf,
    rx: crossbeam_channel::Receiver<PackItem>,
    budget: Arc<Budget>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<PackInfo>> {
    let _close = CloseOnDrop(budget.clone());
    let writer_cat = Catalog::open(&catalog)?;
    let (stx, srx) = crossbeam_channel::bounded::<SealedPack>(SEALED_QUEUE);
    let syncer = std::thread::Builder::new()
        .name("pack-sync".into())
        .spawn(move || -> Result<Vec<PackInfo>> {
            let mut done = Vec::new();
            for sealed in srx {
                // Invariant 1: durable first, indexed second.
                let info = sealed.commit()?;
                fsutil::failpoint("pack-written");
                writer_cat.insert_pack(&info)?;
                fsutil::failpoint("pack-indexed");
                done.push(info);
            }
            Ok(done)
        })
        .map_err(|e| Error::Invalid(format!("cannot start pack sync thread: {e}")))?;
    let fill = (|| -> Result<()> {
        let mut cur: Option<PackWriter> = None;
        for item in &rx {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let n = item.compressed.len();
            if cur.is_none() {
                cur = Some(PackWriter::create(&data)?);
            }
            let w = cur.as_mut().expect("open");
            w.add(item.hash, &item.compressed, item.ulen)?;
            drop(item);
            budget.give(n);
            if w.len() >= PACK_TARGET {
                let sealed = cur.take().expect("open").seal()?;
                if stx.send(sealed).is_err() {
                    return Ok(()); // the sync thread failed: its error is reported below
                }
            }
        }
        if let Some(w) = cur.take() {
            if stop.load(Ordering::SeqCst) || w.is_empty() {
                w.discard();
            } else {
                let _ = stx.send(w.seal()?);
            }
        }
        Ok(())
    })();
    // Stop taking chunks (producers then see a closed channel), let the syncer finish.
    drop(rx);
    drop(stx);
    let synced = syncer
        .join()
        .map_err(|_| Error::Invalid("pack sync thread panicked".into()))?;
    fill?;
    synced
}

impl ChunkSink {
    /// Starts a sink writing packs into `data`, indexing them through a catalogue at `catalog`.
    pub fn start(data: &Path, catalog: &Path) -> Result<Self> {
        let reader = Catalog::open(catalog)?;
        let (tx, rx) = crossbeam_channel::unbounded::<PackItem>();
        let budget = Arc::new(Budget {
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        });
        let aborted = Arc::new(AtomicBool::new(false));
        let (d, c, b) = (data.to_path_buf(), catalog.to_path_buf(), budget.clone());
        let stop = aborted.clone();
        let handle = std::thread::Builder::new()
            .name("pack-writer".into())
            .spawn(move || write_packs(d, c, rx, b, stop))
            .map_err(|e| Error::Invalid(format!("cannot start pack writer: {e}")))?;
        Ok(ChunkSink {
            seen: Mutex::new(HashSet::new()),
            aborted,
            lookups: Mutex::new(vec![reader]),
            catalog: catalog.to_path_buf(),
            tx: RwLock::new(Some(tx)),
            budget,
            writer: Mutex::new(Some(handle)),
            stats: SinkStats::default(),
        })
    }

    /// Stores `data` as a chunk (if new) and returns its hash.
    pub fn put(&self, data: &[u8]) -> Result<Hash> {
        self.put_at(data, ZSTD_LEVEL)
    }

    /// Stores `data` as a chunk (if new, compressed at `level`) and returns its hash.
    fn put_at(&self, data: &[u8], level: i32) -> Result<Hash> {
        let h = Hash::of(data);
        self.put_hashed(h, data, level)?;
        Ok(h)
    }

    /// Is `h` in the catalogue's index? Uses a pooled read connection.
    fn indexed(&self, h: &Hash) -> Result<bool> {
        let cat = self.lookups.lock().expect("sink pool").pop();
        let cat = match cat {
            Some(c) => c,
            None => Catalog::open(&self.catalog)?,
        };
        let found = cat.chunk_exists(h);
        self.lookups.lock().expect("sink pool").push(cat);
        found
    }

    fn put_hashed(&self, h: Hash, data: &[u8], level: i32) -> Result<()> {
        if !self.seen.lock().expect("sink lock").insert(h) || self.indexed(&h)? {
            return Ok(());
        }
        let c = compress_chunk(data, level)?;
        self.stats
            .bytes_added
            .fetch_add(c.len() as u64, Ordering::Relaxed);
        self.stats.chunks_added.fetch_add(1, Ordering::Relaxed);
        fsutil::failpoint("chunk-stored");
        let n = c.len();
        self.budget.take(n);
        let item = PackItem {
            hash: h,
            compressed: c,
            ulen: data.len() as u32,
        };
        let sent = match &*self.tx.read().expect("sink tx") {
            Some(tx) => tx.send(item).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            self.budget.give(n);
            Err(self.writer_error())
        }
    }

    fn writer_error(&self) -> Error {
        self.tx.write().expect("sink tx").take();
        match self.writer.lock().expect("sink writer").take() {
            Some(h) => match h.join() {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => Error::Invalid("pack writer stopped early".into()),
                Err(_) => Error::Invalid("pack writer panicked".into()),
            },
            None => Error::Invalid("pack writer already stopped".into()),
        }
    }

    /// Cuts a stream into chunks with `params` and stores them; returns the chunk list and size.
    pub fn put_stream(&self, r: impl Read, params: ChunkParams) -> Result<(Vec<Hash>, u64)> {
        let mut out = Vec::new();
        let mut total = 0u64;
        for c in fastcdc::v2020::StreamCDC::new(r, params.min, params.avg, params.max) {
            let c = c.map_err(|e| match e {
                fastcdc::v2020::Error::IoError(e) => Error::Invalid(format!("read failed: {e}")),
                other => Error::Invalid(format!("chunker: {other}")),
            })?;
            total += c.length as u64;
            out.push(self.put_at(&c.data, params.level)?);
        }
        Ok((out, total))
    }

    /// Cuts an in-memory buffer into chunks and stores them.
    pub fn put_bytes(&self, data: &[u8], params: ChunkParams) -> Result<Vec<Hash>> {
        if data.len() <= params.min {
            return Ok(vec![self.put_at(data, params.level)?]);
        }
        let mut out = Vec::new();
        for c in fastcdc::v2020::FastCDC::new(data, params.min, params.avg, params.max) {
            out.push(self.put_at(&data[c.offset..c.offset + c.length], params.level)?);
        }
        Ok(out)
    }

    /// Stops after a failed capture: the pack being filled is discarded, not indexed, so a
    /// capture that fails on small input leaves the catalogue as it was.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.tx.write().expect("sink tx").take();
        if let Some(h) = self.writer.lock().expect("sink writer").take() {
            let _ = h.join();
        }
    }

    /// Flushes the last pack and waits until every pack is durable and indexed.
    pub fn finish(&self) -> Result<Vec<PackInfo>> {
        self.tx.write().expect("sink tx").take();
        match self.writer.lock().expect("sink writer").take() {
            Some(h) => h
                .join()
                .map_err(|_| Error::Invalid("pack writer panicked".into()))?,
            None => Err(Error::Invalid("pack writer already stopped".into())),
        }
    }
}

/// Chunks a buffer without storing (used to compare live trees with snapshots).
pub fn hash_bytes(data: &[u8], params: ChunkParams) -> Vec<Hash> {
    if data.len() <= params.min {
        return vec![Hash::of(data)];
    }
    fastcdc::v2020::FastCDC::new(data, params.min, params.avg, params.max)
        .map(|c| Hash::of(&data[c.offset..c.offset + c.length]))
        .collect()
}
