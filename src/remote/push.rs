//! `push`: copies the objects a remote lacks. The remote is listed once (every kind, before
//! anything is sent, so an unreachable or refusing remote fails before any upload); objects go
//! up kind by kind in [`PUSH_ORDER`], each kind complete before the next starts, so a remote
//! never holds a manifest whose blob lists or packs are missing, nor a pin without its
//! manifest. Objects are immutable and each upload is atomic, so a push killed at any point is
//! resumed by the next one without sending anything twice.

use super::copy_objects;
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::store::{Backend, ObjectInfo, ObjectKind, ObjectName};
use std::collections::HashMap;
use std::time::Instant;

/// The order kinds go up in: data before what refers to it.
pub const PUSH_ORDER: [ObjectKind; 5] = [
    ObjectKind::Pack,
    ObjectKind::BlobList,
    ObjectKind::Site,
    ObjectKind::Snapshot,
    ObjectKind::Pin,
];

/// What a push did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushReport {
    /// The remote's name.
    pub remote: String,
    /// Objects uploaded.
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects the remote already had.
    pub skipped: u64,
    /// Their bytes.
    pub skipped_bytes: u64,
    /// Key files uploaded (not counted in `uploaded`, which counts store objects).
    pub keys_uploaded: u64,
    /// Wall time of the push in milliseconds.
    pub duration_ms: u64,
}

/// Pushes every object of `repo` that `remote` lacks (an object of the same name and size is
/// there). The caller holds the repository's writer lock, so nothing is removed meanwhile.
/// Refused for a repository that is not encrypted: nothing readable leaves the machine.
pub fn push(repo: &Repo, name: &str, remote: &dyn Backend) -> Result<PushReport> {
    if !repo.is_encrypted() {
        return Err(Error::Refused(format!(
            "repository {} is not encrypted and nothing readable leaves this machine: push \
             from a repository made with `sitesnap init --encrypt`",
            repo.root.display()
        )));
    }
    let start = Instant::now();
    let mut rep = PushReport {
        remote: name.to_string(),
        ..Default::default()
    };
    push_keys(repo, remote, &mut rep)?;
    let mut plan: Vec<Vec<ObjectInfo>> = Vec::new();
    for kind in PUSH_ORDER {
        let have: HashMap<String, u64> = remote
            .list(kind)?
            .into_iter()
            .map(|o| (o.name.name, o.size))
            .collect();
        let (there, send): (Vec<ObjectInfo>, Vec<ObjectInfo>) = repo
            .backend()
            .list(kind)?
            .into_iter()
            .partition(|o| have.get(&o.name.name) == Some(&o.size));
        rep.skipped += there.len() as u64;
        rep.skipped_bytes += there.iter().map(|o| o.size).sum::<u64>();
        plan.push(send);
    }
    for send in &plan {
        let r = copy_objects(repo.backend().as_ref(), remote, send, "push-object");
        // Count what went up even when a later object failed.
        let (n, bytes) = r?;
        rep.uploaded += n;
        rep.uploaded_bytes += bytes;
    }
    rep.duration_ms = start.elapsed().as_millis() as u64;
    Ok(rep)
}

/// Copies the repository's key files the remote lacks (sealed by their passphrases, so a
/// fresh machine can open the pulled repository with one of them).
fn push_keys(repo: &Repo, remote: &dyn Backend, rep: &mut PushReport) -> Result<()> {
    let have: HashMap<String, u64> = remote
        .list(ObjectKind::Key)?
        .into_iter()
        .map(|o| (o.name.name, o.size))
        .collect();
    let keys = repo.keys();
    for id in keys.ids()? {
        let bytes = keys.raw(&id)?;
        if have.get(&id) == Some(&(bytes.len() as u64)) {
            continue;
        }
        remote.put(&ObjectName::new(ObjectKind::Key, &id), &bytes)?;
        rep.keys_uploaded += 1;
    }
    Ok(())
}
