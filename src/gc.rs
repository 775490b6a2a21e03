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
//!    leftovers in `data/tmp`.
//!
//! It refuses to delete anything when a tree cannot be read or a referenced chunk is missing
//! from the index (the referenced set would be wrong; `verify` says what is damaged). It runs
//! under the repository lock and never touches live sites.

use crate::catalog::PackUsage;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::reach;
use crate::repo::Repo;
use crate::store::{self, PackInfo, PackWriter};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Pack bytes beyond the chunks: magic (8) + header length (4); each chunk adds a header entry.
const PACK_OVERHEAD: u64 = 12;

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
    pub dry_run: bool,
    pub snapshots: u64,
    pub trees_read: u64,
    pub live_chunks: u64,
    pub packs_before: u64,
    pub bytes_before: u64,
    /// Packs removed because nothing in them is referenced.
    pub packs_deleted: u64,
    /// Packs whose live chunks were copied into new packs, then removed.
    pub packs_repacked: u64,
    pub packs_written: u64,
    pub bytes_repacked: u64,
    pub chunks_removed: u64,
    pub blobs_removed: u64,
    pub cache_rows_invalidated: u64,
    /// Pack files on disk that no catalogue row names (a crash between writing and indexing).
    pub orphan_packs_removed: u64,
    pub tmp_files_removed: u64,
    pub bytes_freed: u64,
    pub packs_after: u64,
    pub bytes_after: u64,
}

fn pack_bytes_needed(u: &PackUsage) -> u64 {
    u.live_bytes + u.live_chunks * store::HEADER_ENTRY as u64 + PACK_OVERHEAD
}

/// Pack files under `data/xx/` (64 hex digits), with their sizes.
fn pack_files(data: &Path) -> Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    for d in fs::read_dir(data).at(data)? {
        let d = d.at(data)?;
        let name = d.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let dir = d.path();
        for f in fs::read_dir(&dir).at(&dir)? {
            let f = f.at(&dir)?;
            let n = f.file_name().to_string_lossy().into_owned();
            if n.len() == 64 && n.starts_with(&name) && n.chars().all(|c| c.is_ascii_hexdigit()) {
                let md = f.metadata().at(f.path())?;
                if md.is_file() {
                    out.push((n, f.path(), md.len()));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn tmp_files(tmp: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    if !tmp.is_dir() {
        return Ok(out);
    }
    for f in fs::read_dir(tmp).at(tmp)? {
        let f = f.at(tmp)?;
        let md = fs::symlink_metadata(f.path()).at(f.path())?;
        if !md.is_dir() {
            out.push((f.path(), md.len()));
        }
    }
    out.sort();
    Ok(out)
}

fn remove_file(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
    }
}

/// Copies the live chunks of `packs` into new packs (each verified against its hash on the
/// way); returns the new, durable packs (not yet indexed).
fn repack(repo: &Repo, packs: &[&PackUsage]) -> Result<Vec<PackInfo>> {
    let data = repo.data_dir();
    let mut done = Vec::new();
    let mut cur: Option<PackWriter> = None;
    for u in packs {
        let path = store::pack_path(&data, &u.name);
        let bytes = fs::read(&path).map_err(|e| {
            Error::Corrupt(format!(
                "pack {} cannot be read ({e}); gc deleted nothing (run `sitesnap verify`)",
                u.name
            ))
        })?;
        if bytes.len() as u64 != u.size {
            return Err(Error::Corrupt(format!(
                "pack {} is {} bytes, the catalogue says {}; gc deleted nothing (run `sitesnap verify`)",
                u.name,
                bytes.len(),
                u.size
            )));
        }
        for e in repo.cat.live_chunks_in_pack(u.id)? {
            let end = e.offset as usize + e.clen as usize;
            let c = bytes.get(e.offset as usize..end).ok_or_else(|| {
                Error::Corrupt(format!(
                    "pack {}: chunk {} lies past its end",
                    u.name,
                    e.hash.short()
                ))
            })?;
            store::decode_chunk(&e.hash, c, e.ulen).map_err(|err| {
                Error::Corrupt(format!(
                    "{err} (in pack {}); gc deleted nothing (run `sitesnap verify --read-data`)",
                    u.name
                ))
            })?;
            if cur.is_none() {
                cur = Some(PackWriter::create(&data)?);
            }
            let w = cur.as_mut().expect("open");
            w.add(e.hash, c, e.ulen)?;
            if w.len() >= store::PACK_TARGET {
                done.push(cur.take().expect("open").finish()?);
                fsutil::failpoint("gc-repacked");
            }
        }
    }
    if let Some(w) = cur.take()
        && !w.is_empty()
    {
        done.push(w.finish()?);
        fsutil::failpoint("gc-repacked");
    }
    Ok(done)
}

/// Collects garbage. Needs the repository lock unless `dry_run`.
pub fn gc(repo: &Repo, opts: &GcOpts) -> Result<GcReport> {
    if !opts.dry_run && !repo.is_locked() {
        return Err(Error::Invalid(
            "gc needs the repository lock (internal error)".into(),
        ));
    }
    let cat = &repo.cat;
    let data = repo.data_dir();
    let mut rep = GcReport {
        dry_run: opts.dry_run,
        snapshots: cat.snapshots(None)?.len() as u64,
        ..GcReport::default()
    };

    let marked = reach::mark(repo, &HashSet::new())?;
    if let Some(u) = marked.unreadable.first() {
        return Err(Error::Corrupt(format!(
            "{} {} cannot be read ({}); gc deleted nothing (run `sitesnap verify`)",
            if u.tree { "tree" } else { "blob" },
            u.blob.short(),
            u.error
        )));
    }
    let missing = cat.live_missing()?;
    if !missing.is_empty() {
        return Err(Error::Corrupt(format!(
            "{} referenced chunk(s) are missing from the index (first: {}); gc deleted nothing (run `sitesnap verify`)",
            missing.len(),
            missing[0].short()
        )));
    }
    rep.trees_read = marked.trees;
    rep.live_chunks = marked.chunks;
    fsutil::failpoint("gc-marked");

    let usage = cat.pack_usage()?;
    rep.packs_before = usage.len() as u64;
    let indexed: HashSet<&str> = usage.iter().map(|u| u.name.as_str()).collect();
    let files = pack_files(&data)?;
    let orphans: Vec<&(String, PathBuf, u64)> = files
        .iter()
        .filter(|(n, _, _)| !indexed.contains(n.as_str()))
        .collect();
    let tmp = tmp_files(&repo.tmp_dir())?;
    rep.bytes_before =
        files.iter().map(|f| f.2).sum::<u64>() + tmp.iter().map(|t| t.1).sum::<u64>();

    let mut dead: Vec<&PackUsage> = Vec::new();
    let mut partial: Vec<&PackUsage> = Vec::new();
    for u in &usage {
        if u.live_chunks == 0 {
            dead.push(u);
        } else {
            let unused = u.size.saturating_sub(pack_bytes_needed(u));
            if unused as f64 > opts.repack_threshold * u.size as f64 {
                partial.push(u);
            }
        }
    }
    rep.tmp_files_removed = tmp.len() as u64;
    let old_bytes =
        |dead: &[&PackUsage], partial: &[&PackUsage], orphans: &[&(String, PathBuf, u64)]| {
            dead.iter().chain(partial).map(|u| u.size).sum::<u64>()
                + orphans.iter().map(|o| o.2).sum::<u64>()
                + tmp.iter().map(|t| t.1).sum::<u64>()
        };

    if opts.dry_run {
        rep.packs_deleted = dead.len() as u64;
        rep.packs_repacked = partial.len() as u64;
        rep.orphan_packs_removed = orphans.len() as u64;
        let new_bytes: u64 = partial.iter().map(|u| pack_bytes_needed(u)).sum();
        rep.bytes_repacked = partial.iter().map(|u| u.live_bytes).sum();
        rep.packs_written = new_bytes.div_ceil(store::PACK_TARGET);
        rep.chunks_removed = usage.iter().map(|u| u.chunks - u.live_chunks).sum();
        rep.bytes_freed = old_bytes(&dead, &partial, &orphans).saturating_sub(new_bytes);
        rep.packs_after =
            rep.packs_before - rep.packs_deleted - rep.packs_repacked + rep.packs_written;
        rep.bytes_after = rep.bytes_before.saturating_sub(rep.bytes_freed);
        return Ok(rep);
    }

    // 1. New packs first, durable, then indexed.
    let new_packs = repack(repo, &partial)?;
    for p in &new_packs {
        cat.move_chunks(p)?;
    }
    rep.packs_written = new_packs.len() as u64;
    rep.bytes_repacked = new_packs.iter().map(|p| p.size).sum();
    fsutil::failpoint("gc-indexed");
    // A pack is named by its content: a new pack can be byte for byte one that is already on
    // disk (written by a gc that was killed before indexing it). It now holds live chunks.
    let new_names: HashSet<&str> = new_packs.iter().map(|p| p.name.as_str()).collect();
    dead.retain(|u| !new_names.contains(u.name.as_str()));
    partial.retain(|u| !new_names.contains(u.name.as_str()));
    let orphans: Vec<_> = orphans
        .into_iter()
        .filter(|o| !new_names.contains(o.0.as_str()))
        .collect();

    // 2. Then the rows: cache, dead chunks, dead blobs, emptied packs, in one transaction.
    let drop_ids: Vec<i64> = dead.iter().chain(&partial).map(|u| u.id).collect();
    rep.packs_deleted = dead.len() as u64;
    rep.packs_repacked = partial.len() as u64;
    rep.orphan_packs_removed = orphans.len() as u64;
    let rows = cat.delete_dead(&drop_ids)?;
    rep.chunks_removed = rows.chunks;
    rep.blobs_removed = rows.blobs;
    rep.cache_rows_invalidated = rows.cache_rows;
    fsutil::failpoint("gc-rows-deleted");

    // 3. Then the files no row names any more.
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for u in dead.iter().chain(&partial) {
        let p = store::pack_path(&data, &u.name);
        remove_file(&p)?;
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
        fsutil::failpoint("gc-pack-deleted");
    }
    for (_, p, _) in &orphans {
        remove_file(p)?;
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for (p, _) in &tmp {
        remove_file(p)?;
    }
    if !tmp.is_empty() {
        dirs.insert(repo.tmp_dir());
    }
    for d in &dirs {
        fsutil::sync_dir(d)?;
    }
    let after = pack_files(&data)?;
    rep.packs_after = after.len() as u64;
    rep.bytes_after = after.iter().map(|f| f.2).sum::<u64>()
        + tmp_files(&repo.tmp_dir())?.iter().map(|t| t.1).sum::<u64>();
    rep.bytes_freed = rep.bytes_before.saturating_sub(rep.bytes_after);
    Ok(rep)
}
