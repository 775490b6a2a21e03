//! Writing packs (always format 2). [`PackWriter`] writes one pack of frames through a backend
//! upload; [`PackRoller`] fills packs up to [`PACK_TARGET`] and is shared by snapshot writing
//! ([`ChunkSink`]) and gc's repack. Small chunks are grouped into sections
//! ([`super::frame`]), each compressed as one frame on the thread that filled it. A pack is durable before it is indexed: its upload is committed (locally: fsync,
//! rename into place, fsync of the folder) and only then recorded in the catalogue.

use super::backend::{Backend, ObjectKind, ObjectName, Upload};
use super::chunk::{ChunkCodec, ChunkParams, ZSTD_LEVEL, cut_bytes, stream_chunks};
use super::frame::{Frame, Section, groupable};
use super::index::{ChunkIndex, IndexOpener};
use super::list::{ChunkList, ListBuilder};
use super::pack::{PACK_TARGET, PackEntry, PackFormat, PackInfo, encode_header};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::Hash;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Writes one pack.
pub struct PackWriter {
    up: Box<dyn Upload>,
    codec: ChunkCodec,
    hasher: Sha256,
    len: u64,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    /// Starts a pack in `backend`, framed (and its header sealed) by `codec`.
    pub fn create(backend: &dyn Backend, codec: ChunkCodec) -> Result<Self> {
        let magic = codec.pack_magic();
        let mut w = PackWriter {
            up: backend.create(ObjectKind::Pack)?,
            codec,
            hasher: Sha256::new(),
            len: 0,
            entries: Vec::new(),
        };
        w.write(magic)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.up
            .write_all(b)
            .map_err(|e| Error::Invalid(format!("cannot write a pack: {e}")))?;
        self.hasher.update(b);
        self.len += b.len() as u64;
        Ok(())
    }

    /// Appends one frame: its stored bytes, and an entry per chunk it holds.
    pub fn add_frame(&mut self, frame: &Frame) -> Result<()> {
        let offset = self.len;
        self.write(&frame.stored)?;
        for c in &frame.chunks {
            self.entries.push(PackEntry {
                hash: c.hash,
                offset,
                clen: frame.stored.len() as u32,
                ulen: c.ulen,
                inner: c.inner,
            });
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Holds no chunk yet?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops an unfinished pack: its upload goes, nothing is indexed.
    pub fn discard(self) {
        self.up.discard();
    }

    /// Writes the header and commits the pack.
    pub fn finish(self) -> Result<PackInfo> {
        self.seal()?.commit()
    }

    /// Writes the header and flushes the pack; it is not durable until [`SealedPack::commit`].
    pub fn seal(mut self) -> Result<SealedPack> {
        let header = encode_header(&self.codec, PackFormat::V2, &self.entries)?;
        self.write(&header)?;
        self.up.flush_all()?;
        Ok(SealedPack {
            up: self.up,
            name: hex::encode(self.hasher.finalize()),
            len: self.len,
            entries: self.entries,
        })
    }
}

/// A pack with all its bytes written, not yet durable nor visible.
pub struct SealedPack {
    up: Box<dyn Upload>,
    name: String,
    len: u64,
    entries: Vec<PackEntry>,
}

impl SealedPack {
    /// Makes the pack durable and visible under its name: after this it may be indexed.
    pub fn commit(self) -> Result<PackInfo> {
        self.up.commit(&ObjectName::pack(&self.name))?;
        Ok(PackInfo {
            name: self.name,
            size: self.len,
            format: PackFormat::V2,
            entries: self.entries,
        })
    }
}

/// Fills packs one after another: each reaching [`PACK_TARGET`] bytes is sealed and handed
/// back. Used by the capture's pack-writer thread (with frames compressed elsewhere) and by
/// gc's repack (with plain chunks it groups itself).
pub struct PackRoller {
    backend: Arc<dyn Backend>,
    codec: ChunkCodec,
    cur: Option<PackWriter>,
    section: Section,
}

impl PackRoller {
    /// A roller writing into `backend`, packs framed by `codec`.
    pub fn new(backend: Arc<dyn Backend>, codec: ChunkCodec) -> Self {
        PackRoller {
            backend,
            codec,
            cur: None,
            section: Section::new(ZSTD_LEVEL),
        }
    }

    /// Adds a frame; returns the pack it filled, sealed, if it filled one.
    pub fn add_frame(&mut self, frame: &Frame) -> Result<Option<SealedPack>> {
        if self.cur.is_none() {
            self.cur = Some(PackWriter::create(&*self.backend, self.codec.clone())?);
        }
        let w = self.cur.as_mut().expect("open");
        w.add_frame(frame)?;
        if w.len() >= PACK_TARGET {
            return Ok(Some(self.cur.take().expect("open").seal()?));
        }
        Ok(None)
    }

    /// Adds a chunk's plain bytes: a small, compressible one joins the open section
    /// (compressed when it is full), any other is a frame of its own. Returns the pack it filled, if any.
    pub fn add_chunk(&mut self, hash: Hash, data: &[u8]) -> Result<Option<SealedPack>> {
        if !groupable(data) {
            let frame = Frame::single(&self.codec, hash, data, ZSTD_LEVEL)?;
            return self.add_frame(&frame);
        }
        if !self.section.push(hash, data) {
            return Ok(None);
        }
        let frame = self.section.take().seal(&self.codec)?;
        self.add_frame(&frame)
    }

    /// Seals the last, partly filled pack (`None` if it holds nothing), after the open
    /// section; returns the packs sealed (two when the section filled one).
    pub fn finish(mut self) -> Result<Vec<SealedPack>> {
        let mut out = Vec::new();
        if !self.section.is_empty() {
            let frame = self.section.take().seal(&self.codec)?;
            out.extend(self.add_frame(&frame)?);
        }
        out.extend(self.finish_pack()?);
        Ok(out)
    }

    fn finish_pack(&mut self) -> Result<Option<SealedPack>> {
        match self.cur.take() {
            Some(w) if !w.is_empty() => Ok(Some(w.seal()?)),
            Some(w) => {
                w.discard();
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Drops the pack being filled, unindexed.
    pub fn discard(mut self) {
        if let Some(w) = self.cur.take() {
            w.discard();
        }
    }
}

/// Counters a capture reports.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Compressed bytes of new chunks.
    pub bytes_added: AtomicU64,
    /// New chunks.
    pub chunks_added: AtomicU64,
}

/// Compressed bytes that may wait between the compressing threads and the pack writer. 8 MiB
/// (was 16): the generated tree's first snapshot peaked at 97-105 MB RSS instead of 109-112 MB
/// (3 alternating runs), in the same time; the docs tree's stayed at 76-83 MB.
const IN_FLIGHT: usize = 8 << 20;
/// Sealed packs that may wait for their commit while the writer fills the next one.
const SEALED_QUEUE: usize = 2;

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

/// The chunks a sink has taken that the catalogue's index does not hold yet: in open sections,
/// in flight to the pack writer, in the pack being filled, sealed or being committed. A chunk
/// leaves the set once its pack is indexed (the sync thread), or at once when the index
/// already held it, so the set stays as small as what is in flight, whatever the size of the
/// capture. Correct because a hash is in the set only while its holder stores it, and removed
/// only after the index can answer for it: two callers never both store a chunk, and a chunk
/// is never skipped unless it is in the set (on its way into a pack) or indexed (durable).
#[derive(Default)]
struct Pending(Mutex<HashSet<Hash>>);

impl Pending {
    /// Claims `h` for storing: false if the sink already holds it on its way into a pack.
    fn claim(&self, h: Hash) -> bool {
        self.0.lock().expect("sink pending").insert(h)
    }

    /// Gives up a claim (the chunk turned out to be indexed already).
    fn release(&self, h: &Hash) {
        self.0.lock().expect("sink pending").remove(h);
    }

    /// Forgets the chunks of a pack that is now indexed; gives back the memory of a burst.
    fn indexed(&self, info: &PackInfo) {
        let mut set = self.0.lock().expect("sink pending");
        for e in &info.entries {
            set.remove(&e.hash);
        }
        let live = set.len();
        if set.capacity() > 4 * live + 4096 {
            set.shrink_to(2 * live);
        }
    }

    fn len(&self) -> usize {
        self.0.lock().expect("sink pending").len()
    }
}

/// What the pack-writer thread works with.
struct WriterJob {
    backend: Arc<dyn Backend>,
    codec: ChunkCodec,
    index: Arc<dyn IndexOpener>,
    rx: crossbeam_channel::Receiver<Frame>,
    budget: Arc<Budget>,
    stop: Arc<AtomicBool>,
    pending: Arc<Pending>,
}

/// The sync thread: commits each sealed pack, then indexes it (invariant 1: durable first,
/// indexed second), and only then lets the sink forget its chunks. Returns the packs written,
/// without their entries.
fn sync_packs(
    cat: Box<dyn ChunkIndex + Send>,
    srx: crossbeam_channel::Receiver<SealedPack>,
    pending: Arc<Pending>,
) -> Result<Vec<PackInfo>> {
    let mut done = Vec::new();
    for sealed in srx {
        let info = sealed.commit()?;
        fsutil::failpoint("pack-written");
        cat.insert_pack(&info)?;
        fsutil::failpoint("pack-indexed");
        pending.indexed(&info);
        // The entries are in the index now: a capture's packs can list millions of chunks
        // (1.9 million, 130 MB of entries, for a 2 GB dump cut at rows), so only the packs'
        // names and sizes are kept for the caller.
        done.push(PackInfo {
            entries: Vec::new(),
            ..info
        });
    }
    Ok(done)
}

/// Fills packs from the channel and passes each sealed one to the sync thread.
fn fill_packs(job: &WriterJob, stx: &crossbeam_channel::Sender<SealedPack>) -> Result<()> {
    let mut roller = PackRoller::new(job.backend.clone(), job.codec.clone());
    for frame in &job.rx {
        if job.stop.load(Ordering::SeqCst) {
            break;
        }
        let n = frame.stored.len();
        let sealed = roller.add_frame(&frame)?;
        drop(frame);
        job.budget.give(n);
        if let Some(sealed) = sealed
            && stx.send(sealed).is_err()
        {
            return Ok(()); // the sync thread failed: its error is reported by the caller
        }
    }
    if job.stop.load(Ordering::SeqCst) {
        roller.discard();
    } else {
        for sealed in roller.finish()? {
            let _ = stx.send(sealed);
        }
    }
    Ok(())
}

/// The pack-writer thread: fills packs, seals them and passes them to the sync thread.
fn write_packs(job: WriterJob) -> Result<Vec<PackInfo>> {
    let _close = CloseOnDrop(job.budget.clone());
    let writer_cat = job.index.open_index()?;
    let (stx, srx) = crossbeam_channel::bounded::<SealedPack>(SEALED_QUEUE);
    let pending = job.pending.clone();
    let syncer = std::thread::Builder::new()
        .name("pack-sync".into())
        .spawn(move || sync_packs(writer_cat, srx, pending))
        .map_err(|e| Error::Invalid(format!("cannot start pack sync thread: {e}")))?;
    let fill = fill_packs(&job, &stx);
    // Stop taking chunks (producers then see a closed channel), let the syncer finish.
    drop(job);
    drop(stx);
    let synced = syncer
        .join()
        .map_err(|_| Error::Invalid("pack sync thread panicked".into()))?;
    fill?;
    synced
}

/// Deduplicating chunk sink shared by capture workers. Callers hash and compress on their own
/// threads (one zstd context each); the dedup check consults the set of chunks this session
/// took that are not indexed yet ([`Pending`]: in an open section, in flight, in a pack not yet
/// indexed), then the catalogue's index
/// through a pool of read connections (one per concurrent caller, so callers never queue behind
/// one SQLite connection). A new small chunk joins the open section of its zstd level; the
/// caller that fills a section compresses it as one frame. Frames go to the pack-writer thread, which fills packs up to `PACK_TARGET` and hands each sealed pack to
/// a sync thread; that one commits it and only then indexes it, while the writer fills the next
/// pack. A capture that fails calls `abort`: the pack being filled is dropped unindexed (packs
/// already sealed are made durable and indexed, and are reused by the next capture).
pub struct ChunkSink {
    codec: ChunkCodec,
    pending: Arc<Pending>,
    sections: Mutex<Vec<Section>>,
    aborted: Arc<AtomicBool>,
    lookups: Mutex<Vec<Box<dyn ChunkIndex + Send>>>,
    index: Arc<dyn IndexOpener>,
    tx: RwLock<Option<crossbeam_channel::Sender<Frame>>>,
    budget: Arc<Budget>,
    writer: Mutex<Option<std::thread::JoinHandle<Result<Vec<PackInfo>>>>>,
    /// Why the writer failed, once a caller has seen it.
    failure: Mutex<Option<String>>,
    /// What this sink added.
    pub stats: SinkStats,
    /// Where the compressed bytes of frames sent now are counted too (the capture under way
    /// in a batch, see [`ChunkSink::begin_account`]).
    account: Mutex<Option<Arc<AtomicU64>>>,
}

impl ChunkSink {
    /// Starts a sink writing packs into `backend`, indexing them through connections that
    /// `index` opens; chunks are named and stored by `codec`.
    pub fn start_with(
        backend: Arc<dyn Backend>,
        index: Arc<dyn IndexOpener>,
        codec: ChunkCodec,
    ) -> Result<Self> {
        let reader = index.open_index()?;
        let (tx, rx) = crossbeam_channel::unbounded::<Frame>();
        let budget = Arc::new(Budget {
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        });
        let aborted = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Pending::default());
        let job = WriterJob {
            backend,
            codec: codec.clone(),
            index: index.clone(),
            rx,
            budget: budget.clone(),
            stop: aborted.clone(),
            pending: pending.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("pack-writer".into())
            .spawn(move || write_packs(job))
            .map_err(|e| Error::Invalid(format!("cannot start pack writer: {e}")))?;
        Ok(ChunkSink {
            codec,
            pending,
            sections: Mutex::new(Vec::new()),
            aborted,
            lookups: Mutex::new(vec![reader]),
            index,
            tx: RwLock::new(Some(tx)),
            budget,
            writer: Mutex::new(Some(handle)),
            failure: Mutex::new(None),
            stats: SinkStats::default(),
            account: Mutex::new(None),
        })
    }

    /// Stores `data` as a chunk (if new) and returns its hash.
    pub fn put(&self, data: &[u8]) -> Result<Hash> {
        self.put_at(data, ZSTD_LEVEL)
    }

    /// Stores `data` as a chunk (if new, compressed at `level`) and returns its hash.
    fn put_at(&self, data: &[u8], level: i32) -> Result<Hash> {
        let h = self.codec.id(data);
        self.put_hashed(h, data, level)?;
        Ok(h)
    }

    /// Is `h` in the catalogue's index? Uses a pooled read connection.
    fn indexed(&self, h: &Hash) -> Result<bool> {
        let cat = self.lookups.lock().expect("sink pool").pop();
        let cat = match cat {
            Some(c) => c,
            None => self.index.open_index()?,
        };
        let found = cat.chunk_exists(h);
        self.lookups.lock().expect("sink pool").push(cat);
        found
    }

    /// Stores chunk `h` unless this sink holds it or the index has it. A failure once it is
    /// claimed stops the sink: other callers may have skipped the chunk as taken, and it is in
    /// no pack, so nothing may commit with this sink any more.
    fn put_hashed(&self, h: Hash, data: &[u8], level: i32) -> Result<()> {
        if !self.pending.claim(h) {
            return Ok(());
        }
        self.store_claimed(h, data, level)
            .inspect_err(|e| self.fail(e))
    }

    fn store_claimed(&self, h: Hash, data: &[u8], level: i32) -> Result<()> {
        if self.indexed(&h)? {
            self.pending.release(&h);
            return Ok(());
        }
        self.stats.chunks_added.fetch_add(1, Ordering::Relaxed);
        fsutil::failpoint("chunk-stored");
        if !groupable(data) {
            return self.send(Frame::single(&self.codec, h, data, level)?);
        }
        let full = {
            let mut sections = self.sections.lock().expect("sink sections");
            let i = match sections.iter().position(|s| s.level() == level) {
                Some(i) => i,
                None => {
                    sections.push(Section::new(level));
                    sections.len() - 1
                }
            };
            sections[i].push(h, data).then(|| sections[i].take())
        };
        match full {
            Some(section) => self.send(section.seal(&self.codec)?),
            None => Ok(()),
        }
    }

    /// Stops the sink after chunks it took were lost (see [`ChunkSink::put_hashed`]); later
    /// calls and `finish` fail with `e`'s reason (or the writer's own, if it failed first).
    fn fail(&self, e: &Error) {
        self.failure
            .lock()
            .expect("sink failure")
            .get_or_insert_with(|| e.to_string());
        self.abort();
    }

    /// Starts counting what is sent from now on in a new account (besides [`SinkStats`]),
    /// until the next call; sections handed to a [`Sealer`] are counted in the account they
    /// are handed with. A batch gives each capture its own, so each site's `bytes_added` is
    /// its own.
    pub fn begin_account(&self) -> Arc<AtomicU64> {
        let a = Arc::new(AtomicU64::new(0));
        *self.account.lock().expect("sink account") = Some(a.clone());
        a
    }

    /// Hands a frame to the pack writer (waiting while too many bytes are in flight), counted
    /// in the current account.
    fn send(&self, frame: Frame) -> Result<()> {
        let account = self.account.lock().expect("sink account").clone();
        self.send_to(frame, account.as_deref())
    }

    /// Hands a frame to the pack writer, counted in `account`.
    fn send_to(&self, frame: Frame, account: Option<&AtomicU64>) -> Result<()> {
        let n = frame.stored.len();
        self.stats
            .bytes_added
            .fetch_add(n as u64, Ordering::Relaxed);
        if let Some(a) = account {
            a.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.budget.take(n);
        let sent = match &*self.tx.read().expect("sink tx") {
            Some(tx) => tx.send(frame).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            self.budget.give(n);
            Err(self.writer_error())
        }
    }

    /// Compresses and sends the sections still open (the packs stay open).
    /// A failure stops the sink (the sections' chunks are in no pack).
    pub fn flush_sections(&self) -> Result<()> {
        let open = std::mem::take(&mut *self.sections.lock().expect("sink sections"));
        for s in open.into_iter().filter(|s| !s.is_empty()) {
            let sent = s.seal(&self.codec).and_then(|f| self.send(f));
            sent.inspect_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Takes the open sections (for a [`Sealer`]).
    fn take_sections(&self) -> Vec<Section> {
        let mut open = std::mem::take(&mut *self.sections.lock().expect("sink sections"));
        open.retain(|s| !s.is_empty());
        open
    }

    /// Compresses a section taken from this sink and sends it, counted in `account`. A
    /// failure stops the sink (the section's chunks are in no pack).
    fn seal_to(&self, section: Section, account: &AtomicU64) -> Result<()> {
        let sent = section
            .seal(&self.codec)
            .and_then(|f| self.send_to(f, Some(account)));
        sent.inspect_err(|e| self.fail(e))
    }

    fn writer_error(&self) -> Error {
        self.tx.write().expect("sink tx").take();
        match self.writer.lock().expect("sink writer").take() {
            Some(h) => {
                let e = match h.join() {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => Error::Invalid("pack writer stopped early".into()),
                    Err(_) => Error::Invalid("pack writer panicked".into()),
                };
                *self.failure.lock().expect("sink failure") = Some(e.to_string());
                e
            }
            None => self.writer_gone(),
        }
    }

    /// The error of a writer that already stopped: the reason it failed with, when it did (a
    /// batch's later captures and its commit name the real cause, such as a full disk).
    fn writer_gone(&self) -> Error {
        match &*self.failure.lock().expect("sink failure") {
            Some(why) => Error::Invalid(why.clone()),
            None => Error::Invalid("pack writer already stopped".into()),
        }
    }

    /// How many chunks this sink took that are not indexed yet (bounded by what is in flight).
    pub fn pending_chunks(&self) -> usize {
        self.pending.len()
    }

    /// How this sink names chunks.
    pub fn codec(&self) -> &ChunkCodec {
        &self.codec
    }

    /// Cuts a stream into chunks with `params` and stores them; returns the chunk list and size.
    pub fn put_stream(&self, r: impl Read, params: ChunkParams) -> Result<(Vec<Hash>, u64)> {
        let mut out = Vec::new();
        let mut total = 0u64;
        for c in stream_chunks(r, params) {
            let c = c?;
            total += c.len() as u64;
            out.push(self.put_at(&c, params.level)?);
        }
        out.shrink_to_fit();
        Ok((out, total))
    }

    /// Like [`ChunkSink::put_stream`], but the chunk ids go into a [`ListBuilder`] as they
    /// come: a long stream's list is stored as list chunks through this sink, never held
    /// whole. Returns the blob id, its list and the plain size.
    pub fn put_stream_listed(
        &self,
        r: impl Read,
        params: ChunkParams,
    ) -> Result<(Hash, ChunkList, u64)> {
        let mut list = ListBuilder::new(|b: &[u8]| self.put_at(b, ZSTD_LEVEL));
        let mut total = 0u64;
        for c in stream_chunks(r, params) {
            let c = c?;
            total += c.len() as u64;
            list.push(self.put_at(&c, params.level)?)?;
        }
        let (id, l) = list.finish()?;
        Ok((id, l, total))
    }

    /// Cuts an in-memory buffer into chunks and stores them.
    pub fn put_bytes(&self, data: &[u8], params: ChunkParams) -> Result<Vec<Hash>> {
        let mut out = cut_bytes(data, params)
            .map(|(o, l)| self.put_at(&data[o..o + l], params.level))
            .collect::<Result<Vec<Hash>>>()?;
        // A file's list lives as long as the capture: no room for the three more ids a
        // collected Vec starts with (most files are one chunk).
        out.shrink_to_fit();
        Ok(out)
    }

    /// [`ChunkSink::put_bytes`] on every core: the cuts are found first, then the chunks are
    /// hashed, looked up and compressed by one thread per core, each taking the next chunk.
    /// For a big buffer of big chunks (a serialized platform tree: 6 MB of 256 KiB chunks on
    /// the docs tree, at zstd level 4), which the capture stores after the last file is read.
    pub fn put_bytes_parallel(&self, data: &[u8], params: ChunkParams) -> Result<Vec<Hash>> {
        let cuts: Vec<(usize, usize)> = cut_bytes(data, params).collect();
        if cuts.len() <= 1 {
            return cuts
                .iter()
                .map(|&(o, l)| self.put_at(&data[o..o + l], params.level))
                .collect();
        }
        let workers = crate::cores().clamp(1, 4).min(cuts.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        // Each worker returns the (offset, id) of the chunks it took.
        let work = || -> Result<Vec<(usize, Hash)>> {
            let mut took = Vec::new();
            while let Some(&(o, l)) = cuts.get(next.fetch_add(1, Ordering::Relaxed)) {
                took.push((o, self.put_at(&data[o..o + l], params.level)?));
            }
            Ok(took)
        };
        let taken = std::thread::scope(|s| {
            let hs: Vec<_> = (0..workers).map(|_| s.spawn(work)).collect();
            hs.into_iter()
                .map(|h| h.join().expect("chunk worker panicked"))
                .collect::<Result<Vec<_>>>()
        })?;
        // Chunk offsets are distinct and ordered as the chunks: sorted by offset, in order.
        let mut all: Vec<(usize, Hash)> = taken.into_iter().flatten().collect();
        all.sort_unstable_by_key(|&(o, _)| o);
        Ok(all.into_iter().map(|(_, h)| h).collect())
    }

    /// Stops after a failed capture: the pack being filled is discarded, not indexed, so a
    /// capture that fails on small input leaves the catalogue as it was.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        self.sections.lock().expect("sink sections").clear();
        self.tx.write().expect("sink tx").take();
        if let Some(h) = self.writer.lock().expect("sink writer").take() {
            let _ = h.join();
        }
        self.close_lookups();
    }

    /// Closes the lookup connections (and the read transactions they may hold).
    fn close_lookups(&self) {
        self.lookups.lock().expect("sink pool").clear();
    }

    /// Flushes the open sections and the last pack and waits until every pack is durable and
    /// indexed. Returns the packs written (name, size, format; their entries are not kept).
    pub fn finish(&self) -> Result<Vec<PackInfo>> {
        if let Err(e) = self.flush_sections() {
            self.abort();
            return Err(e);
        }
        self.tx.write().expect("sink tx").take();
        let done = match self.writer.lock().expect("sink writer").take() {
            Some(h) => h
                .join()
                .map_err(|_| Error::Invalid("pack writer panicked".into()))?,
            None => Err(self.writer_gone()),
        };
        self.close_lookups();
        done
    }
}

/// Compresses a shared sink's sections on background threads: in a `snapshot --all` batch one
/// site's open sections are sealed while the next site is captured, instead of on the
/// capturing thread between the two. [`Sealer::wait`] before the sink's `finish`.
pub struct Sealer {
    sink: Arc<ChunkSink>,
    tx: Option<crossbeam_channel::Sender<(Section, Arc<AtomicU64>)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Sealer {
    /// Starts sealing threads for `sink`: one fewer than the cores (at least one, at most
    /// four; the capturing thread is busy too).
    pub fn start(sink: Arc<ChunkSink>) -> Result<Sealer> {
        let n = crate::cores().saturating_sub(1).clamp(1, 4);
        let (tx, rx) = crossbeam_channel::bounded::<(Section, Arc<AtomicU64>)>(2 * n);
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let (sink, rx) = (sink.clone(), rx.clone());
            let h = std::thread::Builder::new()
                .name("sealer".into())
                .spawn(move || {
                    for (section, account) in rx {
                        // A failure stops the sink; what is left is drained unsealed.
                        if !sink.aborted.load(Ordering::SeqCst) {
                            let _ = sink.seal_to(section, &account);
                        }
                    }
                })
                .map_err(|e| Error::Invalid(format!("cannot start a sealer: {e}")))?;
            threads.push(h);
        }
        Ok(Sealer {
            sink,
            tx: Some(tx),
            threads,
        })
    }

    /// Hands the sink's open sections to the sealing threads (waiting while they are behind);
    /// their compressed bytes go to `account`.
    pub fn seal_open(&self, account: &Arc<AtomicU64>) -> Result<()> {
        let tx = self.tx.as_ref().expect("sealer open");
        for s in self.sink.take_sections() {
            if tx.send((s, account.clone())).is_err() {
                return Err(Error::Invalid("the section sealers stopped".into()));
            }
        }
        Ok(())
    }

    /// Waits until every section handed over is sealed and sent (or dropped after a failure,
    /// which the sink's `finish` then reports).
    pub fn wait(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        drop(self.tx.take());
        let mut res = Ok(());
        for h in self.threads.drain(..) {
            if h.join().is_err() {
                res = Err(Error::Invalid("a section sealer panicked".into()));
            }
        }
        res
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
