//! A blob's chunk list, direct or indirect. A blob of up to [`DIRECT_MAX`] chunks lists its
//! chunk ids itself; a longer one (a large database dump) lists the ids of *list chunks*:
//! its chunk ids cut into runs of about 7 ids after an id whose leading bytes match a mask
//! (at least [`LIST_MIN`], at most [`LIST_MAX`] ids a run), each run stored as a chunk like any
//! other (32 bytes an id, no header). Since the cut depends on the ids alone, an unchanged
//! stretch of a long list gives the same list chunks in the next snapshot and is stored once.
//! A list of list chunks longer than [`UPPER_DIRECT_MAX`] (a dump of some 2 GB and more) is
//! cut the same way again, one level up, as often as needed: the list a blob keeps itself
//! never passes that limit, whatever the dump's size.
//! The blob id is SHA-256 of all chunk ids in any form, so every form of one blob is the
//! same blob. [`ListBuilder`] takes the ids one at a time as the capture stores them, never
//! holding more than the direct limits plus one run a level; [`ChunkList::ids`] is the one way
//! every reader gets the ids back (streamed from the list chunks of every level, checking
//! count and id at the end; [`ChunkList::expand`] collects them).

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::store::ChunkReader;
use sha2::{Digest, Sha256};

/// The most chunks a blob lists directly.
pub const DIRECT_MAX: usize = 4096;
/// The most list chunk ids a list keeps directly before they are cut into list chunks one
/// level up (2 MB of ids: a 2 GB dump of 1.9 million chunks has some 270,000 list chunks).
/// Large, so a dump of a few hundred MB keeps one level: under random churn nearly every
/// upper list chunk changes, and those are stored in packs (counted in `bytes_added`).
pub const UPPER_DIRECT_MAX: usize = 65_536;

/// A limit in force: `default`; for tests only, debug builds take another from the
/// environment variable `var` (release builds ignore it), so a small dump can be stored with
/// an indirect list of one or more levels.
fn limit(var: &str, default: usize) -> usize {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return n;
    }
    let _ = var;
    default
}

/// The direct limit for chunk ids in force: [`DIRECT_MAX`], or (debug builds, tests)
/// `SITESNAP_TEST_LIST_DIRECT_MAX`.
pub fn direct_max() -> usize {
    limit("SITESNAP_TEST_LIST_DIRECT_MAX", DIRECT_MAX)
}

/// The direct limit for list chunk ids in force: [`UPPER_DIRECT_MAX`], or (debug builds,
/// tests) `SITESNAP_TEST_LIST_UPPER_MAX`.
pub fn upper_direct_max() -> usize {
    limit("SITESNAP_TEST_LIST_UPPER_MAX", UPPER_DIRECT_MAX)
}

/// The fewest ids in a list chunk (but the last). List chunks are small (about 7 ids, 224
/// bytes) because a change at random touches most list chunks of a dump whatever their
/// size: on the 200 MB dump of docs/performance.md, 1% of the rows changed at random rewrote
/// 93% of 64-id list chunks (a snapshot adding 14.9% of the first's pack bytes) and 34% of
/// 7-id ones (9.4%). The price: more list chunks (some 270,000 for a 2 GB dump, cut one level
/// up again past [`UPPER_DIRECT_MAX`]) and more chunk-index rows.
pub const LIST_MIN: usize = 4;
/// The most ids in a list chunk.
pub const LIST_MAX: usize = 64;
/// Past [`LIST_MIN`], a list chunk ends after an id whose first four bytes (LE) are divisible
/// by this: list chunks average about `LIST_MIN + LIST_DIVISOR` ids.
const LIST_DIVISOR: u32 = 4;
/// The most levels of list chunks a reader accepts (a 4 GB dump has 3; each level divides
/// the count by about 8).
pub const MAX_LEVELS: u32 = 16;

/// A blob's chunk list as stored (catalogue row and blob list object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkList {
    /// The chunk ids themselves.
    Direct(Vec<Hash>),
    /// `count` chunk ids, kept in the list chunks `lists`, in order. With `levels` 1 the
    /// list chunks hold chunk ids; with more, they hold the ids of list chunks one level down.
    Indirect {
        /// How many chunk ids the list chunks hold in all.
        count: u64,
        /// How many levels of list chunks lie between `lists` and the chunk ids (>= 1).
        levels: u32,
        /// The list chunks of the top level.
        lists: Vec<Hash>,
    },
}

impl ChunkList {
    /// The ids stored in the list itself: chunk ids (direct) or top-level list chunk ids.
    pub fn stored(&self) -> &[Hash] {
        match self {
            ChunkList::Direct(c) => c,
            ChunkList::Indirect { lists, .. } => lists,
        }
    }

    /// How many levels of list chunks the list has (0: direct).
    pub fn levels(&self) -> u32 {
        match self {
            ChunkList::Direct(_) => 0,
            ChunkList::Indirect { levels, .. } => *levels,
        }
    }

    /// The number of chunk ids the blob has.
    pub fn count(&self) -> u64 {
        match self {
            ChunkList::Direct(c) => c.len() as u64,
            ChunkList::Indirect { count, .. } => *count,
        }
    }

    /// The chunk ids of blob `id`, streamed: see [`ListIds`]. The one way to read them.
    pub fn ids(self, id: &Hash) -> ListIds {
        ListIds::new(self, *id)
    }

    /// The full chunk list of blob `id`. An indirect list's chunks are read through `r`
    /// (each verified) and the whole list checked against its count and against `id`.
    pub fn expand(self, id: &Hash, r: &mut ChunkReader<'_>) -> Result<Vec<Hash>> {
        self.expand_with(id, &mut |l| r.read(l))
    }

    /// [`ChunkList::expand`] reading each list chunk (verified) through `read`, which is
    /// called once for every list chunk of every level, in order (so a caller that must know
    /// them, gc's marking say, records them there).
    pub fn expand_with(
        self,
        id: &Hash,
        read: &mut dyn FnMut(&Hash) -> Result<Vec<u8>>,
    ) -> Result<Vec<Hash>> {
        let mut ids = self.ids(id);
        let mut out = Vec::with_capacity(ids.count().min(1 << 20) as usize);
        while let Some(h) = ids.next_id(read)? {
            out.push(h);
        }
        Ok(out)
    }
}

/// A blob's chunk ids read from its list as they are needed: a reader holds the top-level
/// list and one list chunk a level, never the whole list (a 4 GB dump has 3.8 million ids).
/// An indirect list is checked as it goes: every list chunk holds whole ids, there are
/// exactly as many ids as counted, and (after the last) they hash to the blob id. A direct
/// list is the catalogue's own and is taken as it is.
pub struct ListIds {
    id: Hash,
    count: u64,
    levels: usize,
    /// The lists being read, the top one first: their ids and the next to take.
    stack: Vec<(Vec<Hash>, usize)>,
    seen: u64,
    hasher: Option<Sha256>,
}

impl ListIds {
    fn new(list: ChunkList, id: Hash) -> Self {
        let count = list.count();
        let (levels, top, hasher) = match list {
            ChunkList::Direct(c) => (0, c, None),
            ChunkList::Indirect { levels, lists, .. } => {
                (levels as usize, lists, Some(Sha256::new()))
            }
        };
        ListIds {
            id,
            count,
            levels,
            stack: vec![(top, 0)],
            seen: 0,
            hasher,
        }
    }

    /// The number of chunk ids the list counts.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn bad(&self, why: String) -> Error {
        Error::Corrupt(format!("blob {}: {why}", self.id.short()))
    }

    /// The next chunk id (None after the last), reading list chunks through `read` (which
    /// verifies them) as the walk reaches them.
    pub fn next_id(
        &mut self,
        read: &mut dyn FnMut(&Hash) -> Result<Vec<u8>>,
    ) -> Result<Option<Hash>> {
        if self.hasher.is_some() && self.levels as u32 > MAX_LEVELS {
            return Err(self.bad(format!("its list claims {} levels", self.levels)));
        }
        loop {
            let depth = self.stack.len();
            let Some((ids, next)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(h) = ids.get(*next).copied() else {
                self.stack.pop();
                if self.stack.is_empty() {
                    self.finish()?;
                    return Ok(None);
                }
                continue;
            };
            *next += 1;
            if depth > self.levels {
                return self.take(h).map(Some);
            }
            let b = read(&h)?;
            if b.len() % 32 != 0 || b.is_empty() {
                return Err(self.bad(format!("list chunk {} is not a list of ids", h.short())));
            }
            self.stack.push((ids_of(&b).collect(), 0));
        }
    }

    /// Counts and hashes chunk id `h` on its way out.
    fn take(&mut self, h: Hash) -> Result<Hash> {
        self.seen += 1;
        if let Some(s) = &mut self.hasher {
            if self.seen > self.count {
                return Err(self.bad("its list chunks hold more ids than it counts".into()));
            }
            s.update(h.0);
        }
        Ok(h)
    }

    /// After the last id: the count and the blob id must match.
    fn finish(&mut self) -> Result<()> {
        let Some(s) = self.hasher.take() else {
            return Ok(());
        };
        if self.seen != self.count {
            return Err(self.bad("its list chunks hold fewer ids than it counts".into()));
        }
        if Hash(s.finalize().into()) != self.id {
            return Err(self.bad("its chunk list does not hash to its name".into()));
        }
        Ok(())
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
/// once the list is longer than [`DIRECT_MAX`] (and list chunks of list chunks once those
/// pass [`UPPER_DIRECT_MAX`]); hashes the ids as they pass (the blob id).
pub struct ListBuilder<F: FnMut(&[u8]) -> Result<Hash>> {
    store: F,
    hasher: Sha256,
    count: u64,
    /// Per level, the ids not yet in a list chunk of the level above: chunk ids first, then
    /// list chunk ids of each level. The last level is the top: it keeps its ids until it
    /// passes its direct limit, then it is cut and a level is added above it.
    open: Vec<Vec<Hash>>,
    direct_max: usize,
    upper_max: usize,
}

impl<F: FnMut(&[u8]) -> Result<Hash>> ListBuilder<F> {
    /// A builder storing list chunks through `store` (bytes in, chunk id out).
    pub fn new(store: F) -> Self {
        ListBuilder {
            store,
            hasher: Sha256::new(),
            count: 0,
            open: vec![Vec::new()],
            direct_max: direct_max(),
            upper_max: upper_direct_max(),
        }
    }

    /// Adds the next chunk id.
    pub fn push(&mut self, id: Hash) -> Result<()> {
        self.hasher.update(id.0);
        self.count += 1;
        self.add(0, id)
    }

    /// Adds `id` to `level`: cuts a list chunk after it (below the top), or cuts the whole
    /// top level once it passes its direct limit (the same cuts as if it had been cut from
    /// the start).
    fn add(&mut self, level: usize, id: Hash) -> Result<()> {
        self.open[level].push(id);
        let top = level + 1 == self.open.len();
        if !top {
            if ends_after(&id, self.open[level].len()) {
                self.seal(level)?;
            }
            return Ok(());
        }
        let max = if level == 0 {
            self.direct_max
        } else {
            self.upper_max
        };
        if self.open[level].len() > max {
            self.open.push(Vec::new());
            for id in std::mem::take(&mut self.open[level]) {
                self.add(level, id)?;
            }
        }
        Ok(())
    }

    /// Stores the open ids of `level` as one list chunk and adds it to the level above.
    fn seal(&mut self, level: usize) -> Result<()> {
        let mut b = Vec::with_capacity(32 * self.open[level].len());
        for id in self.open[level].drain(..) {
            b.extend_from_slice(&id.0);
        }
        let l = (self.store)(&b)?;
        self.add(level + 1, l)
    }

    /// The blob id (SHA-256 of every id) and its list.
    pub fn finish(mut self) -> Result<(Hash, ChunkList)> {
        let id = Hash(self.hasher.clone().finalize().into());
        let mut level = 0;
        // Sealing a level's last ids may add a level above (its direct limit passed).
        while level + 1 < self.open.len() {
            if !self.open[level].is_empty() {
                self.seal(level)?;
            }
            level += 1;
        }
        let levels = self.open.len() - 1;
        let mut top = self.open.pop().expect("a level");
        top.shrink_to_fit();
        if levels == 0 {
            return Ok((id, ChunkList::Direct(top)));
        }
        Ok((
            id,
            ChunkList::Indirect {
                count: self.count,
                levels: levels as u32,
                lists: top,
            },
        ))
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

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
        let ChunkList::Indirect {
            count,
            levels: 1,
            lists,
        } = &l
        else {
            panic!("not one level: {l:?}")
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

    /// Builds with `direct` and `upper` as the direct limits (what the test variables set).
    fn build_with(
        chunks: &[Hash],
        store: &mut HashMap<Hash, Vec<u8>>,
        direct: usize,
        upper: usize,
    ) -> (Hash, ChunkList) {
        let mut b = ListBuilder::new(|bytes: &[u8]| {
            let h = Hash::of(bytes);
            store.insert(h, bytes.to_vec());
            Ok(h)
        });
        b.direct_max = direct;
        b.upper_max = upper;
        for c in chunks {
            b.push(*c).unwrap();
        }
        b.finish().unwrap()
    }

    fn read_from<'s>(
        store: &'s HashMap<Hash, Vec<u8>>,
        seen: &'s mut Vec<Hash>,
    ) -> impl FnMut(&Hash) -> Result<Vec<u8>> + 's {
        move |h: &Hash| {
            seen.push(*h);
            store
                .get(h)
                .cloned()
                .ok_or_else(|| Error::Corrupt("missing".into()))
        }
    }

    #[test]
    fn a_long_list_of_list_chunks_is_cut_again_one_level_up() {
        let c = ids(200_000, 3);
        // 200,000 ids (about 7 a list chunk): some 28,600 list chunks, some 4,100 above them,
        // some 580 at the top.
        let mut store = HashMap::new();
        let (id, l) = build_with(&c, &mut store, 4096, 1000);
        assert_eq!(id, Hash::of_list(&c));
        assert_eq!(l.levels(), 3, "{} top ids", l.stored().len());
        assert!(l.stored().len() <= 1000 && l.stored().len() > 300);
        let mut seen = Vec::new();
        let back = l
            .clone()
            .expand_with(&id, &mut read_from(&store, &mut seen))
            .unwrap();
        assert_eq!(back, c);
        // Every list chunk of every level is read once, and they are all there is.
        assert_eq!(seen.len(), store.len());
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), store.len());
        // The same list through the one-level builder names the same level-1 list chunks.
        let mut flat = HashMap::new();
        let (_, l1) = build_with(&c, &mut flat, 4096, usize::MAX);
        assert_eq!(l1.levels(), 1);
        assert!(l1.stored().iter().all(|h| store.contains_key(h)));
        // One id changed: a few new list chunks a level.
        let mut d = c.clone();
        d[100_000] = Hash::of(b"changed");
        let before: HashSet<Hash> = store.keys().copied().collect();
        let (_, l2) = build_with(&d, &mut store, 4096, 1000);
        assert_eq!(l2.levels(), 3);
        let new = store.len() - before.len();
        assert!((3..=9).contains(&new), "{new} new list chunks");
    }

    #[test]
    fn a_walk_refuses_a_wrong_count_a_wrong_id_and_a_broken_list_chunk() {
        let c = ids(3_000, 4);
        let mut store = HashMap::new();
        let (id, l) = build_with(&c, &mut store, 16, 16);
        let ChunkList::Indirect {
            count,
            levels,
            lists,
        } = l.clone()
        else {
            panic!("direct")
        };
        assert!(levels >= 2, "{levels} levels");
        let walk = |l: ChunkList, id: &Hash, store: &HashMap<Hash, Vec<u8>>| {
            let mut seen = Vec::new();
            l.expand_with(id, &mut read_from(store, &mut seen))
        };
        assert_eq!(walk(l.clone(), &id, &store).unwrap(), c);
        for wrong in [count - 1, count + 1] {
            let l = ChunkList::Indirect {
                count: wrong,
                levels,
                lists: lists.clone(),
            };
            assert!(walk(l, &id, &store).is_err(), "count {wrong}");
        }
        assert!(walk(l.clone(), &Hash::of(b"other"), &store).is_err());
        let shallow = ChunkList::Indirect {
            count,
            levels: levels - 1,
            lists: lists.clone(),
        };
        assert!(walk(shallow, &id, &store).is_err());
        // A second-level list chunk cut short by a byte is no list of ids.
        let mut broken = store.clone();
        broken.get_mut(&lists[0]).unwrap().pop();
        assert!(walk(l, &id, &broken).is_err());
    }

    #[test]
    fn a_walk_holds_one_list_chunk_a_level() {
        let c = ids(5_000, 5);
        let mut store = HashMap::new();
        let (id, l) = build_with(&c, &mut store, 16, 16);
        let mut walk = l.ids(&id);
        let mut reads = 0;
        let mut read = |h: &Hash| {
            reads += 1;
            Ok(store[h].clone())
        };
        let first = walk.next_id(&mut read).unwrap();
        assert_eq!(first, Some(c[0]));
        assert!(walk.stack.len() <= 5, "{} lists held", walk.stack.len());
        drop(walk);
        assert!(reads <= 4, "{reads} list chunks read for the first id");
    }
}
