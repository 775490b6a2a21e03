//! Scanning live trees without storing anything, for drift checks and diffs: content is hashed
//! only where the files cache cannot vouch for it.

use super::fill::{Counters, Reading, fill};
use super::walk::{
    Bases, Item, db_side_files, root_meta, to_tree, walk_bindings, walk_extra, walk_platform,
    walk_site,
};
use crate::catalog::FilesCache;
use crate::db::Database;
use crate::error::Result;
use crate::progress::Meter;
use crate::repo::Repo;
use crate::store::ChunkCodec;
use crate::tree::{PlatformFilter, RootMeta, Tree};
use std::path::{Path, PathBuf};

/// Scans a live platform into a tree without storing anything (content hashed only where the
/// files cache cannot vouch for it).
/// `filter` says which paths are platform code (web root, other sites' folders, extra paths).
pub fn scan_platform(
    repo: &Repo,
    platform: &Path,
    filter: &PlatformFilter,
    skip: &[PathBuf],
) -> Result<Tree> {
    let items = walk_platform(platform, filter, skip)?;
    hash_only(
        repo,
        items,
        Bases::only(platform),
        repo.cat.load_cache(platform)?,
        root_meta(platform),
    )
}

/// Scans a site's live extra paths (relative to `platform`) into one tree without storing
/// anything.
pub fn scan_extra(
    repo: &Repo,
    platform: &Path,
    extra: &[String],
    db: Option<&Database>,
) -> Result<Tree> {
    let (items, roots) = walk_extra(platform, extra, &db_side_files(db))?;
    let bases = Bases {
        extra: &roots,
        ..Bases::only(platform)
    };
    hash_only(repo, items, bases, repo.cat.load_cache(platform)?, None)
}

/// Scans a live site directory into a tree without storing anything.
pub fn scan_site_dir(repo: &Repo, dir: &Path, db: Option<&Database>) -> Result<Tree> {
    let items = walk_site(dir, &db_side_files(db))?;
    let bases = Bases::only(dir);
    hash_only(
        repo,
        items,
        bases,
        repo.cat.load_cache(dir)?,
        root_meta(dir),
    )
}

/// Scans live binding files into a tree without storing anything.
pub fn scan_bindings(repo: &Repo, bindings: &[PathBuf]) -> Result<Tree> {
    let mut cache = FilesCache::default();
    for b in bindings {
        cache.extend(repo.cat.load_cache(b)?);
    }
    let items = walk_bindings(bindings, true)?;
    hash_only(repo, items, Bases::only(Path::new("/")), cache, None)
}

/// Fills walked items from the files cache or by hashing their content, storing nothing.
fn hash_only(
    repo: &Repo,
    mut items: Vec<Item>,
    bases: Bases<'_>,
    cache: FilesCache,
    root: Option<RootMeta>,
) -> Result<Tree> {
    let counters = Counters::default();
    let codec: ChunkCodec = repo.codec();
    fill(
        &mut items,
        bases,
        Reading::Hash(&codec),
        cache,
        &counters,
        Meter(false),
    )?;
    Ok(to_tree(items, root))
}
