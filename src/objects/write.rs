//! Store-first changes: each writes (or removes) its store objects durably before it touches
//! the catalogue row, so a crash in between leaves the store ahead of the catalogue, never
//! behind it (`verify` reports it, `repair catalog` catches the catalogue up).

use super::codec::{Manifest, PinObject, SiteObject, encode_blob_list, site_object_name_input};
use super::{exists, get, names, put};
use crate::catalog::{CacheEntry, SiteRecord, SnapshotCommit, SnapshotRecord};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::{Repo, hostname};
use crate::store::{ObjectKind, ObjectName};

/// Commits a captured snapshot: blob lists (those not yet stored), then the pin object if it is
/// pinned, then the manifest, each durable, and only then the catalogue row (with its blob
/// rows and files-cache rows). The packs must already be durable.
pub fn commit_snapshot(
    repo: &Repo,
    rec: &SnapshotRecord,
    blobs: &[crate::catalog::BlobRow],
    cache: &[(Vec<u8>, CacheEntry)],
) -> Result<()> {
    commit_snapshots(repo, &[(rec, blobs, cache)])
}

/// One captured snapshot waiting for its commit: its record, its blob rows and its new
/// files-cache rows.
pub type PendingSnapshot = (
    SnapshotRecord,
    Vec<crate::catalog::BlobRow>,
    Vec<(Vec<u8>, CacheEntry)>,
);

/// Commits captured snapshots at once (one, or the sites of a `snapshot --all` run batch): the
/// blob lists not yet stored, then the pins, then the manifests, each group durable before the
/// next one shows (a local batch with a few `syncfs`, see
/// [`Backend::put_groups`](crate::store::backend::Backend::put_groups)), then all the
/// catalogue rows in one transaction. A crash in between leaves objects the catalogue does not
/// know (`repair catalog` adopts the manifests), never a row without its objects.
pub fn commit_snapshots(repo: &Repo, batch: &[SnapshotCommit<'_>]) -> Result<()> {
    let mut lists: Vec<(ObjectName, Vec<u8>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, blobs, _) in batch {
        for (id, chunks, size) in blobs.iter() {
            let name = id.to_hex();
            if seen.insert(name.clone()) && !exists(repo, ObjectKind::BlobList, &name)? {
                let plain = encode_blob_list(chunks, *size);
                lists.push(encoded(repo, ObjectKind::BlobList, &name, &plain)?);
            }
        }
    }
    let mut pins = Vec::new();
    let mut manifests = Vec::with_capacity(batch.len());
    for (rec, _, _) in batch {
        if rec.pinned {
            let pin = PinObject::new(&rec.id, &fsutil::now()).encode();
            pins.push(encoded(repo, ObjectKind::Pin, &rec.id, &pin)?);
        }
        let plain = Manifest::of(rec, &hostname()).encode();
        manifests.push(encoded(repo, ObjectKind::Snapshot, &rec.id, &plain)?);
    }
    // Blob lists, then pins, then the manifests that refer to them.
    const POINTS: [&str; 3] = ["blob-lists-written", "pins-written", "manifest-written"];
    repo.backend()
        .put_groups(&[&lists, &pins, &manifests], &|i| {
            fsutil::failpoint(POINTS[i])
        })?;
    match repo.cat.commit_snapshots(batch) {
        Ok(()) => Ok(()),
        // The rows surely did not land: take the objects back, manifests first (without one
        // there is no snapshot to adopt), or `repair catalog` would bring back snapshots the
        // command said failed, and until then `verify` reports the store and catalogue out
        // of step and `gc` refuses.
        Err(f) if f.rolled_back => {
            let written = [&manifests, &pins, &lists].into_iter().flatten();
            let undo = StoreUndo {
                written: written.map(|(name, _)| name.clone()).collect(),
                removed: Vec::new(),
            };
            Err(undo.undo(repo, f.error, "taking back the snapshot's store objects"))
        }
        // A failed COMMIT may still be found committed: the store stays ahead (the safe way).
        Err(f) => Err(f.error),
    }
}

/// What a store-first change did to the store before its catalogue step, so that a step that
/// FAILS can be undone: the objects it wrote, and the objects it removed or overwrote with
/// their stored bytes.
#[derive(Default)]
pub(crate) struct StoreUndo {
    written: Vec<ObjectName>,
    removed: Vec<(ObjectName, Vec<u8>)>,
}

impl StoreUndo {
    /// Removes object `name` (nothing if it is not there), its stored bytes kept first.
    fn remove(&mut self, repo: &Repo, name: ObjectName) -> Result<()> {
        let b = repo.backend();
        if b.size(&name)?.is_none() {
            return Ok(());
        }
        let stored = b.read(&name)?;
        b.remove(&name)?;
        self.removed.push((name, stored));
        Ok(())
    }

    /// Puts back what was removed, then removes what was written (in the order written), so
    /// an object is always there; returns `cause`, or, when that fails too, both and what to
    /// run. Fail point `store-undo` before each object.
    fn undo(&self, repo: &Repo, cause: Error, what: &'static str) -> Error {
        let b = repo.backend();
        let put = self.removed.iter().try_for_each(|(name, stored)| {
            fsutil::failpoint_or_error("store-undo")?;
            b.put(name, stored)
        });
        let undo = put.and_then(|()| {
            self.written.iter().try_for_each(|name| {
                fsutil::failpoint_or_error("store-undo")?;
                b.remove(name).map(drop)
            })
        });
        undone(cause, what, undo)
    }
}

/// The error of a store-first change that failed, once its store side was undone (`undo`):
/// `cause` itself, or, when undoing failed too, both with what to run.
fn undone(cause: Error, what: &'static str, undo: Result<()>) -> Error {
    match undo {
        Ok(()) => cause,
        Err(undo) => Error::StoreUndoFailed {
            cause: Box::new(cause),
            what,
            undo: Box::new(undo),
        },
    }
}

/// An object's name and its stored bytes (sealed in an encrypted repository).
fn encoded(
    repo: &Repo,
    kind: ObjectKind,
    name: &str,
    plain: &[u8],
) -> Result<(ObjectName, Vec<u8>)> {
    Ok((
        ObjectName::new(kind, name),
        repo.encode_object(kind, name, plain)?,
    ))
}

/// Removes a snapshot from the store: its manifest (that is the forget), then its pin, each
/// kept in `undo`.
fn remove_snapshot_objects(repo: &Repo, id: &str, undo: &mut StoreUndo) -> Result<()> {
    undo.remove(repo, ObjectName::new(ObjectKind::Snapshot, id))?;
    fsutil::failpoint("manifest-removed");
    undo.remove(repo, ObjectName::new(ObjectKind::Pin, id))
}

/// Forgets snapshots: their manifests and pins leave the store first, then the rows go (their
/// data stays until gc). When a step FAILS (a removal, the rows' transaction), the objects
/// already removed are put back as they were: a row is never left without its manifest. Even
/// a failed COMMIT that turns out committed is safe this way: a manifest without its row is
/// adopted again by `repair catalog` (the forget undone, nothing lost).
pub fn forget_snapshots(repo: &Repo, ids: &[String]) -> Result<()> {
    let mut undo = StoreUndo::default();
    let forgotten = (ids.iter())
        .try_for_each(|id| remove_snapshot_objects(repo, id, &mut undo))
        .and_then(|()| fsutil::failpoint_or_error("forget-rows"))
        .and_then(|()| repo.cat.delete_snapshots(ids));
    forgotten.map_err(|cause| undo.undo(repo, cause, "putting the removed objects back"))
}

/// Pins (a pin object is written) or unpins (it is removed) a snapshot, then its row.
/// When the row's update FAILS, the pin object is put back as it was (written anew, or
/// removed), so `verify` does not find the two disagreeing.
pub fn set_pinned(repo: &Repo, id: &str, pin: bool) -> Result<()> {
    let name = ObjectName::new(ObjectKind::Pin, id);
    let mut undo = StoreUndo::default();
    if pin {
        // An existing pin object is overwritten: its bytes go back on an undo.
        match repo.backend().size(&name)? {
            Some(_) => undo
                .removed
                .push((name.clone(), repo.backend().read(&name)?)),
            None => undo.written.push(name),
        }
        let p = PinObject::new(id, &fsutil::now());
        put(repo, ObjectKind::Pin, id, &p.encode())?;
    } else {
        undo.remove(repo, name)?;
    }
    fsutil::failpoint_or_error("pin-row")
        .and_then(|()| repo.cat.set_pinned(id, pin))
        .map_err(|cause| undo.undo(repo, cause, "putting the pin object back as it was"))
}

/// The stored versions of `uri`'s site object: (seq, object name, object).
pub(crate) fn site_versions(repo: &Repo, uri: &str) -> Result<Vec<(u64, String, SiteObject)>> {
    let mut out = Vec::new();
    for n in names(repo, ObjectKind::Site)? {
        let s = SiteObject::decode(&get(repo, ObjectKind::Site, &n)?)
            .map_err(|e| Error::Corrupt(format!("site object {n}: {e}")))?;
        if s.uri == uri {
            out.push((s.seq, n, s));
        }
    }
    out.sort_by_key(|v| v.0);
    Ok(out)
}

/// Writes a new version of `s`'s site object (unless the newest one already describes it),
/// then removes the older versions; a removal that fails undoes it all.
pub(crate) fn save_site(repo: &Repo, s: &SiteRecord) -> Result<StoreUndo> {
    let versions = site_versions(repo, &s.uri)?;
    if let Some((_, _, newest)) = versions.last()
        && newest.describes(s)
        && newest.web_root == repo.cat.platform_web_root(&s.platform)?
        && versions.len() == 1
    {
        return Ok(StoreUndo::default());
    }
    let seq = versions.last().map_or(1, |v| v.0 + 1);
    let web_root = repo.cat.platform_web_root(&s.platform)?;
    let obj = SiteObject::of(s, seq, &fsutil::now(), web_root);
    let name = repo.keyed_name(&site_object_name_input(&s.uri, seq));
    put(repo, ObjectKind::Site, &name, &obj.encode())?;
    let mut undo = StoreUndo {
        written: vec![ObjectName::new(ObjectKind::Site, &name)],
        removed: Vec::new(),
    };
    fsutil::failpoint("site-object-written");
    let removed = (versions.into_iter())
        .try_for_each(|(_, n, _)| undo.remove(repo, ObjectName::new(ObjectKind::Site, &n)));
    match removed {
        Ok(()) => Ok(undo),
        Err(e) => Err(undo.undo(repo, e, SITE_UNDO)),
    }
}

/// What undoing a site's change does.
const SITE_UNDO: &str = "putting the site objects back as they were";

/// Runs a site's row change after [`save_site`] changed the store; undoes that when the row
/// change FAILS (fail point `site-row`), so store and catalogue still agree.
fn site_row(repo: &Repo, undo: StoreUndo, row: impl FnOnce() -> Result<()>) -> Result<()> {
    fsutil::failpoint_or_error("site-row")
        .and_then(|()| row())
        .map_err(|cause| undo.undo(repo, cause, SITE_UNDO))
}

/// Registers a new site: its site object, then its row.
pub fn add_site(repo: &Repo, s: &SiteRecord) -> Result<()> {
    if repo.cat.find_site(&s.uri)?.is_some() {
        return Err(Error::Invalid(format!(
            "site '{}' is already registered",
            s.uri
        )));
    }
    let undo = save_site(repo, s)?;
    site_row(repo, undo, || repo.cat.add_site(s))
}

/// Updates a registered site: a new version of its site object, then its row.
pub fn update_site(repo: &Repo, s: &SiteRecord) -> Result<()> {
    let undo = save_site(repo, s)?;
    site_row(repo, undo, || repo.cat.update_site(s))
}

/// Stores (or clears) a site's retention policy (JSON): site object, then row.
pub fn set_policy(repo: &Repo, uri: &str, policy: Option<&str>) -> Result<()> {
    let mut s = repo.cat.site(uri)?;
    s.policy = policy.map(str::to_string);
    let undo = save_site(repo, &s)?;
    site_row(repo, undo, || repo.cat.set_policy(uri, policy))
}

/// Removes a site; with `forget_snapshots` its snapshots go too (manifests and pins first).
/// Its site objects leave the store before its row.
pub fn remove_site(repo: &Repo, uri: &str, forget_snapshots: bool) -> Result<()> {
    repo.cat.site(uri)?;
    let snaps = repo.cat.snapshots(Some(uri))?;
    if !snaps.is_empty() && !forget_snapshots {
        return Err(Error::Refused(format!(
            "site '{uri}' has {} snapshot(s); add --forget-snapshots to remove it with them",
            snaps.len()
        )));
    }
    let mut undo = StoreUndo::default();
    let gone = (snaps.iter())
        .try_for_each(|s| remove_snapshot_objects(repo, &s.id, &mut undo))
        .and_then(|()| {
            (site_versions(repo, uri)?.into_iter())
                .try_for_each(|(_, n, _)| undo.remove(repo, ObjectName::new(ObjectKind::Site, &n)))
        })
        .and_then(|()| fsutil::failpoint_or_error("site-rows"))
        .and_then(|()| repo.cat.remove_site(uri, forget_snapshots));
    gone.map_err(|cause| undo.undo(repo, cause, "putting the removed objects back"))
}
