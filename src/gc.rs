//! Garbage collection: removes the data no snapshot refers to any more (after `prune` or
//! `forget`, or left behind by a crash) and reports the bytes freed. It marks the live set
//! (`reach`), then, in an order that never loses a chunk a snapshot needs even if killed at any
//! point:
//! 1. copies the live chunks of packs that are mostly garbage (more than `repack_threshold`
//!    unused) into new packs, written and fsynced first, then indexed (the index rows move to
//!    the new packs in one transaction);
//! 2. in one transaction deletes the files-cache rows that name a dead chunk, the index rows of
//!    dead chunks, the blob rows no snapshot names, and the rows of packs left empty;
//! 3. only then deletes those pack files, then pack files no row names (left by a crash) and
//!    unfinished uploads (leftovers in `data/tmp`).
//!
//! It refuses to delete anything when a tree cannot be read or a referenced chunk is missing
//! from the index (the referenced set would be wrong; `verify` says what is damaged). It runs
//! under the repository lock and never touches live sites.
//!
//! [`plan`] marks and decides (a typed [`GcPlan`]: what would be removed or repacked, and the
//! bytes); [`execute`] carries a plan out. A dry run is a plan and its [`GcPlan::estimate`].
//! Packs, orphans and leftovers are reached only through the repository's backend.

use crate::catalog::PackUsage;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::reach;
use crate::repo::Repo;
use crate::store::{
    self, Backend, FrameCache, Incomplete, ObjectInfo, ObjectKind, ObjectName, PackFormat,
    PackInfo, PackRoller,
};
use std::collections::HashSet;

/// How to collect.
#[derive(Debug, Clone)]
pub struct GcOpts {
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Repack a pack whose unused share of its size exceeds this (0.3 = 30%).
    pub repack_threshold: f64,
}

impl Default for GcOpts {
    fn default() -> Self {
        GcOpts {
            dry_run: false,
            repack_threshold: 0.3,
        }
    }
}

/// What gc did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Snapshots in the repository.
    pub snapshots: u64,
    /// Distinct trees read to mark the live set.
    pub trees_read: u64,
    /// Chunks some snapshot refers to.
    pub live_chunks: u64,
    /// Indexed packs before.
    pub packs_before: u64,
    /// Bytes of all objects and unfinished uploads before.
    pub bytes_before: u64,
    /// Packs removed because nothing in them is referenced.
    pub packs_deleted: u64,
    /// Packs whose live chunks were copied into new packs, then removed.
    pub packs_repacked: u64,
    /// New packs written by the repack.
    pub packs_written: u64,
    /// Bytes the repack wrote (estimated live bytes in a dry run).
    pub bytes_repacked: u64,
    /// Index rows of chunks no snapshot refers to.
    pub chunks_removed: u64,
    /// Blob rows no snapshot names.
    pub blobs_removed: u64,
    /// Files-cache rows that named a removed chunk.
    pub cache_rows_invalidated: u64,
    /// Pack files on disk that no catalogue row names (a crash between writing and indexing).
    pub orphan_packs_removed: u64,
    /// Unfinished uploads removed (`data/tmp` leftovers).
    pub tmp_files_removed: u64,
    /// Blob lists, pins and superseded site objects no manifest refers to, removed.
    pub objects_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Packs after.
    pub packs_after: u64,
    /// Bytes of all objects and unfinished uploads after.
    pub bytes_after: u64,
    /// Folders and files a closed restore left aside (`.<name>.sitesnap-replaced-*`, ...)
    /// removed (see `leftovers`).
    pub leftovers_removed: u64,
    /// Bytes of the files in them.
    pub leftover_bytes: u64,
    /// Leftovers were not looked at: a restore journal is open.
    pub leftovers_held: bool,
}

/// What a gc would do, decided against the live set marked by [`plan`]. The live set lives on
/// the repository's catalogue connection: execute a plan on the repository it was made on,
/// before anything marks again.
#[derive(Debug, Clone, Default)]
pub struct GcPlan {
    /// Snapshots in the repository.
    pub snapshots: u64,
    /// Distinct trees read to mark the live set.
    pub trees_read: u64,
    /// Chunks some snapshot refers to.
    pub live_chunks: u64,
    /// Indexed packs.
    pub packs_before: u64,
    /// Bytes of pack objects and unfinished uploads.
    pub bytes_before: u64,
    /// Index rows of chunks no snapshot refers to.
    pub dead_chunks: u64,
    /// Packs holding no live chunk: removed.
    pub dead: Vec<PackUsage>,
    /// Packs mostly unused: their live chunks are copied into new packs, then removed.
    pub repack: Vec<PackUsage>,
    /// Pack objects no catalogue row names (a crash between writing and indexing): removed.
    pub orphans: Vec<ObjectInfo>,
    /// Unfinished uploads: removed.
    pub incomplete: Vec<Incomplete>,
    /// Store objects no manifest refers to (blob lists, pins, superseded site versions):
    /// removed.
    pub objects: Vec<ObjectInfo>,
}

impl GcPlan {
    /// Bytes the repacked packs' live chunks will take in new packs.
    pub fn repack_bytes_needed(&self) -> u64 {
        self.repack.iter().map(pack_bytes_needed).sum()
    }

    /// Bytes of everything the plan removes (before writing new packs).
    pub fn bytes_removed(&self) -> u64 {
        self.dead
            .iter()
            .chain(&self.repack)
            .map(|u| u.size)
            .sum::<u64>()
            + self.orphans.iter().map(|o| o.size).sum::<u64>()
            + self.incomplete.iter().map(|t| t.size).sum::<u64>()
            + self.objects.iter().map(|o| o.size).sum::<u64>()
    }

    /// What executing the plan would report (the dry run's report).
    pub fn estimate(&self) -> GcReport {
        let new_bytes = self.repack_bytes_needed();
        let mut rep = self.report_base(true);
        rep.packs_deleted = self.dead.len() as u64;
        rep.packs_repacked = self.repack.len() as u64;
        rep.orphan_packs_removed = self.orphans.len() as u64;
        rep.bytes_repacked = self.repack.iter().map(|u| u.live_bytes).sum();
        rep.packs_written = new_bytes.div_ceil(store::PACK_TARGET);
        rep.chunks_removed = self.dead_chunks;
        rep.bytes_freed = self.bytes_removed().saturating_sub(new_bytes);
        rep.packs_after =
            rep.packs_before - rep.packs_deleted - rep.packs_repacked + rep.packs_written;
        rep.bytes_after = rep.bytes_before.saturating_sub(rep.bytes_freed);
        rep
    }

    fn report_base(&self, dry_run: bool) -> GcReport {
        GcReport {
            dry_run,
            snapshots: self.snapshots,
            trees_read: self.trees_read,
            live_chunks: self.live_chunks,
            packs_before: self.packs_before,
            bytes_before: self.bytes_before,
            tmp_files_removed: self.incomplete.len() as u64,
            objects_removed: self.objects.len() as u64,
            ..GcReport::default()
        }
    }
}

fn pack_bytes_needed(u: &PackUsage) -> u64 {
    store::pack::pack_size_for(u.live_chunks, u.live_bytes)
}

/// "gc deleted nothing" errors.
fn refuse(what: String, hint: &str) -> Error {
    Error::Corrupt(format!(
        "{what}; gc deleted nothing (run `sitesnap {hint}`)"
    ))
}

/// Marks the live set and refuses when it cannot be trusted.
fn mark(repo: &Repo, plan: &mut GcPlan) -> Result<()> {
    let marked = reach::mark(repo, &HashSet::new())?;
    if let Some(u) = marked.unreadable.first() {
        return Err(refuse(
            format!(
                "{} {} cannot be read ({})",
                if u.tree { "tree" } else { "blob" },
                u.blob.short(),
                u.error
            ),
            "verify",
        ));
    }
    let missing = repo.cat.live_missing()?;
    if !missing.is_empty() {
        return Err(refuse(
            format!(
                "{} referenced chunk(s) are missing from the index (first: {})",
                missing.len(),
                missing[0].short()
            ),
            "verify",
        ));
    }
    plan.trees_read = marked.trees;
    plan.live_chunks = marked.chunks;
    Ok(())
}

/// Marks the live set and decides what to remove and repack. Changes nothing. Refuses while
/// the catalogue and the store disagree: the live set is marked from the catalogue, which
/// must then list exactly the snapshots whose manifests are in the store, with the same blobs.
pub fn plan(repo: &Repo, opts: &GcOpts) -> Result<GcPlan> {
    let view = crate::objects::refuse_if_disagree(repo, "gc")?;
    let backend = repo.backend();
    let mut plan = GcPlan {
        snapshots: repo.cat.snapshots(None)?.len() as u64,
        ..GcPlan::default()
    };
    mark(repo, &mut plan)?;
    for name in crate::objects::unreferenced(&view)? {
        if let Some(size) = backend.size(&name)? {
            plan.objects.push(ObjectInfo { name, size });
        }
    }
    fsutil::failpoint("gc-marked");

    let usage = repo.cat.pack_usage()?;
    plan.packs_before = usage.len() as u64;
    let indexed: HashSet<&str> = usage.iter().map(|u| u.name.as_str()).collect();
    let objects = backend.list(ObjectKind::Pack)?;
    plan.incomplete = backend.incomplete()?;
    plan.bytes_before = store_bytes(&**backend)?;
    plan.orphans = objects
        .into_iter()
        .filter(|o| !indexed.contains(o.name.name.as_str()))
        .collect();
    plan.dead_chunks = usage.iter().map(|u| u.chunks - u.live_chunks).sum();
    // A pack whose damaged chunk was stored anew is rewritten (its damaged bytes go); one
    // still holding an unhealed damaged chunk cannot be copied and stays as it is.
    let healed = repo.cat.damaged_packs(true)?;
    let damaged = repo.cat.damaged_packs(false)?;
    for u in usage {
        if u.live_chunks == 0 {
            plan.dead.push(u);
        } else if !damaged.contains(&u.name) {
            let unused = u.size.saturating_sub(pack_bytes_needed(&u));
            if healed.contains(&u.name) || unused as f64 > opts.repack_threshold * u.size as f64 {
                plan.repack.push(u);
            }
        }
    }
    Ok(plan)
}

/// Reads a pack to repack, checking its size against the catalogue.
fn read_pack(backend: &dyn Backend, u: &PackUsage) -> Result<Vec<u8>> {
    let bytes = backend.read(&ObjectName::pack(&u.name)).map_err(|e| {
        refuse(
            format!("pack {} cannot be read ({})", u.name, store::cause(&e)),
            "verify",
        )
    })?;
    if bytes.len() as u64 != u.size {
        return Err(refuse(
            format!(
                "pack {} is {} bytes, the catalogue says {}",
                u.name,
                bytes.len(),
                u.size
            ),
            "verify",
        ));
    }
    Ok(bytes)
}

/// Copies the live chunks of `packs` into new packs, grouped again into frames (each chunk
/// verified against its hash on the way); returns the new, durable packs (not yet indexed).
fn repack(repo: &Repo, packs: &[PackUsage]) -> Result<Vec<PackInfo>> {
    let mut done = Vec::new();
    let codec = repo.codec();
    let mut roller = PackRoller::new(repo.backend().clone(), codec.clone());
    let total: u64 = packs.iter().map(|u| u.size).sum();
    crate::progress::phase_of("gc: repacking", total, packs.len() as u64, "packs");
    for u in packs {
        let bytes = read_pack(&**repo.backend(), u)?;
        let format = bytes
            .get(..8)
            .and_then(PackFormat::of_magic)
            .map(|(f, _)| f)
            .ok_or_else(|| refuse(format!("pack {} has a bad magic", u.name), "verify"))?;
        let mut frames = FrameCache::default();
        for e in repo.cat.live_chunks_in_pack(u.id)? {
            let stored = || {
                let end = e.offset as usize + e.clen as usize;
                bytes
                    .get(e.offset as usize..end)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        Error::Corrupt(format!(
                            "pack {}: chunk {} lies past its end",
                            u.name,
                            e.hash.short()
                        ))
                    })
            };
            let data = frames
                .chunk(&codec, &u.name, format, &e, stored)
                .map_err(|err| {
                    refuse(format!("{err} (in pack {})", u.name), "verify --read-data")
                })?;
            if let Some(sealed) = roller.add_chunk(e.hash, &data)? {
                done.push(sealed.commit()?);
                fsutil::failpoint("gc-repacked");
            }
        }
        crate::progress::add(u.size, 1);
    }
    for sealed in roller.finish()? {
        done.push(sealed.commit()?);
        fsutil::failpoint("gc-repacked");
    }
    Ok(done)
}

/// Carries out a plan made by [`plan`] on the same repository: new packs first (durable, then
/// indexed), then the rows, then the objects no row names. Needs the repository lock.
pub fn execute(repo: &Repo, mut plan: GcPlan) -> Result<GcReport> {
    if !repo.is_locked() {
        return Err(Error::Invalid(
            "gc needs the repository lock (internal error)".into(),
        ));
    }
    let mut rep = plan.report_base(false);
    // 0. Unfinished uploads first: removing them needs no room and makes some (a full disk).
    for t in std::mem::take(&mut plan.incomplete) {
        repo.backend().remove_incomplete(&t.id)?;
    }
    // 1. New packs first, durable, then indexed.
    let new_packs = repack(repo, &plan.repack)?;
    for p in &new_packs {
        repo.cat.move_chunks(p)?;
    }
    rep.packs_written = new_packs.len() as u64;
    rep.bytes_repacked = new_packs.iter().map(|p| p.size).sum();
    fsutil::failpoint("gc-indexed");
    // A pack is named by its content: a new pack can be byte for byte one that is already
    // there (written by a gc that was killed before indexing it). It now holds live chunks.
    let new_names: HashSet<&str> = new_packs.iter().map(|p| p.name.as_str()).collect();
    plan.dead.retain(|u| !new_names.contains(u.name.as_str()));
    plan.repack.retain(|u| !new_names.contains(u.name.as_str()));
    plan.orphans
        .retain(|o| !new_names.contains(o.name.name.as_str()));

    // 2. Then the rows: cache, dead chunks, dead blobs, emptied packs, in one transaction.
    let drop_ids: Vec<i64> = plan.dead.iter().chain(&plan.repack).map(|u| u.id).collect();
    rep.packs_deleted = plan.dead.len() as u64;
    rep.packs_repacked = plan.repack.len() as u64;
    rep.orphan_packs_removed = plan.orphans.len() as u64;
    let rows = repo.cat.delete_dead(&drop_ids)?;
    rep.chunks_removed = rows.chunks;
    rep.blobs_removed = rows.blobs;
    rep.cache_rows_invalidated = rows.cache_rows;
    repo.cat.forget_damage_of_removed_packs()?;
    fsutil::failpoint("gc-rows-deleted");

    // 3. Then the objects no row names any more.
    remove_objects(&**repo.backend(), &plan)?;
    let backend = repo.backend();
    let after = backend.list(ObjectKind::Pack)?;
    rep.packs_after = after.len() as u64;
    rep.bytes_after = store_bytes(&**backend)?;
    rep.bytes_freed = rep.bytes_before.saturating_sub(rep.bytes_after);
    Ok(rep)
}

/// Bytes of every object of every kind, and of unfinished uploads.
fn store_bytes(backend: &dyn Backend) -> Result<u64> {
    let mut n = backend.incomplete()?.iter().map(|t| t.size).sum::<u64>();
    for kind in ObjectKind::ALL {
        n += backend.list(kind)?.iter().map(|o| o.size).sum::<u64>();
    }
    Ok(n)
}

/// Removes the plan's dead and repacked packs, orphans and unfinished uploads.
fn remove_objects(backend: &dyn Backend, plan: &GcPlan) -> Result<()> {
    for u in plan.dead.iter().chain(&plan.repack) {
        backend.remove(&ObjectName::pack(&u.name))?;
        fsutil::failpoint("gc-pack-deleted");
    }
    for o in &plan.orphans {
        backend.remove(&o.name)?;
    }
    for t in &plan.incomplete {
        backend.remove_incomplete(&t.id)?;
    }
    for o in &plan.objects {
        backend.remove(&o.name)?;
    }
    Ok(())
}

/// Removes every unfinished upload (`data/tmp` leftovers of a killed or failed writer, such
/// as a snapshot that hit a full disk): it needs no room and frees some. Needs the repository
/// lock (no writer can be filling one). Returns how many and their bytes.
pub fn remove_unfinished(repo: &Repo) -> Result<(u64, u64)> {
    if !repo.is_locked() {
        return Err(Error::Invalid(
            "removing unfinished uploads needs the repository lock (internal error)".into(),
        ));
    }
    let backend = repo.backend();
    let (mut n, mut bytes) = (0, 0);
    for t in backend.incomplete()? {
        if backend.remove_incomplete(&t.id)? {
            n += 1;
            bytes += t.size;
        }
    }
    Ok((n, bytes))
}

/// Collects garbage: [`plan`], then [`execute`] unless `dry_run` (which reports the plan's
/// estimate). Needs the repository lock unless `dry_run`.
pub fn gc(repo: &Repo, opts: &GcOpts) -> Result<GcReport> {
    if !opts.dry_run && !repo.is_locked() {
        return Err(Error::Invalid(
            "gc needs the repository lock (internal error)".into(),
        ));
    }
    let plan = plan(repo, opts)?;
    let leftovers = crate::leftovers::find(repo)?;
    let mut rep = if opts.dry_run {
        plan.estimate()
    } else {
        execute(repo, plan)?
    };
    match leftovers {
        None => rep.leftovers_held = true,
        Some(found) => {
            if !opts.dry_run {
                crate::leftovers::remove(&found)?;
            }
            rep.leftovers_removed = found.len() as u64;
            rep.leftover_bytes = found.iter().map(|l| l.bytes).sum();
        }
    }
    Ok(rep)
}
