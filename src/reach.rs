//! Reachability: which blobs and chunks the snapshots refer to. Every snapshot names up to four
//! blobs (platform, site and bindings trees, database dump); a blob's own chunk list is live,
//! and so is every chunk of every entry of a tree. The live set is kept in SQLite temp tables on
//! the repository's catalogue connection (`live_blobs`, `live_chunks`), not in RAM, so a
//! repository of millions of chunks needs no more memory than a small one; each distinct tree
//! blob is read and decoded once however many snapshots share it. Used by `gc` (which must
//! refuse to delete anything when a tree cannot be read) and `verify` (which reports it). This
//! module never deletes or writes repository data.

use crate::error::Result;
use crate::hash::Hash;
use crate::repo::Repo;
use crate::tree::Tree;
use std::collections::HashSet;

/// A blob whose chunks could not all be listed: a missing blob row, or a tree that could not
/// be read or decoded.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The blob.
    pub blob: Hash,
    /// Is it a tree (else a dump)?
    pub tree: bool,
    /// Why it cannot be read.
    pub error: String,
}

/// The outcome of marking.
#[derive(Debug, Clone, Default)]
pub struct Marked {
    /// Blobs the snapshots name.
    pub blobs: u64,
    /// Distinct trees read.
    pub trees: u64,
    /// Tree entries seen.
    pub entries: u64,
    /// Live chunks.
    pub chunks: u64,
    /// Blobs whose chunks could not all be listed.
    pub unreadable: Vec<Unreadable>,
}

/// Builds the live set in the catalogue's temp tables. Tree chunks listed in `bad` (known
/// damaged) are not read; such trees are reported as unreadable.
pub fn mark(repo: &Repo, bad: &HashSet<Hash>) -> Result<Marked> {
    let cat = &repo.cat;
    cat.live_begin()?;
    let blobs = cat.live_blobs()?;
    let mut out = Marked {
        blobs: blobs.len() as u64,
        ..Marked::default()
    };
    let tx = cat.batch()?;
    let mut reader = repo.chunk_reader();
    let mut buf = Vec::new();
    for (id, is_tree) in blobs {
        let listed = cat.blob(&id).and_then(|(list, size)| {
            // An indirect list's list chunks (of every level) are live; one that cannot be
            // read leaves the blob unlisted (gc then stops, verify reports it).
            let mut lists = Vec::new();
            let chunks = list.expand_with(&id, &mut |l| {
                lists.push(*l);
                if bad.contains(l) {
                    return Err(crate::error::Error::Corrupt(format!(
                        "its list chunk {} is damaged",
                        l.short()
                    )));
                }
                reader.read(l)
            });
            cat.live_add(&lists)?;
            Ok((chunks?, size))
        });
        let (chunks, size) = match listed {
            Ok(b) => b,
            Err(e) => {
                out.unreadable.push(Unreadable {
                    blob: id,
                    tree: is_tree,
                    error: e.to_string(),
                });
                continue;
            }
        };
        cat.live_add(&chunks)?;
        if !is_tree {
            continue;
        }
        out.trees += 1;
        if let Some(b) = chunks.iter().find(|c| bad.contains(c)) {
            out.unreadable.push(Unreadable {
                blob: id,
                tree: true,
                error: format!("its chunk {} is damaged", b.short()),
            });
            continue;
        }
        buf.clear();
        buf.reserve(size as usize);
        let tree = reader
            .copy_chunks(&chunks, &mut buf)
            .and_then(|_| Tree::decode(&buf));
        match tree {
            Ok(t) => {
                out.entries += t.entries.len() as u64;
                for e in &t.entries {
                    cat.live_add(&e.chunks)?;
                }
            }
            Err(e) => out.unreadable.push(Unreadable {
                blob: id,
                tree: true,
                error: e.to_string(),
            }),
        }
    }
    tx.commit()?;
    out.chunks = cat.live_count()?;
    Ok(out)
}
