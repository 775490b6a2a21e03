//! `repair catalog`: rebuilds `catalog.sqlite` from the store alone, into
//! `catalog.sqlite.new`, then renames it into place (a kill at any point leaves the old
//! catalogue, or the new one; a rerun starts over). Packs' own headers give the chunk index;
//! manifests, blob lists, pins and site objects give snapshots, blobs, pins and sites. What
//! cannot be rebuilt is reported, never guessed. Database passwords are not in the store: they
//! are taken from the old catalogue when it is readable and names the same database, and the
//! sites still without one are listed.

use super::check::StoreView;
use super::read_blob_list;
use crate::catalog::{SiteRecord, StoreFormat};
use crate::error::Result;
use crate::fsutil;
use crate::repo::Repo;
use crate::store::{self, ObjectKind, ObjectName, PackInfo};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What `repair catalog` rebuilt, and what it could not.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Packs indexed.
    pub packs: u64,
    /// Chunks indexed.
    pub chunks: u64,
    /// Packs whose header could not be read: (name, why). Their chunks are not indexed.
    pub bad_packs: Vec<(String, String)>,
    /// Sites rebuilt.
    pub sites: u64,
    /// Snapshots rebuilt.
    pub snapshots: u64,
    /// Of those, pinned.
    pub pinned: u64,
    /// Snapshots left out: (id, why).
    pub skipped_snapshots: Vec<(String, String)>,
    /// Sites that have snapshots but no site object (register them to restore those).
    pub sites_without_object: Vec<String>,
    /// Sites whose database password must be given again (`site set --db`).
    pub need_password: Vec<String>,
    /// Blob lists no manifest names (garbage for gc).
    pub unreferenced_blob_lists: u64,
}

/// Rebuilds the catalogue of the repository at `root` from its store, waiting up to `wait` for
/// the writer lock; returns the repository on the new catalogue (still locked) and the report.
/// An encrypted repository needs `pass`.
pub fn repair_catalog(
    root: &Path,
    wait: Duration,
    pass: Option<&crate::crypto::Passphrase>,
) -> Result<(Repo, RepairReport)> {
    let repo = Repo::open_rebuilding(root, wait, pass)?;
    let mut rep = RepairReport::default();
    index_packs(&repo, &mut rep)?;
    fsutil::failpoint("repair-packs-indexed");
    let view = StoreView::read(&repo)?;
    let old = old_passwords(&repo);
    for s in &view.sites {
        let mut rec = s.record();
        if s.db_password {
            match old.get(&s.uri) {
                Some(url)
                    if super::password_removed(url).0 == s.db_url.clone().unwrap_or_default() =>
                {
                    rec.db_url = Some(url.clone())
                }
                _ => rep.need_password.push(s.uri.clone()),
            }
        }
        repo.cat.add_site(&rec)?;
        if let Some(w) = &s.web_root {
            repo.cat.set_platform_web_root(&rec.platform, w)?;
        }
        rep.sites += 1;
    }
    fsutil::failpoint("repair-sites");
    rebuild_snapshots(&repo, &view, &mut rep)?;
    fsutil::failpoint("repair-snapshots");
    repo.cat.set_store_format(StoreFormat::V2)?;
    let repo = repo.install_rebuilt()?;
    Ok((repo, rep))
}

/// Indexes every pack from its own header.
fn index_packs(repo: &Repo, rep: &mut RepairReport) -> Result<()> {
    let backend = repo.backend();
    let codec = repo.codec();
    for o in backend.list(ObjectKind::Pack)? {
        let name = o.name.name.clone();
        let obj = ObjectName::pack(&name);
        let header = store::pack::read_header_with(&name, o.size, &codec, |off, len| {
            backend.read_range(&obj, off, len)
        });
        match header {
            Ok(header) => {
                rep.chunks += header.entries.len() as u64;
                repo.cat.insert_pack(&PackInfo {
                    name,
                    size: o.size,
                    format: header.format,
                    entries: header.entries,
                })?;
                rep.packs += 1;
                fsutil::failpoint("repair-pack");
            }
            Err(e) => rep.bad_packs.push((name, store::cause(&e))),
        }
    }
    Ok(())
}

/// One catalogue row per readable manifest whose blob lists are all there.
fn rebuild_snapshots(repo: &Repo, view: &StoreView, rep: &mut RepairReport) -> Result<()> {
    for (n, why) in &view.bad_manifests {
        rep.skipped_snapshots.push((n.clone(), why.clone()));
    }
    let sites: std::collections::HashSet<&str> =
        view.sites.iter().map(|s| s.uri.as_str()).collect();
    let mut ids: Vec<&String> = view.manifests.keys().collect();
    ids.sort();
    let mut named = std::collections::HashSet::new();
    for id in ids {
        let m = &view.manifests[id];
        let mut blobs: Vec<crate::catalog::BlobRow> = Vec::new();
        let mut missing = None;
        for (b, _) in m.blobs()? {
            named.insert(b.to_hex());
            match read_blob_list(repo, &b) {
                Ok((chunks, size)) => blobs.push((b, chunks, size)),
                Err(e) => missing = Some(format!("blob list {}: {}", b.short(), store::cause(&e))),
            }
        }
        if let Some(why) = missing {
            rep.skipped_snapshots.push((id.clone(), why));
            continue;
        }
        let pinned = view.pins.contains(id);
        let rec = m.record(pinned)?;
        repo.cat.commit_snapshot(&rec, &blobs, &[])?;
        rep.snapshots += 1;
        rep.pinned += pinned as u64;
        if !sites.contains(m.site.as_str()) && !rep.sites_without_object.contains(&m.site) {
            rep.sites_without_object.push(m.site.clone());
        }
        fsutil::failpoint("repair-snapshot");
    }
    rep.unreferenced_blob_lists = view
        .blob_lists
        .iter()
        .filter(|b| !named.contains(*b))
        .count() as u64;
    Ok(())
}

/// Database URLs (with passwords) of the old catalogue, if it can be read.
fn old_passwords(repo: &Repo) -> HashMap<String, String> {
    let p = Repo::catalog_path(&repo.root);
    if !p.is_file() {
        return HashMap::new();
    }
    let sites: Vec<SiteRecord> = repo
        .open_catalog(&p)
        .and_then(|c| c.sites())
        .unwrap_or_default();
    sites
        .into_iter()
        .filter_map(|s| s.db_url.map(|u| (s.uri, u)))
        .collect()
}
