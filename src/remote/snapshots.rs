//! The snapshots a remote holds, from its manifests (any host's), and which hosts a command
//! looks at.

use crate::error::Result;
use crate::objects::Manifest;
use crate::repo::{Repo, hostname};
use crate::store::{self, Backend, ObjectKind};

/// Whose snapshots: this host's, one named host's, or every host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// This host's (`hostname()`, or `$SITESNAP_HOST`).
    This,
    /// The host named.
    Named(String),
    /// Every host's.
    All,
}

impl Hosts {
    /// From `--host H` and `--all-hosts`, with `default` when neither is given.
    pub fn from_args(host: Option<&str>, all: bool, default: Hosts) -> Hosts {
        match (host, all) {
            (Some(h), _) => Hosts::Named(h.to_string()),
            (None, true) => Hosts::All,
            (None, false) => default,
        }
    }

    /// Does a snapshot taken on `host` belong?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Hosts::This => host == hostname(),
            Hosts::Named(h) => host == h,
            Hosts::All => true,
        }
    }
}

/// A manifest that cannot be used: its name and why.
pub type Unreadable = (String, String);

/// Every manifest on the remote, decoded with the repository's key and checked against its
/// name, oldest first; the unreadable ones apart.
pub fn remote_manifests(
    repo: &Repo,
    backend: &dyn Backend,
) -> Result<(Vec<Manifest>, Vec<Unreadable>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for o in backend.list(ObjectKind::Snapshot)? {
        let n = o.name.name.clone();
        let stored = backend.read(&o.name)?;
        let m = repo
            .decode_object(ObjectKind::Snapshot, &n, &stored)
            .and_then(|b| Manifest::decode(&b))
            .and_then(|m| m.record(false).map(|_| m));
        match m {
            Ok(m) if m.id == n => good.push(m),
            Ok(m) => bad.push((n, format!("it names snapshot {}", m.id))),
            Err(e) => bad.push((n, store::cause(&e))),
        }
    }
    good.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    Ok((good, bad))
}
