//! A blob's chunk list, direct or indirect. A blob of up to [`DIRECT_MAX`] chunks lists its
//! chunk ids itself; a longer one (a large database dump) lists the ids of *list chunks*:
//! its chunk ids cut into runs of about 7 ids after an id whose leading bytes match a mask
//! (at least [`LIST_MIN`], at most [`LIST_MAX`] ids a run), each run stored as a chunk like any
//! other (32 bytes an id, no header). Since the cut depends on the ids alone, an unchanged
//! stretch of a long list gives the same list chunks in the next snapshot and is stored once.
//! The blob id is SHA-256 of all chunk ids in either form, so both forms of one blob are the
//! same blob. [`ListBuilder`] takes the ids one at a time as the capture stores them, never
//! holding more than the direct limit plus one run; [`ChunkList::expand`] is the one way every
//! reader gets the full list back (reading the list chunks and checking count and id).

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::ChunkReader;
use sha2::{Digest, Sha256};

/// The most chunks a blob lists directly.
pub const DIRECT_MAX: usize = 4096;
/// The direct limit in force: [`DIRECT_MAX`]; for tests only, debug builds take another
/// from `SITESNAP_TEST_LIST_DIRECT_MAX` (release builds ignore it), so a small dump can be
/// stored with an indirect list.
pub fn direct_max() -> usize {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("SITESNAP_TEST_LIST_DIRECT_MAX")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n;
    }
    DIRECT_MAX
}

/// The fewest ids in a list chunk (but the last). List chunks are small (about 7 ids, 224
/// bytes) because a change at random touches most list chunks of a dump whatever their
/// size: on the 200 MB dump of docs/performance.md, 1% of the rows changed at random rewrote
/// 93% of 64-id list chunks (a snapshot adding 14.9% of the first's pack bytes) and 34% of
/// 7-id ones (9.4%). The price: a top-level list nine times longer (8.6 MB for a 2 GB dump,
/// whose snapshot then peaks at 85 MB RSS instead of 54 MB) and more chunk-index rows.
pub const LIST_MIN: usize = 4;
/// The most ids in a list chunk.
pub const LIST_MAX: usize = 64;
/// Past [`LIST_MIN`], a list chunk ends after an id whose first four bytes (LE) are divisible
/// by this: list chunks average about `LIST_MIN + LIST_DIVISOR` ids.
const LIST_DIVISOR: u32 = 4;

/// A blob's chunk list as stored (catalogue row and blob list object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkList {
    /// The chunk ids themselves.
    Direct(Vec<Hash>),
    /// `count` chunk ids, kept in the list chunks `lists`, in order.
    Indirect {
        /// How many chunk ids the list chunks hold in all.
        count: u64,
        /// The list chunks.
        lists: Vec<Hash>,
    },
}

impl ChunkList {
    /// The ids stored in the list itself: chunk ids (direct) or list chunk ids (indirect).
    pub fn stored(&self) -> &[Hash] {
        match self {
            ChunkList::Direct(c) => c,
            ChunkList::Indirect { lists, .. } => lists,
        }
    }

    /// The list chunks (none for a direct list).
    pub fn list_chunks(&self) -> &[Hash] {
        match self {
            ChunkList::Direct(_) => &[],
            ChunkList::Indirect { lists, .. } => lists,
        }
    }

    /// The number of chunk ids the blob has.
    pub fn count(&self) -> u64 {
        match self {
            ChunkList::Direct(c) => c.len() as u64,
            ChunkList::Indirect { count, .. } => *count,
        }
    }

    /// The full chunk list of blob `id`. An indirect list's chunks are read through `r`
    /// (each verified) and the whole list checked against its count and against `id`.
    pub fn expand(self, id: &Hash, r: &mut ChunkReader<'_>) -> Result<Vec<Hash>> {
        self.expand_with(id, &mut |l| r.read(l))
    }

    /// [`ChunkList::expand`] reading each list chunk (verified) through `read`.
    pub fn expand_with(
        self,
        id: &Hash,
        read: &mut dyn FnMut(&Hash) -> Result<Vec<u8>>,
    ) -> Result<Vec<Hash>> {
        let (count, lists) = match self {
            ChunkList::Direct(c) => return Ok(c),
            ChunkList::Indirect { count, lists } => (count, lists),
        };
        let bad = |why: String| Error::Corrupt(format!("blob {}: {why}", id.short()));
        let mut out = Vec::with_capacity(count.min((lists.len() * LIST_MAX) as u64) as usize);
        for l in &lists {
            let b = read(l)?;
            if b.len() % 32 != 0 || b.is_empty() {
                return Err(bad(format!(
                    "list chunk {} is not a list of ids",
                    l.short()
                )));
            }
            out.extend(ids_of(&b));
            if out.len() as u64 > count {
                return Err(bad("its list chunks hold more ids than it counts".into()));
            }
        }
        if out.len() as u64 != count {
            return Err(bad("its list chunks hold fewer ids than it counts".into()));
        }
        if Hash::of_list(&out) != *id {
            return Err(bad("its chunk list does not hash to its name".into()));
        }
        Ok(out)
    }
}

/// The ids in a list chunk's bytes (whole 32-byte ids; a caller checks the length).
pub fn ids_of(b: &[u8]) -> impl Iterator<Item = Hash> + '_ {
    b.chunks_exact(32)
        .map(|c| Hash(c.try_into().expect("32 bytes")))
}

/// Does a list chunk of `len` ids end after `id`?
fn ends_after(id: &Hash, len: usize) -> bool {
    len >= LIST_MAX
        || (len >= LIST_MIN
            && u32::from_le_bytes(id.0[..4].try_into().expect("4 bytes")) % LIST_DIVISOR == 0)
}

/// Builds a blob's chunk list from its ids one at a time, storing list chunks through `store`
/// once the list is longer than [`DIRECT_MAX`]; hashes the ids as they pass (the blob id).
pub struct ListBuilder<F: FnMut(&[u8]) -> Result<Hash>> {
    store: F,
    hasher: Sha256,
    count: u64,
    /// Ids not yet in a list chunk (all of them while the list may stay direct).
    open: Vec<Hash>,
    lists: Vec<Hash>,
    indirect: bool,
    direct_max: usize,
}

impl<F: FnMut(&[u8]) -> Result<Hash>> ListBuilder<F> {
    /// A builder storing list chunks through `store` (bytes in, chunk id out).
    pub fn new(store: F) -> Self {
        ListBuilder {
            store,
            hasher: Sha256::new(),
            count: 0,
            open: Vec::new(),
            lists: Vec::new(),
            indirect: false,
            direct_max: direct_max(),
        }
    }

    /// Adds the next chunk id.
    pub fn push(&mut self, id: Hash) -> Result<()> {
        self.hasher.update(id.0);
        self.count += 1;
        self.open.push(id);
        if self.indirect {
            if ends_after(&id, self.open.len()) {
                self.seal()?;
            }
        } else if self.open.len() > self.direct_max {
            self.go_indirect()?;
        }
        Ok(())
    }

    /// Cuts the ids held so far into list chunks (the same cuts as if pushed one by one).
    fn go_indirect(&mut self) -> Result<()> {
        self.indirect = true;
        let held = std::mem::take(&mut self.open);
        for id in held {
            self.open.push(id);
            if ends_after(&id, self.open.len()) {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Stores the open ids as one list chunk.
    fn seal(&mut self) -> Result<()> {
        let mut b = Vec::with_capacity(32 * self.open.len());
        for id in self.open.drain(..) {
            b.extend_from_slice(&id.0);
        }
        let l = (self.store)(&b)?;
        self.lists.push(l);
        Ok(())
    }

    /// The blob id (SHA-256 of every id) and its list.
    pub fn finish(mut self) -> Result<(Hash, ChunkList)> {
        let id = Hash(self.hasher.clone().finalize().into());
        if !self.indirect {
            self.open.shrink_to_fit();
            return Ok((id, ChunkList::Direct(self.open)));
        }
        if !self.open.is_empty() {
            self.seal()?;
        }
        self.lists.shrink_to_fit();
        Ok((
            id,
            ChunkList::Indirect {
                count: self.count,
                lists: self.lists,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ids(n: usize, seed: u8) -> Vec<Hash> {
        (0..n)
            .map(|i| Hash::of(&[&[seed][..], &(i as u64).to_le_bytes()].concat()))
            .collect()
    }

    /// Builds the list of `chunks`, keeping the list chunks in `store`.
    fn build(chunks: &[Hash], store: &mut HashMap<Hash, Vec<u8>>) -> (Hash, ChunkList) {
        let mut b = ListBuilder::new(|bytes: &[u8]| {
            let h = Hash::of(bytes);
            store.insert(h, bytes.to_vec());
            Ok(h)
        });
        for c in chunks {
            b.push(*c).unwrap();
        }
        b.finish().unwrap()
    }

    #[test]
    fn short_lists_stay_direct_and_the_id_is_the_hash_of_all_ids() {
        let mut store = HashMap::new();
        for n in [0, 1, DIRECT_MAX] {
            let c = ids(n, 1);
            let (id, l) = build(&c, &mut store);
            assert_eq!(id, Hash::of_list(&c));
            assert_eq!(l, ChunkList::Direct(c));
        }
        assert!(store.is_empty());
    }

    #[test]
    fn long_lists_are_cut_into_list_chunks_by_content() {
        let mut store = HashMap::new();
        let c = ids(100_000, 2);
        let (id, l) = build(&c, &mut store);
        assert_eq!(id, Hash::of_list(&c));
        let ChunkList::Indirect { count, lists } = &l else {
            panic!("direct")
        };
        assert_eq!(*count, 100_000);
        let avg = 100_000 / lists.len();
        let expected = LIST_MIN + LIST_DIVISOR as usize;
        assert!(
            avg * 3 > expected * 2 && avg * 2 < expected * 3,
            "{avg} ids a list chunk"
        );
        let back: Vec<Hash> = lists
            .iter()
            .flat_map(|h| ids_of(&store[h]).collect::<Vec<_>>())
            .collect();
        assert_eq!(back, c);
        for (i, h) in lists.iter().enumerate() {
            let n = store[h].len() / 32;
            assert!(
                n <= LIST_MAX && (n >= LIST_MIN || i + 1 == lists.len()),
                "{n} ids"
            );
        }
        // One id changed in the middle: the lists around it are shared, few are new.
        let mut d = c.clone();
        d[50_000] = Hash::of(b"changed");
        let (_, l2) = build(&d, &mut store);
        let new = l2.stored().iter().filter(|h| !lists.contains(h)).count();
        assert!((1..=3).contains(&new), "{new} new list chunks");
    }
}
