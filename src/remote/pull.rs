//! `pull`: rebuilds a repository in a new folder from a remote (disaster recovery). Every
//! object is downloaded into the folder's `data/` (packs checked against their names), then
//! the catalogue is rebuilt from the store by `repair catalog`. A pull killed half-way is
//! resumed by the next one: objects already there (same name and size) are not fetched again.

use super::copy_objects;
use crate::crypto::{KeyStore, Passphrase};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::objects::{RepairReport, repair_catalog};
use crate::repo::Repo;
use crate::store::{self, Backend, LocalBackend, ObjectInfo, ObjectKind};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What a pull did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PullReport {
    /// The remote's name.
    pub remote: String,
    /// Objects downloaded.
    pub downloaded: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Objects already in the folder (an earlier, interrupted pull).
    pub skipped: u64,
    /// What rebuilding the catalogue found.
    pub repair: RepairReport,
}

/// Pulls every object of `remote` into the folder `root` (which must not hold a catalogue) and
/// rebuilds its catalogue; returns the repository (locked) and the report.
/// `pass` gives the passphrase when the remote holds key files (an encrypted repository).
pub fn pull(
    root: &Path,
    name: &str,
    remote: &dyn Backend,
    wait: Duration,
    pass: &dyn Fn() -> Result<Passphrase>,
) -> Result<(Repo, PullReport)> {
    if Repo::catalog_path(root).exists() {
        return Err(Error::Refused(format!(
            "{} already holds a repository; pull into a new folder",
            root.display()
        )));
    }
    let mut listed: Vec<ObjectInfo> = Vec::new();
    for kind in ObjectKind::ALL {
        listed.extend(remote.list(kind)?);
    }
    if !listed.iter().any(|o| o.name.kind == ObjectKind::Snapshot) {
        return Err(Error::Invalid(format!(
            "remote '{name}' holds no snapshot; nothing to pull"
        )));
    }
    let data = store::local_data_dir(root);
    fsutil::create_private_dir(root)?;
    fsutil::create_private_dir(&data)?;
    fsutil::create_private_dir(&store::local_tmp_dir(root))?;
    let local = LocalBackend::new(&data);
    let mut have: HashMap<(ObjectKind, String), u64> = HashMap::new();
    for kind in ObjectKind::ALL {
        for o in local.list(kind)? {
            have.insert((kind, o.name.name), o.size);
        }
    }
    let (there, fetch): (Vec<ObjectInfo>, Vec<ObjectInfo>) = listed
        .into_iter()
        .partition(|o| have.get(&(o.name.kind, o.name.name.clone())) == Some(&o.size));
    let (downloaded, downloaded_bytes) = copy_objects(
        remote,
        &local,
        &fetch,
        "pull-object",
        crate::progress::Meter(false),
    )?;
    pull_keys(root, remote)?;
    let pass = match Repo::needs_passphrase(root)? {
        true => Some(pass()?),
        false => None,
    };
    let (repo, repair) = repair_catalog(root, wait, pass.as_ref())?;
    Ok((
        repo,
        PullReport {
            remote: name.to_string(),
            downloaded,
            downloaded_bytes,
            skipped: there.len() as u64,
            repair,
        },
    ))
}

/// Copies the remote's key files into the folder's `keys/` (each checked to be a key file).
fn pull_keys(root: &Path, remote: &dyn Backend) -> Result<()> {
    let keys = KeyStore::of_repo(root);
    for o in remote.list(ObjectKind::Key)? {
        let bytes = remote.read(&o.name)?;
        keys.put_raw(&o.name.name, &bytes)?;
    }
    Ok(())
}
