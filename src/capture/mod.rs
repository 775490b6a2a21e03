//! Capture: turning a live site into a snapshot. It walks the platform (minus other sites'
//! folders), the site directory and the binding files, reads only files the files cache does
//! not vouch for, cuts and stores their content through the deduplicating chunk sink on all
//! cores, dumps the database as a stream into the same sink at the same time (`dump`), stores
//! the trees as blobs, waits for every pack to be durable and indexed, and only then commits
//! the snapshot row (invariant 1). It also scans live trees without storing anything, for
//! drift checks and diffs. It never writes to a live site.

mod dump;
mod fill;
mod order;
mod scan;
mod share;
mod stat;
mod walk;

use crate::catalog::BlobRow;
use crate::catalog::SnapshotKind;
use crate::catalog::{Catalog, FilesCache, SiteRecord, SnapshotRecord};
use crate::db::Database;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::objects::PendingSnapshot;
use crate::progress::Meter;
use crate::repo::Repo;
use crate::store::{self, ChunkList, ChunkSink, Sealer};
use crate::tree::{PlatformFilter, Tree};
use dump::{Dump, DumpPlan, DumpSource};
use fill::{CacheRow, Counters, Reading, fill};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use walk::{
    Bases, ExtraRoot, Item, root_meta, to_tree, walk_bindings, walk_extra, walk_platform, walk_site,
};

pub use scan::{scan_bindings, scan_extra, scan_platform, scan_site_dir};
pub use share::RunShare;
use share::SharedPlatform;
pub use walk::db_side_files;

/// Old paths of the read side, which moved to [`crate::read`].
pub use crate::read::{blob_reader, load_tree, read_blob};

/// How to capture.
#[derive(Debug, Clone)]
pub struct CaptureOpts {
    /// The snapshot kind.
    pub kind: SnapshotKind,
    /// A free-text label shown in listings.
    pub label: Option<String>,
    /// Kept by retention whatever the policy says.
    pub pinned: bool,
    /// Capture whatever exists (missing platform, site folder, bindings or SQLite file are
    /// recorded as absent). Used for the pre-restore snapshot of a half-migrated site.
    pub tolerant: bool,
    /// Show a progress bar on a terminal.
    pub progress: bool,
    /// Take the site folder and the database dump from elsewhere (an imported backup) instead
    /// of the live site; the platform and binding files still come from disk.
    pub source: Option<ImportSource>,
    /// Shared by the sites of one run (`snapshot --all`): each platform is walked and read
    /// once.
    pub share: Option<std::sync::Arc<RunShare>>,
    /// How long a server dump may run (`--dump-timeout`); `None`: `SITESNAP_DUMP_TIMEOUT` or
    /// the default hour.
    pub dump_timeout: Option<std::time::Duration>,
}

/// Where an imported snapshot's site folder and dump come from.
#[derive(Debug, Clone)]
pub struct ImportSource {
    /// A folder holding the site folder's contents.
    pub site_dir: PathBuf,
    /// A file holding the database dump.
    pub dump: Option<PathBuf>,
    /// When the backup was taken (the snapshot's time).
    pub time: chrono::DateTime<chrono::Utc>,
    /// Where the backup came from, kept as the snapshot's note.
    pub note: String,
}

impl CaptureOpts {
    /// Options for a plain capture of `kind` (checkpoints are pinned).
    pub fn new(kind: SnapshotKind) -> Self {
        CaptureOpts {
            kind,
            label: None,
            pinned: kind.pinned_when_taken(),
            tolerant: false,
            progress: false,
            source: None,
            share: None,
            dump_timeout: None,
        }
    }
}

/// Stores a tree as a blob.
fn store_tree(sink: &ChunkSink, t: &Tree) -> Result<BlobRow> {
    let bytes = t.encode();
    let chunks = sink.put_bytes_parallel(&bytes, store::TREE_CHUNKS)?;
    let id = Hash::of_list(&chunks);
    Ok((id, ChunkList::Direct(chunks), bytes.len() as u64))
}

/// A new snapshot id: 16 random hex digits not used yet.
pub fn new_snapshot_id(cat: &Catalog) -> Result<String> {
    loop {
        let id = fsutil::random_hex(8);
        if !cat.snapshot_id_taken(&id)? && !id.starts_with("0000") {
            return Ok(id);
        }
    }
}

/// A captured snapshot: its packs are durable and indexed; it exists once committed
/// ([`commit`]).
pub struct Captured(PendingSnapshot);

impl Captured {
    /// The snapshot's record.
    pub fn record(&self) -> &SnapshotRecord {
        &self.0.0
    }
}

/// Captures `site`, currently on `platform`, into a new snapshot and commits it.
pub fn snapshot(
    repo: &Repo,
    site: &SiteRecord,
    platform: &Path,
    opts: &CaptureOpts,
) -> Result<SnapshotRecord> {
    let Captured((rec, blobs, cache_rows)) = capture(repo, site, platform, opts)?;
    crate::objects::commit_snapshot(repo, &rec, &blobs, &cache_rows)?;
    fsutil::failpoint("after-commit");
    Ok(rec)
}

/// Sites captured into one chunk sink and committed together (`snapshot --all`): one stream
/// of packs and one wait for durability per batch instead of one per site.
/// Each site's open sections are sealed in the background while the next site is captured.
pub struct Batch {
    sink: Arc<ChunkSink>,
    sealer: Sealer,
    /// The captured sites, each with the account of the compressed bytes it added.
    done: Vec<(Captured, Arc<AtomicU64>)>,
}

impl Batch {
    /// An empty batch with its own sink.
    pub fn new(repo: &Repo) -> Result<Batch> {
        let sink = Arc::new(repo.chunk_sink()?);
        let sealer = match Sealer::start(sink.clone()) {
            Ok(s) => s,
            Err(e) => {
                sink.abort();
                return Err(e);
            }
        };
        Ok(Batch {
            sink,
            sealer,
            done: Vec::new(),
        })
    }

    /// Captures `site`, currently on `platform`, into the batch. After a failure the caller
    /// commits (or drops) the batch and starts another: the failed capture's chunks may sit in
    /// the sink, whole and unreferenced (stored with the batch, collected by gc), or the sink
    /// itself may have failed.
    pub fn capture(
        &mut self,
        repo: &Repo,
        site: &SiteRecord,
        platform: &Path,
        opts: &CaptureOpts,
    ) -> Result<()> {
        let account = self.sink.begin_account();
        let c = capture_into(repo, site, platform, opts, &self.sink, SinkUse::Shared)?;
        // This site's chunks leave the open sections, so its added bytes are its own.
        self.sealer.seal_open(&account)?;
        self.done.push((c, account));
        Ok(())
    }

    /// The files-cache rows the batch's captured sites wait to commit.
    pub fn rows(&self) -> usize {
        self.done.iter().map(|(c, _)| c.0.2.len()).sum()
    }

    /// Makes every pack of the batch durable and indexed (invariant 1), then commits its
    /// snapshots together (a batch whose captures all failed only stops its sink) (see [`crate::objects::commit_snapshots`]). On failure nothing of
    /// the batch is committed, and the platforms the run shared are forgotten (their trees may
    /// not be durable).
    pub fn commit(self, repo: &Repo, opts: &CaptureOpts) -> Result<Vec<SnapshotRecord>> {
        let res = self.commit_inner(repo);
        if res.is_err()
            && let Some(run) = &opts.share
        {
            run.forget();
        }
        res
    }

    fn commit_inner(self, repo: &Repo) -> Result<Vec<SnapshotRecord>> {
        if self.done.is_empty() {
            // Every capture failed: stop the writer without storing what they left.
            self.sink.abort();
            return Ok(Vec::new());
        }
        if let Err(e) = self.sealer.wait().and_then(|_| self.sink.finish()) {
            self.sink.abort();
            return Err(e);
        }
        fsutil::failpoint("before-commit");
        let batch: Vec<PendingSnapshot> = (self.done.into_iter())
            .map(|(mut c, added)| {
                c.0.0.bytes_added = added.load(Ordering::Relaxed);
                c.0
            })
            .collect();
        let items: Vec<crate::catalog::SnapshotCommit<'_>> = batch
            .iter()
            .map(|(r, b, c)| (r, b.as_slice(), c.as_slice()))
            .collect();
        crate::objects::commit_snapshots(repo, &items)?;
        fsutil::failpoint("after-commit");
        Ok(batch.into_iter().map(|p| p.0).collect())
    }
}

/// Captures `site`, currently on `platform`: everything but the commit (its own sink,
/// finished: every pack durable and indexed).
pub fn capture(
    repo: &Repo,
    site: &SiteRecord,
    platform: &Path,
    opts: &CaptureOpts,
) -> Result<Captured> {
    let sink = repo.chunk_sink()?;
    let res = capture_into(repo, site, platform, opts, &sink, SinkUse::Own);
    if res.is_err() {
        // Stop the writer thread without indexing its last pack (packs it closed earlier are
        // durable and indexed: reused by the next capture, else garbage for gc).
        sink.abort();
    }
    res
}

/// Whether a capture has its sink to itself (and finishes it) or shares a batch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkUse {
    Own,
    Shared,
}

/// Captures `site` into `sink`.
fn capture_into(
    repo: &Repo,
    site: &SiteRecord,
    platform: &Path,
    opts: &CaptureOpts,
    sink: &ChunkSink,
    sink_use: SinkUse,
) -> Result<Captured> {
    let started = Instant::now();
    let c = Capture::check(repo, site, platform, opts)?;
    let meter = Meter(opts.progress);
    meter.phase(&format!("{}: walking", site.uri), 0, 0);
    let shared = c.shared_platform();
    let (walked, cache) = c.walk_and_load_cache(shared)?;
    fsutil::failpoint("walked");
    let (bytes, files) = walked.total();
    meter.phase(&format!("{}: storing", site.uri), bytes, files);
    c.store_all(walked, cache, sink, sink_use, meter, started)
}

/// Refuses an unknown kind, and any capture but a pre-restore one while a restore of the site
/// is unfinished.
fn check_kind_and_journal(repo: &Repo, site: &SiteRecord, opts: &CaptureOpts) -> Result<()> {
    if opts.kind != SnapshotKind::PreRestore
        && let Some(j) = repo.cat.open_journal_for(&site.uri)?
    {
        return Err(Error::JournalOpen {
            site: site.uri.clone(),
            journal: j.id,
        });
    }
    Ok(())
}

/// One capture, checked before anything is written.
struct Capture<'a> {
    repo: &'a Repo,
    site: &'a SiteRecord,
    platform: &'a Path,
    opts: &'a CaptureOpts,
    db: Option<Database>,
    /// The site folder on the platform.
    live_site_path: PathBuf,
    /// Where the site folder is read from (the live one, or an imported copy).
    site_path: PathBuf,
    platform_exists: bool,
    site_exists: bool,
    /// Paths the walks leave out (the SQLite files, an imported dump).
    skip: Vec<PathBuf>,
    import_dump: Option<PathBuf>,
    dump_db: bool,
    /// The platform's web root, relative to it.
    web_root: String,
    /// Which platform paths are code (other sites' folders and extra paths left out).
    filter: PlatformFilter,
}

/// The walked items of the four file parts.
struct Walked {
    /// The platform tree stored earlier in this run, when it is shared: then `platform` is
    /// empty.
    shared: Option<SharedPlatform>,
    platform: Vec<Item>,
    site: Vec<Item>,
    bindings: Vec<Item>,
    extra: Vec<Item>,
    /// The folders the extra paths were walked from (`extra`'s bases).
    extra_roots: Vec<ExtraRoot>,
}

impl Walked {
    /// The bytes and number of the files walked (the progress totals).
    fn total(&self) -> (u64, u64) {
        self.platform
            .iter()
            .chain(&self.site)
            .chain(&self.bindings)
            .chain(&self.extra)
            .filter(|i| i.entry.kind == crate::tree::Kind::File)
            .fold((0, 0), |(b, n), i| (b + i.entry.size, n + 1))
    }
}

impl<'a> Capture<'a> {
    /// Checks everything that can be checked before anything is written.
    fn check(
        repo: &'a Repo,
        site: &'a SiteRecord,
        platform: &'a Path,
        opts: &'a CaptureOpts,
    ) -> Result<Self> {
        check_kind_and_journal(repo, site, opts)?;
        let db = site.database_at(platform)?;
        let live_site_path = platform.join(&site.site_dir);
        let site_path = match &opts.source {
            Some(src) => src.site_dir.clone(),
            None => live_site_path.clone(),
        };
        let platform_exists = platform.is_dir();
        if !platform_exists && !opts.tolerant {
            return Err(Error::Invalid(format!(
                "platform {} of site '{}' does not exist",
                platform.display(),
                site.uri
            )));
        }
        let site_exists = site_path.is_dir();
        if !site_exists && !opts.tolerant {
            return Err(Error::Invalid(format!(
                "site directory {} of site '{}' does not exist",
                site_path.display(),
                site.uri
            )));
        }
        if site_exists && opts.source.is_none() {
            let canon = fs::canonicalize(platform).at(platform)?;
            fsutil::check_inside(&canon, &site_path)?;
        }
        let mut skip = db_side_files(db.as_ref());
        let import_dump = opts.source.as_ref().and_then(|s| s.dump.clone());
        skip.extend(import_dump.clone());
        let dump_db = match &db {
            Some(_) if opts.source.is_some() => import_dump.is_some(),
            Some(Database::Sqlite(p)) if opts.tolerant && !p.exists() => false,
            Some(d) => {
                d.check()?;
                true
            }
            None => false,
        };
        let web_root = crate::site::web_root(&repo.cat, site, platform)?;
        let filter =
            crate::site::platform_filter(&repo.cat, platform, &web_root, &site.extra_paths)?;
        if platform_exists {
            let canon = fs::canonicalize(platform).at(platform)?;
            for x in &site.extra_paths {
                fsutil::check_relative(x, "extra path")?;
                fsutil::check_inside(&canon, &platform.join(x))?;
            }
        }
        Ok(Capture {
            web_root,
            filter,
            repo,
            site,
            platform,
            opts,
            db,
            live_site_path,
            site_path,
            platform_exists,
            site_exists,
            skip,
            import_dump,
            dump_db,
        })
    }

    /// The key under which this capture's platform tree is shared with the run's other
    /// sites, or `None` when it is not shared (no run share, an import, a tolerant capture, no
    /// platform, or a site folder the platform filter would keep).
    fn share_key(&self) -> Option<Vec<u8>> {
        self.opts.share.as_ref()?;
        if self.opts.source.is_some() || self.opts.tolerant || !self.platform_exists {
            return None;
        }
        let rel = self.live_site_path.strip_prefix(self.platform).ok()?;
        if self.filter.keeps(rel, true) {
            return None;
        }
        let kept: Vec<&PathBuf> = self
            .skip
            .iter()
            .filter(|p| {
                p.strip_prefix(self.platform)
                    .is_ok_and(|r| self.filter.keeps(r, false))
            })
            .collect();
        Some(share::platform_key(
            self.platform,
            &self.filter.web_root,
            &self.filter.extra,
            &kept,
        ))
    }

    /// The platform tree an earlier site of the run stored, when this capture may share it.
    fn shared_platform(&self) -> Option<SharedPlatform> {
        match (&self.opts.share, self.share_key()) {
            (Some(run), Some(k)) => run.get(&k),
            _ => None,
        }
    }

    /// Walks the live trees and loads the files-cache rows that may vouch for their files.
    /// When the platform is walked, its rows (tens of thousands on a big platform) are loaded
    /// through a second catalogue connection at the same time as the walk.
    fn walk_and_load_cache(&self, shared: Option<SharedPlatform>) -> Result<(Walked, FilesCache)> {
        if shared.is_some() || !self.platform_exists {
            let is_shared = shared.is_some();
            let walked = self.walk(shared)?;
            return Ok((walked, self.load_cache(is_shared, None)?));
        }
        let path = Repo::catalog_path(&self.repo.root);
        let platform = self.platform.to_path_buf();
        let (walked, platform_rows) = std::thread::scope(|s| {
            let rows = s.spawn(move || {
                fsutil::failpoint_or_error("cache-loader")?;
                Catalog::open(&path)?.load_cache(&platform)
            });
            let walked = self.walk(None);
            let rows = rows
                .join()
                .unwrap_or_else(|_| Err(Error::Invalid("files cache loader panicked".into())));
            (walked, rows)
        });
        let walked = walked?;
        Ok((walked, self.load_cache(false, Some(platform_rows?))?))
    }

    /// The files-cache rows for the walked trees. The site folder lies inside the platform, so
    /// the platform's rows cover it (`platform_rows`, when loaded already); when the platform
    /// is `shared`, only the site folder's and extra paths' own rows are loaded. Then the
    /// binding files' rows.
    fn load_cache(&self, shared: bool, platform_rows: Option<FilesCache>) -> Result<FilesCache> {
        let cat = &self.repo.cat;
        let mut cache = match platform_rows {
            Some(rows) => rows,
            None if !self.platform_exists => FilesCache::default(),
            None if shared => {
                let mut c = cat.load_cache(&self.site_path)?;
                for x in &self.site.extra_paths {
                    c.extend(cat.load_cache(&self.platform.join(x))?);
                }
                c
            }
            None => cat.load_cache(self.platform)?,
        };
        for b in &self.site.bindings {
            cache.extend(cat.load_cache(b)?);
        }
        Ok(cache)
    }

    /// Walks the platform (without the site folder; not at all when an earlier site of the
    /// run stored it), the site folder and the binding files.
    fn walk(&self, shared: Option<SharedPlatform>) -> Result<Walked> {
        let platform = if self.platform_exists && shared.is_none() {
            let mut skip_p = self.skip.clone();
            skip_p.push(self.live_site_path.clone());
            walk_platform(self.platform, &self.filter, &skip_p)?
        } else {
            Vec::new()
        };
        let (extra, extra_roots) = if self.platform_exists {
            walk_extra(self.platform, &self.site.extra_paths, &self.skip)?
        } else {
            (Vec::new(), Vec::new())
        };
        let site = if self.site_exists {
            walk_site(&self.site_path, &self.skip)?
        } else {
            Vec::new()
        };
        let bindings = walk_bindings(&self.site.bindings, self.opts.tolerant)?;
        Ok(Walked {
            shared,
            platform,
            site,
            bindings,
            extra,
            extra_roots,
        })
    }

    /// Stores files, dump and trees and waits for every pack to be durable and indexed; the
    /// snapshot is then ready for its commit.
    fn store_all(
        &self,
        mut walked: Walked,
        cache: FilesCache,
        sink: &ChunkSink,
        sink_use: SinkUse,
        meter: Meter,
        started: Instant,
    ) -> Result<Captured> {
        let added_before = sink.stats.bytes_added.load(Ordering::Relaxed);
        let counters = Counters::default();
        let (mut cache_rows, dump) =
            self.store_files_and_dump(&mut walked, cache, sink, &counters, meter)?;
        fsutil::failpoint("db-stored");
        cache_rows.extend(dump.cache_row.clone());
        let mut blobs: Vec<BlobRow> = dump.blob.iter().cloned().collect();
        let mut publish = None;
        let (trees, files, bytes) = self.store_trees(walked, sink, &mut blobs, &mut publish)?;
        match sink_use {
            // Invariant 1: every pack is durable and indexed before the snapshot row exists
            // (a shared sink is finished by its batch's commit).
            SinkUse::Own => {
                sink.finish()?;
                fsutil::failpoint("before-commit");
            }
            // The batch seals this site's open sections (its `bytes_added` is set then).
            SinkUse::Shared => {}
        }
        let (site, opts, db) = (self.site, self.opts, self.db.as_ref());
        let rec = SnapshotRecord {
            id: new_snapshot_id(&self.repo.cat)?,
            site: site.uri.clone(),
            kind: opts.kind,
            label: opts.label.clone(),
            pinned: opts.pinned,
            time: opts.source.as_ref().map_or_else(fsutil::now, |s| s.time),
            platform_path: self.platform.to_path_buf(),
            platform_tree: trees[0],
            site_dir: site.site_dir.clone(),
            site_tree: trees[1],
            bindings_tree: trees[2],
            extra_tree: trees[3],
            web_root: Some(self.web_root.clone()),
            extra_paths: site.extra_paths.clone(),
            db_kind: db.map(|d| d.kind().to_string()),
            db_url: db.map(|d| d.redacted()),
            db_dump: dump.blob.as_ref().map(|b| b.0),
            files,
            bytes: bytes + dump.bytes,
            bytes_read: counters.bytes_read.load(Ordering::Relaxed),
            db_bytes: dump.bytes,
            bytes_added: sink.stats.bytes_added.load(Ordering::Relaxed) - added_before,
            duration_ms: started.elapsed().as_millis() as u64,
            note: opts.source.as_ref().map(|s| s.note.clone()),
        };
        if opts.source.is_some() {
            // An imported site folder is a temporary extraction: nothing to cache.
            let tmp = self.site_path.as_os_str().as_bytes();
            cache_rows.retain(|(p, _)| !p.starts_with(tmp));
        }
        // The platform tree's chunks are durable and indexed now, or (shared sink) will be
        // before any commit that refers to them; the sites that share it carry its blob row
        // in their own commits.
        if let (Some(run), Some(k), Some(p)) = (&self.opts.share, self.share_key(), publish) {
            run.put(k, p);
        }
        Ok(Captured((rec, blobs, cache_rows)))
    }

    /// Stores the walked files and the database dump: the dump on a thread of its own beside
    /// the files (see [`dump`]). Returns the new files-cache rows and the dump.
    fn store_files_and_dump(
        &self,
        walked: &mut Walked,
        cache: FilesCache,
        sink: &ChunkSink,
        counters: &Counters,
        meter: Meter,
    ) -> Result<(Vec<CacheRow>, Dump)> {
        let files = || -> Result<Vec<CacheRow>> {
            let rows = self.store_files(walked, cache, sink, counters, meter)?;
            fsutil::failpoint("files-stored");
            Ok(rows)
        };
        Ok(match self.plan_dump()? {
            DumpPlan::None => (files()?, Dump::none()),
            DumpPlan::Reused(d) => (files()?, d),
            // What is left of the dump once the files are stored shows as its own phase.
            DumpPlan::Run(job) => dump::beside(
                |cancel| job.run(sink, cancel),
                || {
                    let rows = files()?;
                    meter.phase(&format!("{}: database dump", self.site.uri), 0, 0);
                    Ok(rows)
                },
            )?,
        })
    }

    /// Stores the content of every walked file in one pass over platform, site and binding
    /// files, so both cores stay busy to the end instead of draining between the parts.
    /// Returns the new files-cache rows.
    fn store_files(
        &self,
        walked: &mut Walked,
        cache: FilesCache,
        sink: &ChunkSink,
        counters: &Counters,
        meter: Meter,
    ) -> Result<Vec<CacheRow>> {
        let (np, ns) = (walked.platform.len(), walked.site.len());
        let nb = walked.bindings.len();
        let ne = walked.extra.len();
        // The platform's items (most of them, usually) stay where they are: the others join
        // them and leave again, instead of every item being copied into a new list and out.
        let mut all = std::mem::take(&mut walked.platform);
        all.reserve(ns + nb + ne);
        all.append(&mut walked.site);
        all.append(&mut walked.bindings);
        all.append(&mut walked.extra);
        let bases = Bases {
            platform: self.platform,
            site: &self.site_path,
            extra: &walked.extra_roots,
        };
        let cache_rows = fill(
            &mut all,
            bases,
            Reading::Store(sink),
            cache,
            counters,
            meter,
        )?;
        walked.extra = all.split_off(np + ns + nb);
        walked.bindings = all.split_off(np + ns);
        walked.site = all.split_off(np);
        walked.platform = all;
        // No order needed: the files cache is written a folder at a time.
        Ok(cache_rows)
    }

    /// Plans the database dump: none, an unchanged SQLite database's earlier copy, or a dump
    /// to stream (see [`dump`]).
    fn plan_dump(&self) -> Result<DumpPlan<'_>> {
        let src = self.dump_db.then(|| DumpSource {
            db: self.db.as_ref().expect("database"),
            import: self.import_dump.as_deref(),
            structure_tables: self.site.structure_tables.clone().unwrap_or_default(),
            timeout: self.opts.dump_timeout,
        });
        DumpPlan::new(&self.repo.cat, self.repo.tmp_dir(), src)
    }

    /// Stores the platform (or takes the run's shared one; a newly stored one goes to
    /// `publish`), site, bindings and extra paths trees (platform and site only when
    /// present, extra paths only when the site has some); returns their ids, the number of
    /// files and their bytes.
    fn store_trees(
        &self,
        walked: Walked,
        sink: &ChunkSink,
        blobs: &mut Vec<BlobRow>,
        publish: &mut Option<SharedPlatform>,
    ) -> Result<([Option<Hash>; 4], u64, u64)> {
        let shared = walked.shared;
        let platform_tree = to_tree(walked.platform, root_meta(self.platform));
        // An imported folder's root is our temporary extraction: its metadata means nothing.
        let site_root = if self.opts.source.is_none() {
            root_meta(&self.site_path)
        } else {
            None
        };
        let site_tree = to_tree(walked.site, site_root);
        let bindings_tree = to_tree(walked.bindings, None);
        let extra_tree = to_tree(walked.extra, None);
        let mut ids = [None; 4];
        let (mut files, mut bytes) = (0, 0);
        match shared {
            Some(p) => {
                ids[0] = Some(p.tree.0);
                (files, bytes) = (p.files, p.bytes);
                blobs.push(p.tree);
            }
            None if self.platform_exists => {
                let b = store_tree(sink, &platform_tree)?;
                (files, bytes) = (platform_tree.files(), platform_tree.bytes());
                ids[0] = Some(b.0);
                let tree = b.clone();
                *publish = Some(SharedPlatform { tree, files, bytes });
                blobs.push(b);
            }
            None => {}
        }
        let parts = [
            (&site_tree, self.site_exists),
            (&bindings_tree, true),
            (&extra_tree, !self.site.extra_paths.is_empty()),
        ];
        for (i, (t, present)) in parts.into_iter().enumerate() {
            files += t.files();
            bytes += t.bytes();
            if present {
                let b = store_tree(sink, t)?;
                ids[i + 1] = Some(b.0);
                blobs.push(b);
            }
        }
        free_aside(platform_tree);
        Ok((ids, files, bytes))
    }
}

/// Trees of more entries than this are freed on a thread of their own.
const FREE_ASIDE_ENTRIES: usize = 10_000;

/// Frees a big tree on a thread of its own, off the capture's path to its commit: freeing
/// a 50,000-file platform's entries one by one took about 8 ms of a 140 ms repeat snapshot. A
/// process that ends first leaves the rest to the system; `snapshot --all` goes on with the
/// next site meanwhile. Where no thread can be started, here.
fn free_aside(t: Tree) {
    if t.entries.len() < FREE_ASIDE_ENTRIES {
        return;
    }
    // A thread that cannot be started drops its closure, and the tree with it, here.
    let _ = std::thread::Builder::new()
        .name("free-tree".into())
        .spawn(move || drop(t));
}
