//! Upgrading a v1 repository (made before the store held manifests): writes the objects its
//! catalogue rows lack, under the writer lock, then records format 2 in the catalogue. Every
//! object is idempotent (a rerun finds it there or writes the same bytes), so a kill at any
//! point loses nothing and the next run finishes the job. Writing commands run it on their own
//! the first time; `sitesnap upgrade` runs it by hand.

use super::codec::{Manifest, PinObject, encode_blob_list};
use super::exists;
use super::put;
use super::write::save_site;
use crate::catalog::StoreFormat;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::{Repo, hostname};
use crate::store::ObjectKind;

/// What an upgrade wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpgradeReport {
    /// The repository was already in format 2: nothing to do.
    pub already: bool,
    /// Sites whose site object was written (or found).
    pub sites: u64,
    /// Blob lists written.
    pub blob_lists: u64,
    /// Manifests written.
    pub manifests: u64,
    /// Pin objects written.
    pub pins: u64,
    /// Blobs the catalogue names but cannot list (damage; `verify` says more).
    pub missing_blobs: Vec<String>,
}

/// Writes the store objects a v1 catalogue's rows lack, then marks the catalogue format 2.
/// Needs the writer lock.
pub fn upgrade(repo: &Repo) -> Result<UpgradeReport> {
    if !repo.is_locked() {
        return Err(Error::Invalid(
            "upgrade needs the repository lock (internal error)".into(),
        ));
    }
    let mut rep = UpgradeReport::default();
    if repo.cat.store_format()? == StoreFormat::V2 {
        rep.already = true;
        return Ok(rep);
    }
    for s in repo.cat.sites()? {
        save_site(repo, &s)?;
        rep.sites += 1;
    }
    fsutil::failpoint("upgrade-sites");
    let host = hostname();
    for s in repo.cat.snapshots(None)? {
        let m = Manifest::of(&s, &host);
        for (b, _) in m.blobs()? {
            let name = b.to_hex();
            if exists(repo, ObjectKind::BlobList, &name)? {
                continue;
            }
            match repo.cat.blob(&b) {
                Ok((chunks, size)) => {
                    put(
                        repo,
                        ObjectKind::BlobList,
                        &name,
                        &encode_blob_list(&chunks, size),
                    )?;
                    rep.blob_lists += 1;
                }
                Err(_) => rep.missing_blobs.push(name),
            }
        }
        if s.pinned && !exists(repo, ObjectKind::Pin, &s.id)? {
            let pin = PinObject::new(&s.id, &fsutil::now());
            put(repo, ObjectKind::Pin, &s.id, &pin.encode())?;
            rep.pins += 1;
        }
        if !exists(repo, ObjectKind::Snapshot, &s.id)? {
            put(repo, ObjectKind::Snapshot, &s.id, &m.encode())?;
            rep.manifests += 1;
        }
        fsutil::failpoint("upgrade-snapshot");
    }
    repo.cat.set_store_format(StoreFormat::V2)?;
    Ok(rep)
}

/// Upgrades a v1 repository if it is one (quietly); a no-op otherwise. Needs the lock.
pub fn ensure_upgraded(repo: &Repo) -> Result<()> {
    if repo.cat.store_format()? == StoreFormat::V1 {
        upgrade(repo)?;
    }
    Ok(())
}
