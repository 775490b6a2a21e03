//! Putting a walk's folders in path order. A walk reads folders on several threads, each
//! folder's entries sorted by name as it is read ([`Folder::sorted`]); [`in_path_order`] then
//! lays the folders out in one list sorted by path, byte for byte, without comparing any two
//! full paths of different folders. A repeat snapshot of a 52,000-file platform spent about a
//! sixth of its user-space instructions sorting and merging full paths before.
//!
//! The order of a folder `F`'s part of the list: its entries by name, with each subfolder
//! `d`'s own part placed where the path `F/d/` sorts among them. That is after `d` itself but
//! not always right after it: `d.html` and `d-x` sort between `d` and `d/` (`.` and `-` are
//! below `/`), and two subfolders' parts sort by `d/`, not by `d` (`a.b/` sorts before `a/`).

use super::walk::Item;
use std::collections::HashMap;

/// One walked folder: its path relative to the walk's root (empty for the root), and its
/// entries sorted by name.
pub(super) struct Folder {
    pub(super) rel: Vec<u8>,
    pub(super) items: Vec<Item>,
}

impl Folder {
    /// The folder at `rel` holding `items` (all of them directly inside it), sorted by name.
    pub(super) fn sorted(rel: Vec<u8>, items: Vec<Item>) -> Folder {
        let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
        // The names are sorted, then the items moved once each: sorting the items themselves
        // moved a whole item at every swap (most of a repeat snapshot's `memcpy`).
        let mut order: Vec<(&[u8], u32)> = items
            .iter()
            .enumerate()
            .map(|(i, it)| (&it.entry.path[skip..], i as u32))
            .collect();
        order.sort_unstable();
        let order: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        let items = order
            .into_iter()
            .map(|i| slots[i as usize].take().expect("each item once"))
            .collect();
        Folder { rel, items }
    }
}

/// A folder being laid out: its entries left, and its subfolders' parts left with the keys
/// they sort by (the subfolder's path and a `/`), in that order.
struct Open {
    items: std::iter::Peekable<std::vec::IntoIter<Item>>,
    subs: std::vec::IntoIter<Vec<u8>>,
    next_sub: Option<Vec<u8>>,
}

impl Open {
    fn new(items: Vec<Item>) -> Open {
        let mut subs: Vec<Vec<u8>> = items
            .iter()
            .filter(|i| i.entry.kind == crate::tree::Kind::Dir)
            .map(|i| {
                let mut k = Vec::with_capacity(i.entry.path.len() + 1);
                k.extend_from_slice(&i.entry.path);
                k.push(b'/');
                k
            })
            .collect();
        subs.sort_unstable();
        let mut subs = subs.into_iter();
        let next_sub = subs.next();
        Open {
            items: items.into_iter().peekable(),
            subs,
            next_sub,
        }
    }
}

/// The walk's folders as one list of items sorted by path. `root` is the walk's root folder
/// (empty `rel`); a folder is reached through its parent's entry for it. A folder that cannot
/// be reached so (none should be) still lands in the list, which is then sorted in full.
pub(super) fn in_path_order(folders: Vec<Folder>) -> Vec<Item> {
    let total = folders.iter().map(|f| f.items.len()).sum();
    let mut by_rel: HashMap<Vec<u8>, Vec<Item>, foldhash::fast::RandomState> =
        folders.into_iter().map(|f| (f.rel, f.items)).collect();
    let mut out = Vec::with_capacity(total);
    let mut stack: Vec<Open> = Vec::new();
    if let Some(root) = by_rel.remove(&b""[..]) {
        stack.push(Open::new(root));
    }
    while let Some(top) = stack.last_mut() {
        let item_first = match (top.items.peek(), &top.next_sub) {
            (Some(it), Some(k)) => it.entry.path.as_slice() < k.as_slice(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => {
                stack.pop();
                continue;
            }
        };
        if item_first {
            out.extend(top.items.next());
            continue;
        }
        let key = std::mem::replace(&mut top.next_sub, top.subs.next()).expect("a subfolder");
        // A subfolder that vanished before it was read has no part.
        if let Some(items) = by_rel.remove(&key[..key.len() - 1]) {
            stack.push(Open::new(items));
        }
    }
    if !by_rel.is_empty() {
        out.extend(by_rel.into_values().flatten());
        out.sort_unstable_by(|a, b| a.entry.path.cmp(&b.entry.path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::walk::Base;
    use super::*;
    use crate::tree::Kind;

    fn item(path: &str, dir: bool) -> Item {
        let mut it = Item::test_file(Base::Platform, path.as_bytes(), 0);
        if dir {
            it.entry.kind = Kind::Dir;
        }
        it
    }

    /// Folders given in any order, their entries in any order, come out as one list sorted by
    /// path, with the names that sort between `d` and `d/` and subfolders whose names sort
    /// otherwise than their paths.
    #[test]
    fn folders_come_out_sorted_by_path() {
        let dirs = ["a", "a.b", "a/x", "a/x/y", "b", "a-"];
        let files = [
            "a.html", "a!", "a/z", "a/x.txt", "a/x/y/f", "a/x/y.", "a.b/c", "b/c", "0", "z", "a-/q",
        ];
        let mut all: Vec<&str> = dirs.iter().chain(files.iter()).copied().collect();
        let mut folders: HashMap<String, Vec<Item>> = HashMap::new();
        for p in &all {
            let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
            folders
                .entry(parent.to_string())
                .or_default()
                .push(item(p, dirs.contains(p)));
        }
        let mut given: Vec<Folder> = folders
            .into_iter()
            .map(|(rel, mut items)| {
                items.reverse();
                Folder::sorted(rel.into_bytes(), items)
            })
            .collect();
        given.reverse();
        let got: Vec<String> = in_path_order(given)
            .into_iter()
            .map(|i| String::from_utf8(i.entry.path).unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(got, all);
        assert!(in_path_order(Vec::new()).is_empty());
    }

    /// A folder with no entry for it in its parent still lands in the list, in order.
    #[test]
    fn a_folder_not_reached_still_lands_in_order() {
        let got: Vec<String> = in_path_order(vec![
            Folder::sorted(Vec::new(), vec![item("b", false), item("a", false)]),
            Folder::sorted(b"x".to_vec(), vec![item("x/1", false)]),
        ])
        .into_iter()
        .map(|i| String::from_utf8(i.entry.path).unwrap())
        .collect();
        assert_eq!(got, ["a", "b", "x/1"]);
    }
}
