//! Remotes: named places a repository's objects are copied to for disaster recovery, an S3
//! bucket (`s3://BUCKET[/PREFIX]` with an endpoint) or a folder such as a NAS mount
//! (`file:///path`). Their definitions live in `<repo>/remotes.json` (0600) without any
//! credential: S3 credentials come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or from a
//! credentials file readable by its owner only, read when the remote is opened. `push` copies
//! the objects a remote lacks (`push`), `pull` rebuilds a repository from one (`pull`),
//! `verify --remote` checks one (`verify`). A remote is reached through the store's
//! [`Backend`] trait only.

mod config;
mod fetch;
mod gc;
mod lock;
mod packs;
mod prune;
mod pull;
mod push;
mod select;
mod snapshots;
mod verify;

pub use config::{Credentials, DEFAULT_REGION, RemoteDef, RemoteUrl, add, find, load, remove};
pub use fetch::{FetchReport, fetch_snapshot, join};
pub use gc::{RemoteGcOpts, RemoteGcReport, gc};
pub use lock::{LockMode, RemoteLock, STALE_AFTER, acquire, stale_after};
pub use prune::{RemoteEntry, RemoteGroup, RemotePruneReport, RemotePruneRequest, prune};
pub use pull::{PullReport, pull};
pub use push::{PUSH_ORDER, PushReport, push};
pub use snapshots::{Hosts, remote_manifests};
pub use verify::{BadObject, RemoteVerifyReport, verify};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::progress::Meter;
use crate::store::{Backend, LocalBackend, ObjectInfo, ObjectKind};
#[cfg(feature = "s3")]
use crate::store::{S3Backend, S3Config};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many objects move at once.
pub const PARALLEL: usize = 4;

/// Opens the backend of remote `def` (reads the credentials; makes no request yet).
pub fn open(def: &RemoteDef) -> Result<Arc<dyn Backend>> {
    match def.parsed()? {
        RemoteUrl::File(p) => open_folder(&p, &def.name),
        RemoteUrl::S3 { bucket, prefix } => open_s3(def, bucket, prefix),
    }
}

/// An S3 remote (needs the `s3` cargo feature, on by default).
#[cfg(feature = "s3")]
fn open_s3(def: &RemoteDef, bucket: String, prefix: String) -> Result<Arc<dyn Backend>> {
    let c = Credentials::load(def)?;
    let cfg = S3Config {
        bucket,
        prefix,
        endpoint: def.endpoint.clone(),
        region: def.region.clone(),
        key_id: c.key_id,
        secret: c.secret,
    };
    Ok(Arc::new(S3Backend::new(&cfg)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3(def: &RemoteDef, _bucket: String, _prefix: String) -> Result<Arc<dyn Backend>> {
    Err(Error::Remote(format!(
        "remote '{}': this sitesnap was built without S3 support (cargo feature `s3`)",
        def.name
    )))
}

/// A folder remote: the folder must exist (an unmounted NAS must not turn into a local folder
/// at the mount point); its `tmp/` is made on first use.
fn open_folder(p: &Path, name: &str) -> Result<Arc<dyn Backend>> {
    if !p.is_dir() {
        return Err(Error::Remote(format!(
            "remote '{name}': folder {} does not exist (is the share mounted?)",
            p.display()
        )));
    }
    let tmp = p.join("tmp");
    if !tmp.is_dir() {
        fsutil::create_private_dir(&tmp)?;
    }
    Ok(Arc::new(LocalBackend::new(p)))
}

/// Copies `objs` from `from` to `to`, [`PARALLEL`] at a time; returns the objects and bytes
/// copied. Each object is read whole and written whole (atomic on every backend), so a copy
/// killed at any point leaves only complete objects. A pack whose bytes do not hash to its name
/// is never copied. The first failure stops the copy and is returned. Each object copied is
/// counted on `meter` (bytes and one object).
pub(crate) fn copy_objects(
    from: &dyn Backend,
    to: &dyn Backend,
    objs: &[ObjectInfo],
    failpoint: &str,
    meter: Meter,
) -> Result<(u64, u64)> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new((0u64, 0u64));
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(objs.len()) {
            s.spawn(|| {
                loop {
                    if failed.lock().expect("copy state").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(o) = objs.get(i) else { return };
                    match copy_one(from, to, o) {
                        Ok(()) => {
                            let mut d = done.lock().expect("copy state");
                            d.0 += 1;
                            d.1 += o.size;
                            drop(d);
                            meter.add(o.size, 1);
                            fsutil::failpoint(failpoint);
                        }
                        Err(e) => {
                            failed.lock().expect("copy state").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("copy state") {
        return Err(e);
    }
    Ok(done.into_inner().expect("copy state"))
}

fn copy_one(from: &dyn Backend, to: &dyn Backend, o: &ObjectInfo) -> Result<()> {
    let data = from.read(&o.name)?;
    if data.len() as u64 != o.size {
        return Err(Error::Corrupt(format!(
            "{} changed size while being copied",
            o.name
        )));
    }
    if o.name.kind == ObjectKind::Pack && Hash::of(&data).to_hex() != o.name.name {
        return Err(Error::Corrupt(format!(
            "{}: its bytes do not hash to its name; not copied",
            o.name
        )));
    }
    to.put(&o.name, &data)
}
