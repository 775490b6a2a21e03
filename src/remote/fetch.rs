//! `restore <id> --from NAME`: brings one snapshot from a remote into the local repository
//! without pulling the whole remote. Its manifest, its blob lists and only the packs holding
//! chunks it needs (and that the repository lacks) are downloaded, then stored as local
//! objects and indexed, so the restore that follows (and any later one) reads only local data.
//!
//! Everything is checked before anything is written: the manifest and blob lists decode under
//! the repository's key and hash to their names, the trees are read (from the remote's packs)
//! and every chunk the snapshot needs is located in a pack whose header is sound. Packs are
//! then downloaded and checked against their names; a pack that fails removes the packs this
//! fetch already wrote, so a changed object in the bucket leaves the repository as it was.
//! Only then are packs indexed, blob lists, the site object and the manifest written, and the
//! catalogue row added (store first, as every snapshot commit).
//!
//! [`join`] makes a folder that holds no repository yet (only `remotes.json`) into an empty
//! repository under the remote's master key (its key files and a passphrase), so that chunk
//! ids, and therefore deduplication, are shared with every other server of the bucket.

use super::copy_objects;
use super::packs::RemotePacks;
use crate::catalog::SiteRecord;
use crate::crypto::{KeyStore, Passphrase};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::hash::Hash;
use crate::objects::{Manifest, SiteObject, decode_blob_list, repair_catalog};
use crate::repo::{Repo, hostname};
use crate::store::{
    self, Backend, ChunkList, ChunkReader, ObjectInfo, ObjectKind, ObjectName, PackInfo,
};
use crate::tree::Tree;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a fetch did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FetchReport {
    /// The remote's name.
    pub remote: String,
    /// The snapshot's id.
    pub snapshot: String,
    /// Its site.
    pub site: String,
    /// The host that took it.
    pub host: String,
    /// The snapshot was already in the repository: nothing was asked of the remote.
    pub already_local: bool,
    /// Packs on the remote.
    pub remote_packs: u64,
    /// Packs downloaded.
    pub fetched_packs: u64,
    /// Their bytes.
    pub fetched_bytes: u64,
    /// Chunks the snapshot needs.
    pub chunks: u64,
    /// Of those, already in the repository.
    pub chunks_local: u64,
    /// The site was registered from the remote's site object.
    pub site_added: bool,
    /// The site's database needs its password again (`site set --db`).
    pub need_password: bool,
}

/// Makes `root` (a folder without a catalogue) an empty repository under the master key of
/// the remote: its key files are copied into `keys/` and opened with `pass`. On any failure
/// the folder is left as it was (what this wrote is removed).
pub fn join(
    root: &Path,
    name: &str,
    remote: &dyn Backend,
    wait: Duration,
    pass: &dyn Fn() -> Result<Passphrase>,
) -> Result<Repo> {
    if Repo::catalog_path(root).exists() {
        return Err(Error::Refused(format!(
            "{} already holds a repository",
            root.display()
        )));
    }
    let keys = remote.list(ObjectKind::Key)?;
    if keys.is_empty() {
        return Err(Error::Invalid(format!(
            "remote '{name}' holds no key file: push to it from an encrypted repository first"
        )));
    }
    let data = store::local_data_dir(root);
    let made: Vec<std::path::PathBuf> = [data.clone(), root.join("keys")]
        .into_iter()
        .filter(|p| !p.exists())
        .collect();
    let r = (|| {
        fsutil::create_private_dir(root)?;
        fsutil::create_private_dir(&data)?;
        fsutil::create_private_dir(&store::local_tmp_dir(root))?;
        let ks = KeyStore::of_repo(root);
        for o in &keys {
            ks.put_raw(&o.name.name, &remote.read(&o.name)?)?;
        }
        let pass = pass()?;
        repair_catalog(root, wait, Some(&pass)).map(|(repo, _)| repo)
    })();
    if r.is_err() {
        for p in made {
            let _ = std::fs::remove_dir_all(p);
        }
        for f in ["catalog.sqlite.new", "lock"] {
            let _ = std::fs::remove_file(root.join(f));
        }
    }
    r
}

/// A snapshot read from the remote and checked, ready to be stored.
struct Fetched {
    manifest: Manifest,
    manifest_stored: Vec<u8>,
    /// (blob id, chunk list as stored, size, stored bytes of its blob list).
    blobs: Vec<(Hash, ChunkList, u64, Vec<u8>)>,
}

/// Brings snapshot `prefix` (a unique id prefix among the remote's manifests) from `remote`
/// into `repo` (locked by the caller). `host`: the host the snapshot must have been taken on
/// (`None`: this one; another server's snapshot needs its host named).
pub fn fetch_snapshot(
    repo: &Repo,
    name: &str,
    remote: Arc<dyn Backend>,
    prefix: &str,
    host: Option<&str>,
) -> Result<FetchReport> {
    let f = read_snapshot(repo, name, remote.as_ref(), prefix)?;
    check_host(&f.manifest, name, host)?;
    let mut rep = FetchReport {
        remote: name.to_string(),
        snapshot: f.manifest.id.clone(),
        site: f.manifest.site.clone(),
        host: f.manifest.host.clone(),
        ..Default::default()
    };
    let packs = read_pack_headers(repo, remote.as_ref(), &mut rep)?;
    let needed = needed_chunks(repo, &remote, &packs, &f)?;
    let want = packs_to_fetch(repo, &packs, &needed, name, &mut rep)?;
    download(repo, remote.as_ref(), &want)?;
    rep.fetched_packs = want.len() as u64;
    rep.fetched_bytes = want.iter().map(|o| o.size).sum();
    for o in &want {
        let (size, header) = &packs.packs[&o.name.name];
        repo.cat.insert_pack(&PackInfo {
            name: o.name.name.clone(),
            size: *size,
            format: header.format,
            entries: header.entries.clone(),
        })?;
    }
    store_snapshot(repo, remote.as_ref(), &f, &mut rep)?;
    Ok(rep)
}

/// Finds, reads and checks the manifest and its blob lists.
fn read_snapshot(repo: &Repo, name: &str, remote: &dyn Backend, prefix: &str) -> Result<Fetched> {
    let p = prefix.to_ascii_lowercase();
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::UnknownSnapshot(prefix.to_string()));
    }
    let found: Vec<ObjectInfo> = remote
        .list(ObjectKind::Snapshot)?
        .into_iter()
        .filter(|o| o.name.name.starts_with(&p))
        .collect();
    let id = match found.as_slice() {
        [] => {
            return Err(Error::Invalid(format!(
                "remote '{name}' holds no snapshot {prefix}"
            )));
        }
        [one] => one.name.name.clone(),
        many => {
            let ids: Vec<&str> = many.iter().take(5).map(|o| o.name.name.as_str()).collect();
            return Err(Error::AmbiguousSnapshot(prefix.to_string(), ids.join(", ")));
        }
    };
    let bad = |what: String, e: &Error| {
        Error::Corrupt(format!(
            "{what} on remote '{name}' cannot be used ({}); nothing fetched",
            store::cause(e)
        ))
    };
    let obj = ObjectName::new(ObjectKind::Snapshot, &id);
    let manifest_stored = remote.read(&obj)?;
    let manifest = repo
        .decode_object(ObjectKind::Snapshot, &id, &manifest_stored)
        .and_then(|b| Manifest::decode(&b))
        .and_then(|m| m.record(false).map(|_| m))
        .map_err(|e| bad(format!("manifest {id}"), &e))?;
    let mut blobs = Vec::new();
    for (b, _) in manifest.blobs()? {
        let hex = b.to_hex();
        let stored = remote.read(&ObjectName::new(ObjectKind::BlobList, &hex))?;
        let (chunks, size) = repo
            .decode_object(ObjectKind::BlobList, &hex, &stored)
            .and_then(|p| decode_blob_list(&p))
            .and_then(|l| match &l.0 {
                ChunkList::Direct(c) if Hash::of_list(c) != b => Err(Error::Corrupt(
                    "its chunk list does not hash to its name".into(),
                )),
                // An indirect list is checked as its list chunks are read.
                _ => Ok(l),
            })
            .map_err(|e| bad(format!("blob list {}", b.short()), &e))?;
        blobs.push((b, chunks, size, stored));
    }
    Ok(Fetched {
        manifest,
        manifest_stored,
        blobs,
    })
}

/// Refuses another host's snapshot unless that host was named.
fn check_host(m: &Manifest, name: &str, host: Option<&str>) -> Result<()> {
    let me = hostname();
    match host {
        None if m.host != me => Err(Error::Refused(format!(
            "snapshot {} was taken on host '{}', not on this one ('{me}'); to restore another \
             server's snapshot name it: --from {name} --host {}",
            m.id, m.host, m.host
        ))),
        Some(h) if h != m.host => Err(Error::Refused(format!(
            "snapshot {} was taken on host '{}', not on '{h}'",
            m.id, m.host
        ))),
        _ => Ok(()),
    }
}

/// Reads the header of every remote pack the repository does not already hold.
fn read_pack_headers(
    repo: &Repo,
    remote: &dyn Backend,
    rep: &mut FetchReport,
) -> Result<RemotePacks> {
    let local = repo.backend();
    let skip = |info: &ObjectInfo| Ok(local.size(&info.name)? == Some(info.size));
    let packs = RemotePacks::read(remote, &repo.codec(), &skip)?;
    rep.remote_packs = packs.listed;
    Ok(packs)
}

/// Every chunk the snapshot needs: its blob lists' chunks and its trees' file chunks (trees
/// are read from the repository when it holds their chunks, else from the remote).
fn needed_chunks(
    repo: &Repo,
    remote: &Arc<dyn Backend>,
    packs: &RemotePacks,
    f: &Fetched,
) -> Result<HashSet<Hash>> {
    let mut needed: HashSet<Hash> = HashSet::new();
    let trees: HashSet<Hash> = f
        .manifest
        .blobs()?
        .into_iter()
        .filter(|(_, t)| *t)
        .map(|(b, _)| b)
        .collect();
    let mut local = repo.chunk_reader();
    let mut far = ChunkReader::with_backend(remote.clone(), packs, repo.codec());
    let mut read = |c: &Hash| match repo.cat.chunk_exists(c)? {
        true => local.read(c),
        false => far.read(c),
    };
    let unreadable = |what: &str, b: &Hash, e: &Error| {
        Error::Corrupt(format!(
            "{what} {} of snapshot {} cannot be read from the remote: {}; nothing fetched",
            b.short(),
            f.manifest.id,
            store::cause(e)
        ))
    };
    for (b, list, _, _) in &f.blobs {
        // List chunks of every level are needed too: the walk reads each once.
        let chunks = list
            .clone()
            .expand_with(b, &mut |c| {
                needed.insert(*c);
                read(c)
            })
            .map_err(|e| unreadable("blob list", b, &e))?;
        needed.extend(chunks.iter().copied());
        if !trees.contains(b) {
            continue;
        }
        let mut buf = Vec::new();
        for c in &chunks {
            let plain = read(c).map_err(|e| unreadable("tree", b, &e))?;
            buf.extend_from_slice(&plain);
        }
        let tree = Tree::decode(&buf)?;
        for e in tree.entries {
            needed.extend(e.chunks);
        }
    }
    Ok(needed)
}

/// The remote packs holding the needed chunks the repository lacks.
fn packs_to_fetch(
    repo: &Repo,
    packs: &RemotePacks,
    needed: &HashSet<Hash>,
    name: &str,
    rep: &mut FetchReport,
) -> Result<Vec<ObjectInfo>> {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    rep.chunks = needed.len() as u64;
    for h in needed {
        if repo.cat.chunk_exists(h)? {
            rep.chunks_local += 1;
            continue;
        }
        let loc = packs.at.get(h).ok_or_else(|| {
            Error::Corrupt(format!(
                "chunk {} of snapshot {} is in no sound pack of remote '{name}'; nothing fetched \
                 (`sitesnap verify --remote {name}` names the damage)",
                h.short(),
                rep.snapshot
            ))
        })?;
        want.insert(loc.pack.clone(), packs.packs[&loc.pack].0);
    }
    Ok(want
        .into_iter()
        .map(|(n, size)| ObjectInfo {
            name: ObjectName::pack(&n),
            size,
        })
        .collect())
}

/// Packs written by a fetch that has not finished: removed again if it fails.
struct Written<'a> {
    repo: &'a Repo,
    names: Vec<ObjectName>,
    done: bool,
}

impl Drop for Written<'_> {
    fn drop(&mut self) {
        if !self.done {
            for n in &self.names {
                let _ = self.repo.backend().remove(n);
            }
        }
    }
}

/// Downloads `want` (each pack checked against its name). On failure the packs that did
/// arrive are removed and the error returned.
fn download(repo: &Repo, remote: &dyn Backend, want: &[ObjectInfo]) -> Result<()> {
    let local = repo.backend();
    let mut w = Written {
        repo,
        names: Vec::new(),
        done: false,
    };
    for o in want {
        if local.size(&o.name)?.is_none() {
            w.names.push(o.name.clone());
        }
    }
    copy_objects(
        remote,
        local.as_ref(),
        want,
        "fetch-pack",
        crate::progress::Meter(false),
    )?;
    w.done = true;
    Ok(())
}

/// Writes the blob lists, the site object (when the site is not registered here) and the
/// manifest, then the catalogue row.
fn store_snapshot(
    repo: &Repo,
    remote: &dyn Backend,
    f: &Fetched,
    rep: &mut FetchReport,
) -> Result<()> {
    let local = repo.backend();
    for (b, _, _, stored) in &f.blobs {
        let n = ObjectName::new(ObjectKind::BlobList, &b.to_hex());
        if local.size(&n)?.is_none() {
            local.put(&n, stored)?;
        }
    }
    if repo.cat.find_site(&f.manifest.site)?.is_none()
        && let Some((n, stored, s)) = remote_site(repo, remote, &f.manifest.site)?
    {
        local.put(&ObjectName::new(ObjectKind::Site, &n), &stored)?;
        let rec: SiteRecord = s.record();
        repo.cat.add_site(&rec)?;
        if let Some(w) = &s.web_root {
            repo.cat.set_platform_web_root(&rec.platform, w)?;
        }
        rep.site_added = true;
        rep.need_password = s.db_password;
    }
    let id = &f.manifest.id;
    local.put(
        &ObjectName::new(ObjectKind::Snapshot, id),
        &f.manifest_stored,
    )?;
    let blobs: Vec<crate::catalog::BlobRow> = f
        .blobs
        .iter()
        .map(|(b, c, s, _)| (*b, c.clone(), *s))
        .collect();
    repo.cat
        .commit_snapshot(&f.manifest.record(false)?, &blobs, &[])
}

/// The newest version of `uri`'s site object on the remote: (name, stored bytes, object).
fn remote_site(
    repo: &Repo,
    remote: &dyn Backend,
    uri: &str,
) -> Result<Option<(String, Vec<u8>, SiteObject)>> {
    let mut best: Option<(String, Vec<u8>, SiteObject)> = None;
    for o in remote.list(ObjectKind::Site)? {
        let stored = remote.read(&o.name)?;
        let Ok(s) = repo
            .decode_object(ObjectKind::Site, &o.name.name, &stored)
            .and_then(|b| SiteObject::decode(&b))
        else {
            continue;
        };
        if s.uri == uri && best.as_ref().is_none_or(|b| b.2.seq < s.seq) {
            best = Some((o.name.name, stored, s));
        }
    }
    Ok(best)
}
