//! `sitesnap stats`: how big the repository is and how much deduplication saves, like
//! `restic stats` / `borg info`. Read-only; sizes come from the catalogue and the backend's
//! object listing (never from walking `data/`).

use crate::catalog::SnapshotRecord;
use crate::error::Result;
use crate::repo::Repo;
use crate::store::ObjectKind;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Bytes the repository takes: every stored object plus the catalogue.
    pub size_on_disk: u64,
    /// The catalogue file.
    pub catalog_bytes: u64,
    /// Pack files and their bytes.
    pub packs: u64,
    pub pack_bytes: u64,
    /// Other store objects (manifests, blob lists, site objects, pins) and their bytes.
    pub objects: u64,
    pub object_bytes: u64,
    /// Distinct chunks, their plain and compressed bytes.
    pub chunks: u64,
    pub unique_bytes: u64,
    pub compressed_bytes: u64,
    /// Snapshots, and what restoring every one of them would write (files and dumps).
    pub snapshots: u64,
    pub logical_bytes: u64,
    /// `logical_bytes / unique_bytes` (0 for an empty repository).
    pub dedup_ratio: f64,
    /// `unique_bytes / compressed_bytes` (0 for an empty repository).
    pub compression_ratio: f64,
    /// Per site, by URI.
    pub sites: Vec<SiteStats>,
    /// Per platform path.
    pub platforms: Vec<PlatformStats>,
}

/// One site's snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct SiteStats {
    pub site: String,
    pub snapshots: u64,
    /// Files and dump bytes of all its snapshots together.
    pub logical_bytes: u64,
    /// Bytes its snapshots added to the store when taken.
    pub added_bytes: u64,
    pub newest: Option<DateTime<Utc>>,
}

/// One platform path, as the snapshots recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformStats {
    pub path: PathBuf,
    pub snapshots: u64,
    /// Sites snapshotted on it.
    pub sites: Vec<String>,
    /// Distinct platform trees (code versions) captured at this path.
    pub versions: u64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Computes the report.
pub fn stats(repo: &Repo) -> Result<Stats> {
    let snaps = repo.cat.snapshots(None)?;
    let chunks = repo.cat.chunk_totals()?;
    let (mut packs, mut pack_bytes, mut objects, mut object_bytes) = (0, 0, 0, 0);
    for kind in ObjectKind::ALL {
        for o in repo.backend().list(kind)? {
            if kind == ObjectKind::Pack {
                packs += 1;
                pack_bytes += o.size;
            } else {
                objects += 1;
                object_bytes += o.size;
            }
        }
    }
    let catalog_bytes = std::fs::metadata(Repo::catalog_path(&repo.root))
        .map(|m| m.len())
        .unwrap_or(0);
    let logical_bytes = snaps.iter().map(logical).sum();
    Ok(Stats {
        size_on_disk: pack_bytes + object_bytes + catalog_bytes,
        catalog_bytes,
        packs,
        pack_bytes,
        objects,
        object_bytes,
        chunks: chunks.chunks,
        unique_bytes: chunks.plain,
        compressed_bytes: chunks.stored,
        snapshots: snaps.len() as u64,
        logical_bytes,
        dedup_ratio: ratio(logical_bytes, chunks.plain),
        compression_ratio: ratio(chunks.plain, chunks.stored),
        sites: per_site(&snaps),
        platforms: per_platform(&snaps),
    })
}

/// What restoring `s` writes: its files and its dump.
fn logical(s: &SnapshotRecord) -> u64 {
    s.bytes + s.db_bytes
}

fn per_site(snaps: &[SnapshotRecord]) -> Vec<SiteStats> {
    let mut m: BTreeMap<&str, SiteStats> = BTreeMap::new();
    for s in snaps {
        let e = m.entry(&s.site).or_insert_with(|| SiteStats {
            site: s.site.clone(),
            snapshots: 0,
            logical_bytes: 0,
            added_bytes: 0,
            newest: None,
        });
        e.snapshots += 1;
        e.logical_bytes += logical(s);
        e.added_bytes += s.bytes_added;
        e.newest = e.newest.max(Some(s.time));
    }
    m.into_values().collect()
}

fn per_platform(snaps: &[SnapshotRecord]) -> Vec<PlatformStats> {
    type Acc<'a> = (u64, BTreeSet<&'a str>, BTreeSet<String>);
    let mut m: BTreeMap<&PathBuf, Acc> = BTreeMap::new();
    for s in snaps {
        let e = m.entry(&s.platform_path).or_default();
        e.0 += 1;
        e.1.insert(&s.site);
        if let Some(t) = &s.platform_tree {
            e.2.insert(t.to_string());
        }
    }
    m.into_iter()
        .map(|(p, (n, sites, trees))| PlatformStats {
            path: p.clone(),
            snapshots: n,
            sites: sites.into_iter().map(String::from).collect(),
            versions: trees.len() as u64,
        })
        .collect()
}
