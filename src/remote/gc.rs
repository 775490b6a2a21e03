//! `gc --remote NAME`: removes from a remote the packs no manifest in it refers to, from any
//! host, and the blob lists and pins no manifest names. It holds the remote's exclusive lock
//! (no push, prune or other gc runs meanwhile). It refuses, removing nothing, when a manifest,
//! a blob list a manifest names or a tree cannot be read: it would not know what they refer
//! to. A pack is removed only when none of its chunks is referenced and it was written before
//! the grace period (default one hour) ahead of the gc's start: a push from an older sitesnap
//! that takes no lock writes packs before the manifests that name them. Packs partly in use are
//! kept whole (a remote is not repacked); packs whose header cannot be read are kept.

use super::lock::{LockMode, acquire};
use super::packs::RemotePacks;
use super::snapshots::remote_manifests;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::objects::{Manifest, decode_blob_list};
use crate::repo::Repo;
use crate::store::{self, Backend, ChunkReader, ObjectKind, ObjectName};
use crate::tree::Tree;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How `gc --remote` runs.
#[derive(Debug, Clone)]
pub struct RemoteGcOpts {
    /// Report what would be removed; remove nothing (no lock taken).
    pub dry_run: bool,
    /// Objects written less than this before the gc started are kept.
    pub grace: Duration,
    /// Remove conflicting locks instead of refusing.
    pub break_lock: bool,
}

/// What `gc --remote` removed (or would).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RemoteGcReport {
    /// The remote's name.
    pub remote: String,
    /// Nothing was removed.
    pub dry_run: bool,
    /// Snapshots (manifests, of every host) whose data is kept.
    pub snapshots: u64,
    /// Packs on the remote.
    pub packs: u64,
    /// Chunks the snapshots refer to.
    pub referenced_chunks: u64,
    /// Packs removed (or that would be).
    pub packs_removed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Unused packs kept because they are younger than the grace period.
    pub packs_young: u64,
    /// Packs kept because their header cannot be read.
    pub packs_unreadable: u64,
    /// Blob lists no manifest names, removed.
    pub blob_lists_removed: u64,
    /// Pins without a manifest, removed.
    pub pins_removed: u64,
}

/// Collects the garbage of remote `name`.
pub fn gc(
    repo: &Repo,
    name: &str,
    backend: Arc<dyn Backend>,
    opts: &RemoteGcOpts,
) -> Result<RemoteGcReport> {
    let b = backend.as_ref();
    let _lock = match opts.dry_run {
        true => None,
        false => Some(acquire(
            repo,
            &backend,
            name,
            "gc --remote",
            LockMode::Exclusive,
            opts.break_lock,
        )?),
    };
    let cutoff = SystemTime::now() - opts.grace;
    let (manifests, bad) = remote_manifests(repo, b)?;
    if let Some((n, why)) = bad.first() {
        return Err(Error::Refused(format!(
            "manifest {n} on remote '{name}' cannot be read ({why}); gc cannot know what it \
             refers to, nothing removed"
        )));
    }
    let packs = RemotePacks::read(b, &repo.codec(), &|_| Ok(false))?;
    let (referenced, blobs) = referenced(repo, &backend, &packs, &manifests, name)?;
    let mut rep = RemoteGcReport {
        remote: name.to_string(),
        dry_run: opts.dry_run,
        snapshots: manifests.len() as u64,
        packs: packs.listed,
        referenced_chunks: referenced.len() as u64,
        packs_unreadable: packs.bad.len() as u64,
        ..Default::default()
    };
    let mut gone: Vec<(ObjectName, u64)> = Vec::new();
    for (pack, (size, header)) in &packs.packs {
        if header.entries.iter().any(|e| referenced.contains(&e.hash)) {
            continue;
        }
        let obj = ObjectName::pack(pack);
        if young(b, &obj, cutoff)? {
            rep.packs_young += 1;
            continue;
        }
        gone.push((obj, *size));
    }
    rep.packs_removed = gone.len() as u64;
    rep.bytes_freed = gone.iter().map(|g| g.1).sum();
    let ids: HashSet<&str> = manifests.iter().map(|m| m.id.as_str()).collect();
    for kind in [ObjectKind::BlobList, ObjectKind::Pin] {
        for o in b.list(kind)? {
            let named = match kind {
                ObjectKind::Pin => ids.contains(o.name.name.as_str()),
                _ => blobs.contains(&o.name.name),
            };
            if !named && !young(b, &o.name, cutoff)? {
                rep.blob_lists_removed += u64::from(kind == ObjectKind::BlobList);
                rep.pins_removed += u64::from(kind == ObjectKind::Pin);
                gone.push((o.name, 0));
            }
        }
    }
    if !opts.dry_run {
        for (obj, _) in &gone {
            b.remove(obj)?;
        }
    }
    Ok(rep)
}

/// Was the object written after `cutoff` (or is it gone)?
fn young(b: &dyn Backend, obj: &ObjectName, cutoff: SystemTime) -> Result<bool> {
    Ok(b.modified(obj)?.is_none_or(|t| t > cutoff))
}

/// Every chunk the manifests refer to (blob lists and the files of trees), and the names of
/// the blob lists they name. Anything unreadable is a refusal.
fn referenced(
    repo: &Repo,
    backend: &Arc<dyn Backend>,
    packs: &RemotePacks,
    manifests: &[Manifest],
    name: &str,
) -> Result<(HashSet<Hash>, HashSet<String>)> {
    let mut chunks: HashSet<Hash> = HashSet::new();
    let mut lists: HashSet<String> = HashSet::new();
    let mut reader = ChunkReader::with_backend(backend.clone(), packs, repo.codec());
    let refuse = |what: String, e: &Error| {
        Error::Refused(format!(
            "{what} on remote '{name}' cannot be read ({}); gc cannot know what it refers to, \
             nothing removed",
            store::cause(e)
        ))
    };
    for m in manifests {
        for (id, is_tree) in m.blobs()? {
            let hex = id.to_hex();
            if !lists.insert(hex.clone()) {
                continue;
            }
            // An indirect list's list chunks are live; one that cannot be read is a refusal.
            let list = backend
                .read(&ObjectName::new(ObjectKind::BlobList, &hex))
                .and_then(|s| repo.decode_object(ObjectKind::BlobList, &hex, &s))
                .and_then(|p| decode_blob_list(&p))
                .and_then(|(l, _)| {
                    l.expand_with(&id, &mut |c| {
                        chunks.insert(*c);
                        reader.read(c)
                    })
                })
                .map_err(|e| refuse(format!("blob list {}", id.short()), &e))?;
            chunks.extend(list.iter().copied());
            if is_tree {
                let mut buf = Vec::new();
                reader
                    .copy_chunks(&list, &mut buf)
                    .and_then(|_| Tree::decode(&buf))
                    .map_err(|e| refuse(format!("tree {}", id.short()), &e))?
                    .entries
                    .into_iter()
                    .for_each(|e| chunks.extend(e.chunks));
            }
        }
    }
    Ok((chunks, lists))
}
