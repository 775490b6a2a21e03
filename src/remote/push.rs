//! `push`: copies the objects a remote lacks. The remote is listed once (every kind, before
//! anything is sent, so an unreachable or refusing remote fails before any upload); objects go
//! up kind by kind in [`PUSH_ORDER`], each kind complete before the next starts, so a remote
//! never holds a manifest whose blob lists or packs are missing, nor a pin without its
//! manifest. Objects are immutable and each upload is atomic, so a push killed at any point is
//! resumed by the next one without sending anything twice.
//!
//! Servers sharing a bucket share the key, so their chunks have the same ids: before sending
//! packs, push reads what the remote's packs hold (their headers) and sends a local pack whole
//! only when none of its chunks is there; a pack some of whose chunks are there has only the
//! others sent, in new packs; one whose chunks are all there is not sent. A platform twenty
//! servers run is so stored once. A push holds a shared lock on the
//! remote (`lock`), so `prune --remote` and `gc --remote` never run while it sends.
//!
//! `push --site URI` limits every kind to what the given sites' snapshots need (`select`).
//! Progress goes to the process's reporter: listing, reading the remote's pack headers, then
//! uploading (bytes and objects done of the total).

use super::copy_objects;
use super::lock::{LockMode, acquire};
use super::select::Selection;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::progress::{self, Meter};
use crate::repo::Repo;
use crate::store::{
    self, Backend, FrameCache, ObjectInfo, ObjectKind, ObjectName, PackEntry, PackFormat,
    PackRoller,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
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
    /// Local packs the remote lacked by name but whose chunks were all there (pushed by
    /// another server sharing the key): nothing sent for them.
    pub packs_deduplicated: u64,
    /// Local packs only some of whose chunks the remote lacked: those went up in new packs.
    pub packs_repacked: u64,
    /// Chunks not sent because the remote already held them in other packs.
    pub chunks_deduplicated: u64,
    /// Wall time of the push in milliseconds.
    pub duration_ms: u64,
    /// The sites the push was limited to (`--site`; empty: every object).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
}

/// Pushes every object of `repo` that `remote` lacks (an object of the same name and size is
/// there); with `sites`, only those the sites' snapshots need. The caller holds the
/// repository's writer lock, so nothing is removed meanwhile. Refused for a repository that is
/// not encrypted: nothing readable leaves the machine.
pub fn push(
    repo: &Repo,
    name: &str,
    remote_arc: Arc<dyn Backend>,
    sites: &[String],
) -> Result<PushReport> {
    let remote = remote_arc.as_ref();
    if !repo.is_encrypted() {
        return Err(Error::Refused(format!(
            "repository {} is not encrypted and nothing readable leaves this machine: push \
             from a repository made with `sitesnap init --encrypt`",
            repo.root.display()
        )));
    }
    let start = Instant::now();
    let only = match sites.is_empty() {
        true => None,
        false => Some(Selection::of_sites(repo, sites)?),
    };
    // Shared: pushes from several servers run together; prune and gc --remote wait.
    let _lock = acquire(repo, &remote_arc, name, "push", LockMode::Shared, false)?;
    let mut rep = PushReport {
        remote: name.to_string(),
        sites: sites.to_vec(),
        ..Default::default()
    };
    progress::phase_of(&format!("push to {name}: listing"), 0, 0, "objects");
    push_keys(repo, remote, &mut rep)?;
    let mut plan: Vec<Vec<ObjectInfo>> = Vec::new();
    let mut partial = Vec::new();
    for kind in PUSH_ORDER {
        let listed = remote.list(kind)?;
        let have: HashMap<String, u64> = listed
            .iter()
            .map(|o| (o.name.name.clone(), o.size))
            .collect();
        let (there, mut send): (Vec<ObjectInfo>, Vec<ObjectInfo>) = repo
            .backend()
            .list(kind)?
            .into_iter()
            .filter(|o| only.as_ref().is_none_or(|sel| sel.keeps(&o.name)))
            .partition(|o| have.get(&o.name.name) == Some(&o.size));
        rep.skipped += there.len() as u64;
        rep.skipped_bytes += there.iter().map(|o| o.size).sum::<u64>();
        if kind == ObjectKind::Pack && !send.is_empty() {
            let p = plan_packs(repo, name, remote, &listed, send, &mut rep)?;
            send = p.whole;
            partial = p.partial;
        }
        plan.push(send);
    }
    upload_phase(name, &plan, &partial);
    for (i, send) in plan.iter().enumerate() {
        let local = repo.backend();
        let (n, bytes) = copy_objects(local.as_ref(), remote, send, "push-object", Meter(true))?;
        rep.uploaded += n;
        rep.uploaded_bytes += bytes;
        if i == 0 {
            let (n, bytes) = repack(repo, &remote_arc, &partial)?;
            rep.uploaded += n;
            rep.uploaded_bytes += bytes;
        }
    }
    rep.duration_ms = start.elapsed().as_millis() as u64;
    Ok(rep)
}

/// Starts the upload phase: the bytes and objects of `plan`, and the stored bytes of the frames
/// holding the chunks of `partial` (an estimate of the packs they go up in).
fn upload_phase(name: &str, plan: &[Vec<ObjectInfo>], partial: &[PartialPack]) {
    let objects = plan.iter().map(|k| k.len() as u64).sum();
    let whole: u64 = plan.iter().flatten().map(|o| o.size).sum();
    let frames: u64 = partial
        .iter()
        .map(|(_, _, entries)| {
            let f: HashSet<(u64, u32)> = entries.iter().map(|e| (e.offset, e.clen)).collect();
            f.iter().map(|(_, clen)| u64::from(*clen)).sum::<u64>()
        })
        .sum();
    progress::phase_of(
        &format!("push to {name}: uploading"),
        whole + frames,
        objects,
        "objects",
    );
}

/// A local pack some of whose chunks the remote lacks: its name, format and those chunks.
type PartialPack = (String, PackFormat, Vec<PackEntry>);

/// The local packs a remote lacks by name, split by what the remote holds of their chunks
/// (it may hold them in other packs, pushed by another server sharing the key).
struct PackPlan {
    /// None of their chunks is there: sent as they are.
    whole: Vec<ObjectInfo>,
    /// Some are: the missing chunks of each go up in new packs.
    partial: Vec<PartialPack>,
}

/// Reads what the remote's packs hold (their headers: the local copy's when the pack is here
/// too, else three range reads on the remote) and splits `send` by it.
fn plan_packs(
    repo: &Repo,
    name: &str,
    remote: &dyn Backend,
    remote_packs: &[ObjectInfo],
    send: Vec<ObjectInfo>,
    rep: &mut PushReport,
) -> Result<PackPlan> {
    let local = repo.backend().as_ref();
    let codec = repo.codec();
    let header = |b: &dyn Backend, o: &ObjectInfo| {
        store::pack::read_header_with(&o.name.name, o.size, &codec, |off, len| {
            b.read_range(&o.name, off, len)
        })
    };
    let mut there: HashSet<Hash> = HashSet::new();
    let what = format!("push to {name}: reading pack headers");
    progress::phase_of(&what, 0, remote_packs.len() as u64, "packs");
    for o in remote_packs {
        progress::add(0, 1);
        let from = match local.size(&o.name)? == Some(o.size) {
            true => local,
            false => remote,
        };
        // A pack whose header cannot be read counts as holding nothing.
        if let Ok(h) = header(from, o) {
            there.extend(h.entries.iter().map(|e| e.hash));
        }
    }
    let mut plan = PackPlan {
        whole: Vec::new(),
        partial: Vec::new(),
    };
    for o in send {
        let h = header(local, &o)?;
        let entries = h.entries;
        let missing: Vec<PackEntry> = entries
            .iter()
            .filter(|e| !there.contains(&e.hash))
            .cloned()
            .collect();
        there.extend(entries.iter().map(|e| e.hash));
        rep.chunks_deduplicated += (entries.len() - missing.len()) as u64;
        if missing.len() == entries.len() {
            plan.whole.push(o);
        } else if missing.is_empty() {
            rep.packs_deduplicated += 1;
        } else {
            rep.packs_repacked += 1;
            plan.partial.push((o.name.name, h.format, missing));
        }
    }
    Ok(plan)
}

/// Sends the chunks of `partial` (each read from its local pack and checked) in new packs;
/// returns the packs and bytes uploaded.
fn repack(repo: &Repo, remote: &Arc<dyn Backend>, partial: &[PartialPack]) -> Result<(u64, u64)> {
    let local = repo.backend();
    let codec = repo.codec();
    let mut roller = PackRoller::new(remote.clone(), codec.clone());
    let mut done = (0u64, 0u64);
    let mut sent = |p: Option<store::SealedPack>| -> Result<()> {
        if let Some(p) = p {
            let info = p.commit()?;
            done.0 += 1;
            done.1 += info.size;
            // Not among the objects counted in the phase's total (an estimate in bytes).
            progress::add(info.size, 0);
            fsutil::failpoint("push-object");
        }
        Ok(())
    };
    let mut frames = FrameCache::default();
    for (pack, format, entries) in partial {
        for e in entries {
            let obj = ObjectName::pack(pack);
            let r = frames
                .chunk(&codec, pack, *format, e, || {
                    local.read_range(&obj, e.offset, e.clen as usize)
                })
                .and_then(|data| roller.add_chunk(e.hash, &data));
            match r {
                Ok(p) => sent(p)?,
                Err(err) => {
                    roller.discard();
                    return Err(err);
                }
            }
        }
    }
    for p in roller.finish()? {
        sent(Some(p))?;
    }
    Ok(done)
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
