//! The store as the source of truth (repository format v2). Besides packs, every snapshot has
//! a manifest, every tree and dump blob its chunk list, every site registration a site object,
//! and every pinned snapshot a pin object, all in the store behind the backend
//! (`docs/FORMAT.md` gives the bytes). They are written and durable before the catalogue row
//! that names them, so `catalog.sqlite` is an index that `repair catalog` can rebuild from the
//! store alone. This module owns their encoding (`codec`), the store-first write order
//! (`write`), the comparison of store and catalogue that `verify` and `gc` use (`check`), the
//! rebuild (`repair`) and the upgrade of a v1 repository (`upgrade`). Every object goes through
//! [`Repo::encode_object`]/[`Repo::decode_object`]. It never reads or writes live sites.

mod check;
mod codec;
mod repair;
mod upgrade;
mod write;

pub use check::{Disagreement, StoreView, compare, refuse_if_disagree, unreferenced};
pub use codec::{
    BLOB_LIST_MAGIC, FORMAT_VERSION, Manifest, PinObject, SiteObject, decode_blob_list,
    encode_blob_list, password_removed, site_object_name, site_object_name_input,
};
pub use repair::{RepairReport, repair_catalog};
pub use upgrade::{UpgradeReport, ensure_upgraded, upgrade};
pub use write::{
    PendingSnapshot, add_site, commit_snapshot, commit_snapshots, forget_snapshots, remove_site,
    set_pinned, set_policy, update_site,
};

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::Repo;
use crate::store::{ChunkList, ObjectKind, ObjectName};

/// Writes one object (encoded through the repository) atomically and durably.
pub(crate) fn put(repo: &Repo, kind: ObjectKind, name: &str, plain: &[u8]) -> Result<()> {
    let stored = repo.encode_object(kind, name, plain)?;
    repo.backend().put(&ObjectName::new(kind, name), &stored)
}

/// Reads one object and decodes it through the repository.
pub(crate) fn get(repo: &Repo, kind: ObjectKind, name: &str) -> Result<Vec<u8>> {
    let stored = repo.backend().read(&ObjectName::new(kind, name))?;
    repo.decode_object(kind, name, &stored)
}

/// Does the object exist?
pub(crate) fn exists(repo: &Repo, kind: ObjectKind, name: &str) -> Result<bool> {
    Ok(repo.backend().size(&ObjectName::new(kind, name))?.is_some())
}

/// Names of every object of `kind`, sorted.
pub(crate) fn names(repo: &Repo, kind: ObjectKind) -> Result<Vec<String>> {
    Ok(repo
        .backend()
        .list(kind)?
        .into_iter()
        .map(|o| o.name.name)
        .collect())
}

/// Reads a manifest.
pub fn read_manifest(repo: &Repo, id: &str) -> Result<Manifest> {
    Manifest::decode(&get(repo, ObjectKind::Snapshot, id)?)
}

/// Reads a blob list: the chunk list and size of blob `id`, a direct list checked against the
/// id (an indirect one is checked when its list chunks are read: [`ChunkList::expand`]).
pub fn read_blob_list(repo: &Repo, id: &Hash) -> Result<(ChunkList, u64)> {
    let (chunks, size) = decode_blob_list(&get(repo, ObjectKind::BlobList, &id.to_hex())?)?;
    if let ChunkList::Direct(c) = &chunks
        && Hash::of_list(c) != *id
    {
        return Err(Error::Corrupt(format!(
            "blob list {}: its chunk list does not hash to its name",
            id.short()
        )));
    }
    Ok((chunks, size))
}

/// Every site object in the store, newest version per URI (highest `seq`), with the names of
/// the older versions (superseded: removable).
pub fn read_sites(repo: &Repo) -> Result<(Vec<SiteObject>, Vec<String>)> {
    let mut newest: std::collections::BTreeMap<String, (SiteObject, String)> = Default::default();
    let mut old = Vec::new();
    for n in names(repo, ObjectKind::Site)? {
        let s = SiteObject::decode(&get(repo, ObjectKind::Site, &n)?)
            .map_err(|e| Error::Corrupt(format!("site object {n}: {e}")))?;
        match newest.get(&s.uri) {
            Some((cur, _)) if cur.seq >= s.seq => old.push(n),
            _ => {
                if let Some((_, prev)) = newest.insert(s.uri.clone(), (s, n)) {
                    old.push(prev);
                }
            }
        }
    }
    Ok((newest.into_values().map(|(s, _)| s).collect(), old))
}
