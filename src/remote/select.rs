//! `push --site URI`: the objects some sites' snapshots need, so that a push can send only
//! those. A site's snapshots need their manifests and pins, the blob lists their manifests
//! name, the packs holding any chunk of those blobs or of the files their trees list (a pack
//! is sent whole, even when it also holds chunks of other sites), and the site's objects. The
//! key files always go (a push never sends anything the remote could not open). The sets are
//! built from the local catalogue (chunk index) and the repository's own objects; nothing is
//! written.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::objects::{SiteObject, read_manifest};
use crate::repo::Repo;
use crate::store::{ObjectKind, ObjectName};
use crate::tree::Tree;
use std::collections::{HashMap, HashSet};

/// The objects a push is limited to.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    names: HashMap<ObjectKind, HashSet<String>>,
}

impl Selection {
    /// Everything the snapshots of `uris` need. An URI that is neither registered nor has
    /// snapshots is refused.
    pub fn of_sites(repo: &Repo, uris: &[String]) -> Result<Selection> {
        let mut sel = Selection::default();
        let mut blobs: HashMap<Hash, bool> = HashMap::new();
        for uri in uris {
            let snaps = repo.cat.snapshots(Some(uri))?;
            if snaps.is_empty() && repo.cat.find_site(uri)?.is_none() {
                return Err(Error::UnknownSite(uri.clone()));
            }
            for s in snaps {
                for (b, tree) in read_manifest(repo, &s.id)?.blobs()? {
                    blobs.insert(b, tree);
                }
                sel.add(ObjectKind::Snapshot, s.id.clone());
                sel.add(ObjectKind::Pin, s.id);
            }
        }
        sel.add_packs(repo, &blobs)?;
        sel.add_sites(repo, uris)?;
        Ok(sel)
    }

    fn add(&mut self, kind: ObjectKind, name: String) {
        self.names.entry(kind).or_default().insert(name);
    }

    /// Is `n` part of the selection?
    pub fn keeps(&self, n: &ObjectName) -> bool {
        self.names.get(&n.kind).is_some_and(|s| s.contains(&n.name))
    }

    /// The blob lists of `blobs` and the packs holding their chunks and, for trees, the
    /// chunks of every file they list (each tree read once).
    fn add_packs(&mut self, repo: &Repo, blobs: &HashMap<Hash, bool>) -> Result<()> {
        let mut seen: HashSet<Hash> = HashSet::new();
        let mut reader = repo.chunk_reader();
        let mut buf = Vec::new();
        for (id, tree) in blobs {
            self.add(ObjectKind::BlobList, id.to_hex());
            let (list, size) = repo.cat.blob(id)?;
            let mut lists = Vec::new();
            let chunks = list.expand_with(id, &mut |l| {
                lists.push(*l);
                reader.read(l)
            })?;
            self.add_chunks(repo, &lists, &mut seen)?;
            self.add_chunks(repo, &chunks, &mut seen)?;
            if !tree {
                continue;
            }
            buf.clear();
            buf.reserve(size as usize);
            reader.copy_chunks(&chunks, &mut buf)?;
            for e in Tree::decode(&buf)?.entries {
                self.add_chunks(repo, &e.chunks, &mut seen)?;
            }
        }
        Ok(())
    }

    fn add_chunks(&mut self, repo: &Repo, chunks: &[Hash], seen: &mut HashSet<Hash>) -> Result<()> {
        for c in chunks {
            if !seen.insert(*c) {
                continue;
            }
            let loc = repo.cat.chunk_location(c)?.ok_or_else(|| {
                Error::Corrupt(format!(
                    "chunk {} is in no pack of the repository (`sitesnap verify` names the \
                     damage)",
                    c.short()
                ))
            })?;
            self.add(ObjectKind::Pack, loc.pack);
        }
        Ok(())
    }

    /// Every stored version of the sites' site objects.
    fn add_sites(&mut self, repo: &Repo, uris: &[String]) -> Result<()> {
        let b = repo.backend();
        for o in b.list(ObjectKind::Site)? {
            let stored = b.read(&o.name)?;
            let n = o.name.name;
            let s = repo
                .decode_object(ObjectKind::Site, &n, &stored)
                .and_then(|p| SiteObject::decode(&p))
                .map_err(|e| Error::Corrupt(format!("site object {n}: {e}")))?;
            if uris.contains(&s.uri) {
                self.add(ObjectKind::Site, n);
            }
        }
        Ok(())
    }
}
