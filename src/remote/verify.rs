//! `verify --remote NAME`: checks a remote against itself, with the local repository's key
//! (a remote holds only encrypted objects). Every pack's header is read (three range reads) to
//! learn which chunks the remote holds; every manifest, every blob list a manifest names and
//! every tree is decoded; every chunk a snapshot needs must be in a pack whose header is sound.
//! With `read_data`, every pack is downloaded once, its SHA-256 checked against its name and
//! every chunk its header lists opened and decoded through the repository's [`ChunkCodec`].
//! Each damaged snapshot is named with its damaged files as local `verify` names them. Only
//! reads: neither the remote nor the local repository changes.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::objects::{Manifest, decode_blob_list};
use crate::repo::Repo;
use crate::store::{
    self, Backend, ChunkCodec, ChunkList, FrameCache, ObjectInfo, ObjectKind, ObjectName,
    PackEntry, PackFormat, PackHeader,
};
use crate::tree::Tree;
use crate::verify::{DamagedSnapshot, PackProblem, snapshot_damage};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// An object of the remote that cannot be used, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadObject {
    /// The object's name.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// What `verify --remote` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RemoteVerifyReport {
    /// The remote's name.
    pub remote: String,
    /// Nothing is damaged.
    pub ok: bool,
    /// Pack data was downloaded and every chunk decoded.
    pub read_data: bool,
    /// Snapshots (manifests) checked.
    pub snapshots: u64,
    /// Packs checked.
    pub packs: u64,
    /// Blob lists the manifests name.
    pub blob_lists: u64,
    /// Trees read.
    pub trees: u64,
    /// Chunks the snapshots refer to.
    pub referenced_chunks: u64,
    /// Chunks decoded (`read_data`).
    pub chunks_read: u64,
    /// Pack bytes downloaded (`read_data`).
    pub bytes_read: u64,
    /// Packs with problems.
    pub pack_problems: Vec<PackProblem>,
    /// Manifests that cannot be read.
    pub bad_manifests: Vec<BadObject>,
    /// Blob lists a manifest names that are missing or cannot be read.
    pub bad_blob_lists: Vec<BadObject>,
    /// Referenced chunks no sound pack header lists.
    pub missing_chunks: u64,
    /// Snapshots with damage, each with what is damaged.
    pub damaged_snapshots: Vec<DamagedSnapshot>,
}

/// What the remote's packs hold: where each chunk is, and which chunks are damaged.
#[derive(Default)]
struct Packs {
    at: HashMap<Hash, (String, PackFormat, PackEntry)>,
    bad: HashSet<Hash>,
}

impl Packs {
    /// Is chunk `h` missing or damaged?
    fn is_bad(&self, h: &Hash) -> bool {
        self.bad.contains(h) || !self.at.contains_key(h)
    }
}

/// The remote and how to open its objects.
struct Remote<'a> {
    repo: &'a Repo,
    backend: &'a dyn Backend,
    codec: ChunkCodec,
}

/// Verifies remote `name` (reached through `backend`) with `repo`'s key.
pub fn verify(
    repo: &Repo,
    name: &str,
    backend: &dyn Backend,
    read_data: bool,
) -> Result<RemoteVerifyReport> {
    let r = Remote {
        repo,
        backend,
        codec: repo.codec(),
    };
    let mut rep = RemoteVerifyReport {
        remote: name.to_string(),
        read_data,
        ..Default::default()
    };
    let packs = check_packs(&r, read_data, &mut rep)?;
    let manifests = read_manifests(&r, &mut rep)?;
    let mut referenced: HashSet<Hash> = HashSet::new();
    let lists = read_blob_lists(&r, &packs, &manifests, &mut referenced, &mut rep)?;
    referenced.extend(lists.values().flatten().flatten().copied());
    let mut trees: HashMap<Hash, Option<Vec<Vec<u8>>>> = HashMap::new();
    for m in &manifests {
        for (id, is_tree) in m.blobs()? {
            if is_tree && !trees.contains_key(&id) {
                let chunks = lists.get(&id).and_then(|l| l.as_ref());
                let t = read_tree(&r, &packs, chunks, &mut referenced)?;
                rep.trees += u64::from(t.is_some());
                trees.insert(id, t);
            }
        }
    }
    rep.referenced_chunks = referenced.len() as u64;
    rep.missing_chunks = referenced
        .iter()
        .filter(|h| !packs.at.contains_key(h))
        .count() as u64;
    let dump = |d: &Hash| match lists.get(d) {
        Some(Some(chunks)) => chunks.iter().any(|c| packs.is_bad(c)),
        _ => true,
    };
    let mut tree = |id: &Hash| trees.get(id).cloned().flatten();
    for m in &manifests {
        if let Some(d) = snapshot_damage(&m.record(false)?, &mut tree, &dump) {
            rep.damaged_snapshots.push(d);
        }
    }
    rep.ok = rep.pack_problems.is_empty()
        && rep.bad_manifests.is_empty()
        && rep.bad_blob_lists.is_empty()
        && rep.missing_chunks == 0
        && rep.damaged_snapshots.is_empty();
    Ok(rep)
}

/// Reads every pack's header (and with `read_data` every pack whole).
fn check_packs(r: &Remote, read_data: bool, rep: &mut RemoteVerifyReport) -> Result<Packs> {
    let mut packs = Packs::default();
    for info in r.backend.list(ObjectKind::Pack)? {
        rep.packs += 1;
        let (header, problem) = if read_data {
            read_pack(r, &info, rep, &mut packs.bad)?
        } else {
            let obj = &info.name;
            match store::pack::read_header_with(&obj.name, info.size, &r.codec, |o, l| {
                r.backend.read_range(obj, o, l)
            }) {
                Ok(h) => (h, None),
                Err(e) => (
                    no_entries(),
                    Some(format!("bad header: {}", store::cause(&e))),
                ),
            }
        };
        let (format, entries) = (header.format, header.entries);
        if let Some(problem) = problem {
            let damaged_chunks = entries
                .iter()
                .filter(|e| packs.bad.contains(&e.hash))
                .count();
            rep.pack_problems.push(PackProblem {
                pack: info.name.name.clone(),
                problem,
                damaged_chunks: damaged_chunks as u64,
            });
        }
        for e in entries {
            packs.at.insert(e.hash, (info.name.name.clone(), format, e));
        }
    }
    Ok(packs)
}

/// A header listing nothing (of a pack whose own header cannot be read).
fn no_entries() -> PackHeader {
    PackHeader {
        format: PackFormat::V2,
        entries: Vec::new(),
    }
}

/// Downloads one pack, checks its SHA-256 against its name and decodes every chunk its header
/// lists, each frame once (the damaged ones go to `bad`); returns its header and what is
/// wrong with it.
fn read_pack(
    r: &Remote,
    info: &ObjectInfo,
    rep: &mut RemoteVerifyReport,
    bad: &mut HashSet<Hash>,
) -> Result<(PackHeader, Option<String>)> {
    let bytes = r.backend.read(&info.name)?;
    rep.bytes_read += bytes.len() as u64;
    let name = &info.name.name;
    let slice = |o: u64, l: usize| -> Result<Vec<u8>> {
        Ok(bytes
            .get(o as usize..o as usize + l)
            .unwrap_or_default()
            .to_vec())
    };
    let header = match store::pack::read_header_with(name, bytes.len() as u64, &r.codec, slice) {
        Ok(h) => h,
        Err(e) => {
            return Ok((
                no_entries(),
                Some(format!("bad header: {}", store::cause(&e))),
            ));
        }
    };
    rep.chunks_read += header.entries.len() as u64;
    let damaged_list =
        store::frame::damaged_chunks(&r.codec, header.format, &bytes, &header.entries);
    let damaged = damaged_list.len() as u64;
    bad.extend(damaged_list);
    let problem = if damaged > 0 {
        Some(format!(
            "{damaged} chunk(s) cannot be opened or do not match their hash"
        ))
    } else if hex::encode(Sha256::digest(&bytes)) != *name {
        Some("its content does not match its name (damage outside the chunks)".into())
    } else {
        None
    };
    Ok((header, problem))
}

/// Decodes every manifest; the unreadable ones are reported.
fn read_manifests(r: &Remote, rep: &mut RemoteVerifyReport) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for info in r.backend.list(ObjectKind::Snapshot)? {
        let n = &info.name.name;
        let stored = r.backend.read(&info.name)?;
        let m = r
            .repo
            .decode_object(ObjectKind::Snapshot, n, &stored)
            .and_then(|b| Manifest::decode(&b))
            .and_then(|m| m.record(false).map(|_| m));
        match m {
            Ok(m) if m.id == *n => out.push(m),
            Ok(m) => rep.bad_manifests.push(BadObject {
                name: n.clone(),
                problem: format!("it names snapshot {}", m.id),
            }),
            Err(e) => rep.bad_manifests.push(BadObject {
                name: n.clone(),
                problem: store::cause(&e),
            }),
        }
    }
    rep.snapshots = out.len() as u64;
    Ok(out)
}

/// The chunk list of every blob the manifests name (None: missing or unreadable, reported);
/// the list chunks of indirect lists go to `referenced`.
fn read_blob_lists(
    r: &Remote,
    packs: &Packs,
    manifests: &[Manifest],
    referenced: &mut HashSet<Hash>,
    rep: &mut RemoteVerifyReport,
) -> Result<HashMap<Hash, Option<Vec<Hash>>>> {
    let there: HashMap<String, u64> = r
        .backend
        .list(ObjectKind::BlobList)?
        .into_iter()
        .map(|o| (o.name.name, o.size))
        .collect();
    let mut out = HashMap::new();
    for m in manifests {
        for (id, _) in m.blobs()? {
            if out.contains_key(&id) {
                continue;
            }
            let hex = id.to_hex();
            let list = match there.get(&hex) {
                None => Err("missing".to_string()),
                Some(_) => read_blob_list(r, packs, &id, referenced)?,
            };
            if let Err(problem) = &list {
                rep.bad_blob_lists.push(BadObject {
                    name: hex,
                    problem: problem.clone(),
                });
            }
            out.insert(id, list.ok());
        }
    }
    rep.blob_lists = out.len() as u64;
    Ok(out)
}

/// Reads and checks blob list `id` (Err: why it is unusable; a failing remote is an error);
/// an indirect list is expanded from its list chunks, which go to `referenced`.
fn read_blob_list(
    r: &Remote,
    packs: &Packs,
    id: &Hash,
    referenced: &mut HashSet<Hash>,
) -> Result<std::result::Result<Vec<Hash>, String>> {
    let hex = id.to_hex();
    let stored = r
        .backend
        .read(&ObjectName::new(ObjectKind::BlobList, &hex))?;
    let chunks = r
        .repo
        .decode_object(ObjectKind::BlobList, &hex, &stored)
        .and_then(|b| decode_blob_list(&b));
    Ok(match chunks {
        Err(e) => Err(store::cause(&e)),
        Ok((ChunkList::Direct(c), _)) if Hash::of_list(&c) != *id => {
            Err("its chunk list does not hash to its name".into())
        }
        Ok((ChunkList::Direct(c), _)) => Ok(c),
        Ok((list, _)) => {
            let mut frames = FrameCache::default();
            list.expand_with(id, &mut |c| {
                referenced.insert(*c);
                read_chunk(r, packs, &mut frames, c).ok_or_else(|| {
                    Error::Corrupt(format!("its list chunk {} cannot be read", c.short()))
                })
            })
            .map_err(|e| store::cause(&e))
        }
    })
}

/// Reads chunk `c` from the remote's packs (None: missing, damaged or unreadable).
fn read_chunk(r: &Remote, packs: &Packs, frames: &mut FrameCache, c: &Hash) -> Option<Vec<u8>> {
    if packs.is_bad(c) {
        return None;
    }
    let (pack, format, e) = &packs.at[c];
    let stored = || {
        r.backend
            .read_range(&ObjectName::pack(pack), e.offset, e.clen as usize)
    };
    frames.chunk(&r.codec, pack, *format, e, stored).ok()
}

/// Reads a tree from the remote's packs; adds its files' chunks to `referenced` and returns
/// the paths of its damaged files (None: the tree cannot be read).
fn read_tree(
    r: &Remote,
    packs: &Packs,
    chunks: Option<&Vec<Hash>>,
    referenced: &mut HashSet<Hash>,
) -> Result<Option<Vec<Vec<u8>>>> {
    let Some(chunks) = chunks else {
        return Ok(None);
    };
    if chunks.iter().any(|c| packs.is_bad(c)) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    let mut frames = FrameCache::default();
    for c in chunks {
        match read_chunk(r, packs, &mut frames, c) {
            Some(plain) => buf.extend_from_slice(&plain),
            None => return Ok(None),
        }
    }
    let Ok(tree) = Tree::decode(&buf) else {
        return Ok(None);
    };
    let mut damaged = Vec::new();
    for e in tree.entries {
        referenced.extend(e.chunks.iter().copied());
        if e.chunks.iter().any(|c| packs.is_bad(c)) {
            damaged.push(e.path);
        }
    }
    Ok(Some(damaged))
}
