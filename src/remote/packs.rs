//! What a remote's packs hold, learnt from their headers (three range reads each), as a chunk
//! index: `restore --from` and `gc --remote` read trees straight from the remote through it.

use crate::catalog::ChunkLocation;
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::{
    self, Backend, ChunkCodec, ChunkIndex, ObjectInfo, ObjectKind, PackHeader, PackInfo,
};
use std::collections::{BTreeMap, HashMap};

/// Where the remote's packs hold each chunk.
#[derive(Default)]
pub(crate) struct RemotePacks {
    /// A chunk's first place.
    pub at: HashMap<Hash, ChunkLocation>,
    /// Every pack read: its size and header entries.
    pub packs: BTreeMap<String, (u64, PackHeader)>,
    /// Packs whose header cannot be read.
    pub bad: Vec<String>,
    /// Packs listed (read or skipped).
    pub listed: u64,
}

impl RemotePacks {
    /// Reads the header of every remote pack `skip` does not pass over.
    pub fn read(
        remote: &dyn Backend,
        codec: &ChunkCodec,
        skip: &dyn Fn(&ObjectInfo) -> Result<bool>,
    ) -> Result<RemotePacks> {
        let mut out = RemotePacks::default();
        for info in remote.list(ObjectKind::Pack)? {
            out.listed += 1;
            if skip(&info)? {
                continue;
            }
            let n = info.name.name.clone();
            let header = store::pack::read_header_with(&n, info.size, codec, |o, l| {
                remote.read_range(&info.name, o, l)
            });
            let Ok(header) = header else {
                out.bad.push(n);
                continue;
            };
            for e in &header.entries {
                out.at.entry(e.hash).or_insert_with(|| ChunkLocation {
                    pack: n.clone(),
                    format: header.format,
                    offset: e.offset,
                    clen: e.clen,
                    ulen: e.ulen,
                    inner: e.inner,
                });
            }
            out.packs.insert(n, (info.size, header));
        }
        Ok(out)
    }
}

impl ChunkIndex for RemotePacks {
    fn chunk_exists(&self, h: &Hash) -> Result<bool> {
        Ok(self.at.contains_key(h))
    }
    fn chunk_location(&self, h: &Hash) -> Result<Option<ChunkLocation>> {
        Ok(self.at.get(h).cloned())
    }
    fn insert_pack(&self, _info: &PackInfo) -> Result<()> {
        Err(Error::Invalid("a remote's pack list is read-only".into()))
    }
}
