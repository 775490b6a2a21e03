//! `prune --remote NAME --keep-...`: applies a retention policy to a remote's snapshots, which
//! may differ from the local one (7 daily here, 12 monthly in the bucket). Snapshots are
//! grouped per host and site, and only the hosts asked for are pruned (default: this one), so
//! a server never thins another's history unless told to. Pinned snapshots (a pin object on
//! the remote) are kept. A forget removes the manifest, then its pin; the data goes with
//! `gc --remote`. Holds the remote's exclusive lock; unreadable manifests are never removed.

use super::lock::{LockMode, acquire};
use super::snapshots::{Hosts, remote_manifests};
use crate::error::Result;
use crate::objects::Manifest;
use crate::repo::Repo;
use crate::retention::{Candidate, Policy, Reason, apply};
use crate::store::{Backend, ObjectKind, ObjectName};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What to prune.
#[derive(Debug, Clone)]
pub struct RemotePruneRequest {
    /// The policy (remote retention is given on the command line).
    pub policy: Policy,
    /// Whose snapshots.
    pub hosts: Hosts,
    /// Only this site.
    pub site: Option<String>,
    /// Decide and report; remove nothing (no lock taken).
    pub dry_run: bool,
    /// Remove conflicting locks instead of refusing.
    pub break_lock: bool,
}

/// One snapshot's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteEntry {
    /// Snapshot id.
    pub id: String,
    /// When it was taken (RFC 3339).
    pub time: String,
    /// Why it is kept (empty: removed).
    pub reasons: Vec<Reason>,
}

/// One host's site.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteGroup {
    /// The host that took the snapshots.
    pub host: String,
    /// The site.
    pub site: String,
    /// Kept, newest first.
    pub keep: Vec<RemoteEntry>,
    /// Removed, newest first.
    pub remove: Vec<RemoteEntry>,
}

/// What `prune --remote` decided (and did, unless a dry run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RemotePruneReport {
    /// The remote's name.
    pub remote: String,
    /// Nothing was removed.
    pub dry_run: bool,
    /// Snapshots removed (or that would be).
    pub removed: u64,
    /// Per host and site.
    pub groups: Vec<RemoteGroup>,
    /// Manifests that cannot be read (left alone).
    pub unreadable: Vec<String>,
}

/// Prunes remote `name`; `now` and `tz` as for local prune.
pub fn prune<Tz: TimeZone>(
    repo: &Repo,
    name: &str,
    backend: &Arc<dyn Backend>,
    req: &RemotePruneRequest,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<RemotePruneReport> {
    let _lock = match req.dry_run {
        true => None,
        false => Some(acquire(
            repo,
            backend,
            name,
            "prune --remote",
            LockMode::Exclusive,
            req.break_lock,
        )?),
    };
    let (manifests, bad) = remote_manifests(repo, backend.as_ref())?;
    let pins: HashSet<String> = backend
        .list(ObjectKind::Pin)?
        .into_iter()
        .map(|o| o.name.name)
        .collect();
    let mut groups: BTreeMap<(String, String), Vec<&Manifest>> = BTreeMap::new();
    for m in &manifests {
        if req.hosts.matches(&m.host) && req.site.as_ref().is_none_or(|s| *s == m.site) {
            groups
                .entry((m.host.clone(), m.site.clone()))
                .or_default()
                .push(m);
        }
    }
    let mut rep = RemotePruneReport {
        remote: name.to_string(),
        dry_run: req.dry_run,
        unreadable: bad.into_iter().map(|b| b.0).collect(),
        ..Default::default()
    };
    for ((host, site), ms) in groups {
        let g = decide(&req.policy, &ms, &pins, now, tz, host, site)?;
        if !req.dry_run {
            for e in &g.remove {
                backend.remove(&ObjectName::new(ObjectKind::Snapshot, &e.id))?;
                backend.remove(&ObjectName::new(ObjectKind::Pin, &e.id))?;
            }
        }
        rep.removed += g.remove.len() as u64;
        rep.groups.push(g);
    }
    Ok(rep)
}

/// Applies the policy to one host's site.
fn decide<Tz: TimeZone>(
    policy: &Policy,
    ms: &[&Manifest],
    pins: &HashSet<String>,
    now: DateTime<Utc>,
    tz: &Tz,
    host: String,
    site: String,
) -> Result<RemoteGroup> {
    let mut cands = Vec::new();
    for m in ms {
        let rec = m.record(pins.contains(&m.id))?;
        cands.push(Candidate {
            id: rec.id,
            time: rec.time,
            kind: rec.kind,
            pinned: rec.pinned,
            hold: None,
        });
    }
    let time = |id: &str| {
        ms.iter()
            .find(|m| m.id == id)
            .map(|m| m.time.clone())
            .unwrap_or_default()
    };
    let mut g = RemoteGroup {
        host,
        site,
        keep: Vec::new(),
        remove: Vec::new(),
    };
    for v in apply(policy, &cands, now, tz) {
        let e = RemoteEntry {
            time: time(&v.id),
            id: v.id,
            reasons: v.reasons,
        };
        match v.keep {
            true => g.keep.push(e),
            false => g.remove.push(e),
        }
    }
    Ok(g)
}
