//! A capture's database dump. It is planned on the capture's thread (the catalogue's copy
//! cache, the dump options), then streamed into the chunk sink on a thread of its own while the
//! capture stores the files, so a site's dump and its files use both cores. A failure of the
//! files stops the dump (its tool is killed, even one waiting for a lock) instead of waiting
//! for its end.

use super::fill::CacheRow;
use super::share;
use crate::catalog::{BlobRow, CacheEntry, Catalog};
use crate::db::{Cancel, Database, DumpOptions, StructureTables};
use crate::error::{Error, IoContext, Result};
use crate::hash::Hash;
use crate::store::{self, ChunkList, ChunkSink};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The stored database dump: its blob row and size, and the files-cache row that lets the
/// next capture reuse an unchanged SQLite database's copy.
pub(super) struct Dump {
    pub(super) blob: Option<BlobRow>,
    pub(super) bytes: u64,
    pub(super) cache_row: Option<CacheRow>,
}

impl Dump {
    /// No dump: the site has no database, or nothing to take it from.
    pub(super) fn none() -> Dump {
        Dump {
            blob: None,
            bytes: 0,
            cache_row: None,
        }
    }
}

/// What a capture does for its database, decided before anything is stored.
pub(super) enum DumpPlan<'a> {
    /// Nothing to dump.
    None,
    /// The copy of an unchanged SQLite database stored by an earlier capture.
    Reused(Dump),
    /// A dump to stream into the sink.
    Run(DumpJob<'a>),
}

/// What the site's database dump needs: all of it plain data, so it can run on a thread of
/// its own (no catalogue connection).
pub(super) struct DumpJob<'a> {
    db: &'a Database,
    /// The repository's folder for temporary files (an SQLite database's copy).
    tmp: PathBuf,
    opts: DumpOptions,
    /// An imported dump file, stored instead of dumping the database.
    import: Option<&'a Path>,
    /// A live SQLite database: its copy's files-cache key and the fingerprint taken before
    /// the copy.
    sqlite: Option<(Vec<u8>, CacheEntry)>,
}

/// Where a plan for the dump comes from: the site's database and how to dump it.
pub(super) struct DumpSource<'a> {
    pub(super) db: &'a Database,
    pub(super) import: Option<&'a Path>,
    pub(super) structure_tables: StructureTables,
    pub(super) timeout: Option<Duration>,
}

impl<'a> DumpPlan<'a> {
    /// Plans the dump of `src` (`None`: no dump), reusing an unchanged SQLite database's
    /// earlier copy when the catalogue still knows it.
    pub(super) fn new(cat: &Catalog, tmp: PathBuf, src: Option<DumpSource<'a>>) -> Result<Self> {
        let Some(src) = src else {
            return Ok(DumpPlan::None);
        };
        let mut opts = DumpOptions::from_env()?;
        if let Some(t) = src.timeout {
            opts.timeout = t;
        }
        opts.structure_tables = src.structure_tables;
        let sqlite = match (src.db, src.import) {
            (Database::Sqlite(p), None) => share::sqlite_fingerprint(p).map(|fp| {
                let key = share::sqlite_copy_key(p, &format!("{:?}", opts.structure_tables));
                (key, fp)
            }),
            _ => None,
        };
        if let Some((key, fp)) = &sqlite
            && let Some((chunks, size)) = share::reusable_copy(cat, key, fp)?
        {
            let id = Hash::of_list(&chunks);
            return Ok(DumpPlan::Reused(Dump {
                blob: Some((id, ChunkList::Direct(chunks), size)),
                bytes: size,
                cache_row: None,
            }));
        }
        Ok(DumpPlan::Run(DumpJob {
            db: src.db,
            tmp,
            opts,
            import: src.import,
            sqlite,
        }))
    }
}

impl DumpJob<'_> {
    /// Streams the dump (or the imported dump file) into `sink`; stops with an error once
    /// `cancel` is set (a dump tool is killed then, even one that writes nothing).
    pub(super) fn run(mut self, sink: &ChunkSink, cancel: &Cancel) -> Result<Dump> {
        self.opts.cancel = cancel.clone();
        let d = self.db;
        // An SQLite page image with FastCDC, its list kept whole for the copy cache; SQL text
        // with the dump parameters, its ids streamed into a list (indirect when long).
        let put = |r: &mut dyn Read| {
            let r = &mut Stoppable { inner: r, cancel };
            match d {
                Database::Sqlite(_) => sink
                    .put_stream(r, store::SQLITE_CHUNKS)
                    .map(|(c, size)| (Hash::of_list(&c), ChunkList::Direct(c), size)),
                _ => sink.put_stream_listed(r, store::DUMP_CHUNKS),
            }
        };
        let (id, list, size) = match self.import {
            Some(f) => put(&mut fs::File::open(f).at(f)?)?,
            None => d.dump_with(&self.tmp, &self.opts, &mut |r| put(r))?,
        };
        if size == 0 {
            return Err(Error::Database {
                url: d.redacted(),
                msg: "the dump is empty".into(),
            });
        }
        let cache_row = match (self.sqlite, &list) {
            (Some((key, fp)), ChunkList::Direct(chunks)) => {
                let entry = CacheEntry {
                    chunks: chunks.clone(),
                    ..fp
                };
                Some((key, entry))
            }
            _ => None,
        };
        Ok(Dump {
            blob: Some((id, list, size)),
            bytes: size,
            cache_row,
        })
    }
}

/// A dump stream that fails once `cancel` is set: the capture failed elsewhere, and the dump's
/// reader gives up instead of reading to the end for nothing.
struct Stoppable<'a> {
    inner: &'a mut dyn Read,
    cancel: &'a Cancel,
}

impl Read for Stoppable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(std::io::Error::other(
                "the dump was stopped: the capture failed",
            ));
        }
        self.inner.read(buf)
    }
}

/// Runs `files` on this thread and `dump` on a thread of its own at the same time; a failure
/// of `files` sets the switch `dump` is given, which stops it (see [`DumpJob::run`]). The
/// files' failure is the one returned when both fail.
pub(super) fn beside<T, D: Send>(
    dump: impl FnOnce(&Cancel) -> Result<D> + Send,
    files: impl FnOnce() -> Result<T>,
) -> Result<(T, D)> {
    let cancel = Cancel::default();
    std::thread::scope(|s| {
        let dumper = std::thread::Builder::new()
            .name("dump".into())
            .spawn_scoped(s, || dump(&cancel))
            .map_err(|e| Error::Invalid(format!("cannot start the database dump: {e}")))?;
        let stored = files();
        if stored.is_err() {
            cancel.cancel();
        }
        let dumped = dumper
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the database dump panicked".into())));
        Ok((stored?, dumped?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump that would never end on its own stops once the files fail, and the files'
    /// error is the one reported.
    #[test]
    fn a_failure_of_the_files_stops_the_dump() {
        let read_until_stopped = |cancel: &Cancel| -> Result<u64> {
            let mut endless = std::io::repeat(b'x');
            let mut r = Stoppable {
                inner: &mut endless,
                cancel,
            };
            let mut buf = [0u8; 4096];
            let mut n = 0u64;
            loop {
                match r.read(&mut buf) {
                    Ok(k) => n += k as u64,
                    Err(e) => return Err(Error::Invalid(format!("{e} after {n} bytes"))),
                }
            }
        };
        let files = || -> Result<()> { Err(Error::Invalid("cannot read /x/f: denied".into())) };
        let e = beside(read_until_stopped, files).unwrap_err();
        assert!(e.to_string().contains("/x/f"), "{e}");
    }

    /// A dump that fails while the files are stored fails the whole; with both whole, both
    /// results come back.
    #[test]
    fn a_failed_dump_fails_and_whole_parts_are_both_returned() {
        let e = beside(
            |_: &Cancel| -> Result<()> { Err(Error::Invalid("dump tool died".into())) },
            || Ok(7),
        )
        .unwrap_err();
        assert!(e.to_string().contains("dump tool died"), "{e}");
        let (files, dump) = beside(|_: &Cancel| Ok("dump"), || Ok(7)).unwrap();
        assert_eq!((files, dump), (7, "dump"));
    }
}
