//! Filling walked file items with their chunk lists: from the files cache when it vouches for a
//! file, else by reading it (storing through the chunk sink, or only hashing for a scan).

use super::stat::Stat;
use super::walk::{Bases, Item};
use crate::catalog::{CacheEntry, FilesCache};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{OpenFolder, Root, open_at};
use crate::hash::Hash;
use crate::progress::Meter;
use crate::store::{ChunkCodec, ChunkSink, FILE_CHUNKS};
use crate::tree::Kind;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// What reading a file's content is for: storing it, or only naming its chunks (a scan).
#[derive(Clone, Copy)]
pub(super) enum Reading<'a> {
    /// Store new chunks through the sink (which names them).
    Store(&'a ChunkSink),
    /// Only name the chunks, as the repository's codec does.
    Hash(&'a ChunkCodec),
}

impl Reading<'_> {
    fn storing(&self) -> bool {
        matches!(self, Reading::Store(_))
    }
}

/// What one worker did: its first failure, if any.
type WorkerOut = Result<()>;

/// Counters of one capture.
#[derive(Default)]
pub(super) struct Counters {
    /// Bytes of file content read from disk (not vouched for by the files cache).
    pub(super) bytes_read: AtomicU64,
}

/// Opens a file the walk saw as a regular file, without following a symlink and without
/// blocking on a FIFO that took its place. `None` if it is no longer a regular file (gone,
/// or replaced by a symlink, folder, FIFO, ...): a symlink swapped in after the walk must never
/// make a snapshot of a site hold a file from outside it. The file is opened by name inside
/// its folder, kept open in `folder` for its neighbours (reached from `root` when given).
fn open_regular(
    abs: &Path,
    root: Option<Root<'_>>,
    folder: &mut OpenFolder,
) -> Result<Option<(File, fs::Metadata)>> {
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let found = match root {
        Some(root) => folder.get_beneath(root, dir),
        None => folder.get(dir),
    };
    let opened = found.and_then(|d| {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        open_at(d, abs.file_name().unwrap_or_default(), flags, 0)
    });
    let f = match opened {
        Ok(f) => f,
        // Gone, or the file or a folder on the way a symlink now (ENOTDIR, ELOOP; EXDEV when
        // a folder on the way leads out of the root).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOTDIR | libc::ELOOP | libc::EXDEV)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io(abs, e)),
    };
    let md = f.metadata().at(abs)?;
    if !md.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some((f, md)))
}

/// What reading one file gave: its chunks, the bytes read, and the status of the file that
/// was actually read (it may have been replaced since the walk).
type ReadResult = Option<(Vec<Hash>, u64, Stat)>;

fn read_file(
    (abs, root): (&Path, Option<Root<'_>>),
    mode: Reading<'_>,
    buf: &mut Vec<u8>,
    folder: &mut OpenFolder,
) -> Result<ReadResult> {
    let Some((f, md)) = open_regular(abs, root, folder)? else {
        return Ok(None);
    };
    crate::fsutil::failpoint_io("read-file").at(abs)?;
    if md.len() <= FILE_CHUNKS.max as u64 {
        let n = read_whole(&f, md.len(), buf).at(abs)?;
        let data = &buf[..n];
        let chunks = match mode {
            Reading::Store(s) => s
                .put_bytes(data, FILE_CHUNKS)
                .map_err(|e| annotate(e, abs))?,
            Reading::Hash(c) => c.hash_bytes(data, FILE_CHUNKS),
        };
        let n = n as u64;
        if buf.capacity() > KEPT_BUFFER {
            // A big file's buffer is not kept for the small files that follow.
            *buf = Vec::new();
        }
        return Ok(Some((chunks, n, Stat::of(&md))));
    }
    let (chunks, n) = match mode {
        Reading::Store(s) => s.put_stream(f, FILE_CHUNKS).map_err(|e| annotate(e, abs))?,
        Reading::Hash(codec) => {
            let mut out = Vec::new();
            let mut n = 0;
            for c in
                fastcdc::v2020::StreamCDC::new(f, FILE_CHUNKS.min, FILE_CHUNKS.avg, FILE_CHUNKS.max)
            {
                let c = c.map_err(|e| Error::Invalid(format!("{}: {e}", abs.display())))?;
                n += c.length as u64;
                out.push(codec.id(&c.data));
            }
            (out, n)
        }
    };
    Ok(Some((chunks, n, Stat::of(&md))))
}

/// A read buffer above this capacity is freed after its file.
const KEPT_BUFFER: usize = 1 << 20;

/// Reads a file that `fstat` said is `len` bytes long, to its end, into the start of `buf`;
/// returns how many bytes it read. One `read` for a file that did not change size (asked for
/// `len + 1` bytes, a regular file gives fewer only at its end), and reads on until a read
/// returns nothing in every other case: a file that grew or shrank meanwhile, a network or
/// FUSE file system giving short reads. Unlike `read_to_end` it does not `fstat` and `lseek`
/// the file again nor probe for the end with a second small read. `buf` keeps its length
/// (bytes of earlier files beyond the returned count) so that only growing it zeroes memory:
/// zeroing every file's bytes before reading them cost a `memset` of the whole tree.
fn read_whole(mut f: impl Read, len: u64, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let want = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1);
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut filled = 0;
    loop {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled as u64 == len {
                    // Exactly the size fstat gave, and short of what was asked: the end.
                    break;
                }
                if filled == buf.len() {
                    let more = buf.len();
                    buf.resize(more + more.max(8192), 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn annotate(e: Error, abs: &Path) -> Error {
    match e {
        Error::Invalid(m) if m.starts_with("read failed") => {
            Error::Invalid(format!("{}: {m}", abs.display()))
        }
        other => other,
    }
}

/// A new files-cache row: (absolute path, what the cache vouches for).
pub(super) type CacheRow = (Vec<u8>, CacheEntry);

/// Fills in the chunk lists of the file items: from the files cache when path, device, inode,
/// size, mtime and ctime match, else by reading the file on worker threads. Returns the new
/// cache rows (only when storing). Takes the cache: the rows it vouched for move into the
/// items, the rest is freed before the reads.
pub(super) fn fill(
    items: &mut [Item],
    bases: Bases<'_>,
    mode: Reading<'_>,
    cache: FilesCache,
    counters: &Counters,
    meter: Meter,
) -> Result<Vec<CacheRow>> {
    let jobs = fill_from_cache(items, bases, &cache, meter);
    // What the cache did not vouch for is of no further use.
    drop(cache);
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    for r in read_jobs(items, bases, &jobs, mode, counters, meter) {
        r?;
    }
    // The rows are made once every file is read, not held beside the read buffers.
    Ok(jobs
        .iter()
        .filter(|&&i| items[i].cacheable)
        .map(|&i| cache_row(&items[i], bases))
        .collect())
}

/// Below this many items the cache is asked on the calling thread alone.
const LOOKUPS_PER_THREAD: usize = 4096;

/// Takes the chunk lists the files cache vouches for; returns the indexes of the file items
/// that must be read, in order. The items are cut into one run of neighbours per core, each
/// looked up on its own thread (a repeat snapshot of a big platform spent a tenth of its time
/// here on one core after the walk).
fn fill_from_cache(
    items: &mut [Item],
    bases: Bases<'_>,
    cache: &FilesCache,
    meter: Meter,
) -> Vec<usize> {
    let threads = crate::cores().clamp(1, 8);
    let per = items.len().div_ceil(threads).max(LOOKUPS_PER_THREAD);
    if items.len() <= per {
        return fill_part(items, 0, bases, cache, meter);
    }
    std::thread::scope(|s| {
        let hs: Vec<_> = items
            .chunks_mut(per)
            .enumerate()
            .map(|(k, part)| s.spawn(move || fill_part(part, k * per, bases, cache, meter)))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("files-cache lookup panicked"))
            .collect()
    })
}

/// [`fill_from_cache`] for the items of one part, `first` being the index of its first item.
fn fill_part(
    items: &mut [Item],
    first: usize,
    bases: Bases<'_>,
    cache: &FilesCache,
    meter: Meter,
) -> Vec<usize> {
    let mut jobs = Vec::new();
    let mut key = Vec::new();
    for (i, it) in items.iter_mut().enumerate() {
        if it.entry.kind != Kind::File {
            continue;
        }
        bases.abs_into(it, &mut key);
        if let Some(c) = cache.get(&key)
            && c.key == it.key()
        {
            it.entry.chunks = c.chunks();
            meter.add(it.entry.size, 1);
            continue;
        }
        jobs.push(first + i);
    }
    jobs
}

/// A run of neighbouring files read by one worker: at most this many files...
const RUN_FILES: usize = 64;
/// ... or this many bytes.
const RUN_BYTES: u64 = 8 << 20;

/// The jobs cut into runs of neighbouring files (ranges of `jobs`).
fn runs(items: &[Item], jobs: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (j, &i) in jobs.iter().enumerate() {
        bytes += items[i].entry.size;
        if j + 1 - start >= RUN_FILES || bytes >= RUN_BYTES {
            out.push(start..j + 1);
            (start, bytes) = (j + 1, 0);
        }
    }
    if start < jobs.len() {
        out.push(start..jobs.len());
    }
    out
}

/// Reads the items at `jobs` on worker threads, in runs of neighbouring files (so a folder's
/// files share sections, and the items are locked twice per run, not per file), each run
/// recorded into its items once read; the first failure stops every worker.
fn read_jobs(
    items: &mut [Item],
    bases: Bases<'_>,
    jobs: &[usize],
    mode: Reading<'_>,
    counters: &Counters,
    meter: Meter,
) -> Vec<WorkerOut> {
    let runs = runs(items, jobs);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = crate::cores().min(runs.len()).max(1);
    let items = std::sync::Mutex::new(items);
    let worker = || -> WorkerOut {
        let mut buf = Vec::new();
        let mut folder = OpenFolder::default();
        while !failed.load(Ordering::Relaxed) {
            let Some(run) = runs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let run = &jobs[run.clone()];
            let paths: Vec<(std::path::PathBuf, Option<Root<'_>>)> = {
                let items = items.lock().expect("capture items");
                run.iter()
                    .map(|&i| (bases.abs(&items[i]), bases.root_of(&items[i])))
                    .collect()
            };
            let mut read = Vec::with_capacity(run.len());
            for (abs, root) in &paths {
                match read_file((abs, *root), mode, &mut buf, &mut folder) {
                    Ok(r) => {
                        let n = r.as_ref().map_or(0, |r| r.1);
                        counters.bytes_read.fetch_add(n, Ordering::Relaxed);
                        meter.add(n, 1);
                        read.push(r);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            let mut items = items.lock().expect("capture items");
            for (&i, r) in run.iter().zip(read) {
                record_read(&mut items[i], r, mode.storing());
            }
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers).map(|_| s.spawn(worker)).collect();
        hs.into_iter()
            .map(|h| h.join().expect("capture worker panicked"))
            .collect()
    })
}

/// Records what reading one item gave; marks it for a new files-cache row when storing and the
/// file did not change while it was read.
fn record_read(it: &mut Item, read: ReadResult, storing: bool) {
    let Some((chunks, n, md)) = read else {
        it.gone = true;
        return;
    };
    // Record the file that was read, with its metadata (an atomic replace since the walk
    // brings a new inode, mode, owner and times).
    it.entry.mode = md.mode;
    it.entry.uid = md.uid;
    it.entry.gid = md.gid;
    it.entry.mtime_ns = md.mtime_ns;
    it.dev = md.dev;
    it.ino = md.ino;
    it.ctime_ns = md.ctime_ns;
    let steady = n == md.size;
    it.entry.size = n;
    it.entry.chunks = chunks;
    // A file that changed while it was read is read again next time.
    it.cacheable = storing && steady;
}

/// The files-cache row of an item that was read.
fn cache_row(it: &Item, bases: Bases<'_>) -> CacheRow {
    let mut path = Vec::new();
    bases.abs_into(it, &mut path);
    (path, CacheEntry::new(it.key(), it.entry.chunks.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file read with the size `fstat` gave is read whole however that size compares with
    /// what the file holds when it is read (it may have grown or shrunk since), into a buffer
    /// that held a bigger file before or is smaller than the file.
    #[test]
    fn read_whole_reads_to_the_end_whatever_the_size_said() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
        for start in [vec![7u8; 300_000], Vec::new(), vec![7u8; 10]] {
            let mut buf = start;
            for said in [100_000, 0, 1, 99_999, 100_001, 4096, 1 << 20] {
                let f = File::open(&p).unwrap();
                let n = read_whole(&f, said, &mut buf).unwrap();
                assert_eq!(&buf[..n], &data[..], "size said {said}");
            }
        }
        let mut buf = vec![7u8; 300_000];
        let empty = d.path().join("e");
        std::fs::File::create(&empty).unwrap();
        assert_eq!(
            read_whole(&File::open(&empty).unwrap(), 0, &mut buf).unwrap(),
            0
        );
        // A source that gives at most 1,000 bytes a read (as a network file system may) is
        // read to its end, not cut at its first short read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = out.len().min(self.0.len()).min(1000);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        for said in [100_000, 0, 50_500, 200_000] {
            let n = read_whole(Trickle(&data), said, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[..], "size said {said}");
        }
    }

    /// Runs hold neighbouring jobs, cover every job once, and end at the file or byte limit.
    #[test]
    fn runs_cover_every_job_once() {
        let item = |size: u64| Item::test_file(super::super::walk::Base::FsRoot, b"x", size);
        let mut items: Vec<Item> = (0..300).map(|_| item(10)).collect();
        items[151].entry.size = RUN_BYTES * 2;
        let jobs: Vec<usize> = (0..300).filter(|i| i % 3 != 0).collect();
        let rs = runs(&items, &jobs);
        let flat: Vec<usize> = rs.iter().flat_map(|r| r.clone()).collect();
        assert_eq!(flat, (0..jobs.len()).collect::<Vec<_>>());
        assert!(rs.iter().all(|r| r.len() <= RUN_FILES && !r.is_empty()));
        // The big file ends its run.
        let big = jobs.iter().position(|&i| i == 151).unwrap();
        assert!(rs.iter().any(|r| r.end == big + 1));
    }
}
