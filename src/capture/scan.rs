//! Scanning live trees without storing anything, for drift checks and diffs: content is hashed
//! only where the files cache cannot vouch for it.

use super::fill::{Counters, fill};
use super::walk::{
    Item, db_side_files, root_meta, to_tree, walk_bindings, walk_extra, walk_platform, walk_site,
};
use crate::catalog::{CacheEntry, Catalog};
use crate::db::Database;
use crate::error::Result;
use crate::tree::{PlatformFilter, RootMeta, Tree};
use indicatif::ProgressBar;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Scans a live platform into a tree without storing anything (content hashed only where the
/// files cache cannot vouch for it).
/// `filter` says which paths are platform code (web root, other sites' folders, extra paths).
pub fn scan_platform(
    cat: &Catalog,
    platform: &Path,
    filter: &PlatformFilter,
    skip: &[PathBuf],
) -> Result<Tree> {
    let items = walk_platform(platform, filter, skip)?;
    hash_only(items, &cat.load_cache(platform)?, root_meta(platform))
}

/// Scans a site's live extra paths (relative to `platform`) into one tree without storing
/// anything.
pub fn scan_extra(
    cat: &Catalog,
    platform: &Path,
    extra: &[String],
    db: Option<&Database>,
) -> Result<Tree> {
    let items = walk_extra(platform, extra, &db_side_files(db))?;
    hash_only(items, &cat.load_cache(platform)?, None)
}

/// Scans a live site directory into a tree without storing anything.
pub fn scan_site_dir(cat: &Catalog, dir: &Path, db: Option<&Database>) -> Result<Tree> {
    let items = walk_site(dir, &db_side_files(db))?;
    hash_only(items, &cat.load_cache(dir)?, root_meta(dir))
}

/// Scans live binding files into a tree without storing anything.
pub fn scan_bindings(cat: &Catalog, bindings: &[PathBuf]) -> Result<Tree> {
    let mut cache = HashMap::new();
    for b in bindings {
        cache.extend(cat.load_cache(b)?);
    }
    hash_only(walk_bindings(bindings, true)?, &cache, None)
}

/// Fills walked items from the files cache or by hashing their content, storing nothing.
fn hash_only(
    mut items: Vec<Item>,
    cache: &HashMap<Vec<u8>, CacheEntry>,
    root: Option<RootMeta>,
) -> Result<Tree> {
    let counters = Counters::default();
    fill(&mut items, None, cache, &counters, &ProgressBar::hidden())?;
    Ok(to_tree(items, root))
}
