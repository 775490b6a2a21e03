//! Handing a restore's files to its workers in runs: neighbouring files of one folder (they
//! share frames, which each reader then decompresses once), given out so that no two workers
//! create files in the same folder at once while another folder has work left. Creating a
//! file takes its folder's lock in the kernel; two workers in one folder of small files wait
//! on each other (`rwsem_spin_on_owner` was 5-23% of a docs-tree restore's samples).

use crate::tree::Entry;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

/// Files a run holds at most.
const RUN_FILES: usize = 64;
/// Runs looked at past the first one not taken, for one in a folder no worker is in.
const LOOKAHEAD: usize = 64;

/// The runs of a list of files, and which are taken.
pub(super) struct Runs {
    /// Each run: a range of the file list, and its folder's number.
    runs: Vec<(Range<usize>, u32)>,
    state: Mutex<State>,
}

struct State {
    /// The first run not taken (all before it are).
    next: usize,
    taken: Vec<bool>,
    /// The folder each worker is writing in now, by worker.
    busy: Vec<Option<u32>>,
}

/// The folder part of a relative path (empty for a file at the root).
fn folder_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => &[],
    }
}

impl Runs {
    /// Cuts `files` (in tree order) into runs of at most [`RUN_FILES`] files of one folder,
    /// for `workers` workers.
    pub(super) fn new(files: &[&Entry], workers: usize) -> Runs {
        let mut ids: HashMap<&[u8], u32> = HashMap::new();
        let mut runs: Vec<(Range<usize>, u32)> = Vec::new();
        for (i, e) in files.iter().enumerate() {
            let n = ids.len() as u32;
            let id = *ids.entry(folder_of(&e.path)).or_insert(n);
            match runs.last_mut() {
                Some((r, f)) if *f == id && r.len() < RUN_FILES => r.end = i + 1,
                _ => runs.push((i..i + 1, id)),
            }
        }
        let taken = vec![false; runs.len()];
        Runs {
            runs,
            state: Mutex::new(State {
                next: 0,
                taken,
                busy: vec![None; workers],
            }),
        }
    }

    /// The next run for worker `w` (which has finished its last one): the first one not
    /// taken whose folder no other worker is in, looking a little ahead, else the first one
    /// not taken. `None` when all are taken.
    pub(super) fn take(&self, w: usize) -> Option<Range<usize>> {
        let mut s = self.state.lock().expect("runs");
        s.busy[w] = None;
        let first = s.next;
        if first >= self.runs.len() {
            return None;
        }
        let end = (first + LOOKAHEAD).min(self.runs.len());
        let free = (first..end)
            .find(|&i| !s.taken[i] && !s.busy.contains(&Some(self.runs[i].1)))
            .unwrap_or(first);
        s.taken[free] = true;
        s.busy[w] = Some(self.runs[free].1);
        while s.next < self.runs.len() && s.taken[s.next] {
            s.next += 1;
        }
        Some(self.runs[free].0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Kind;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            size: 1,
            target: None,
            chunks: Vec::new(),
        }
    }

    /// Every file is handed out exactly once, in runs of one folder and at most RUN_FILES
    /// files; while two folders have work, two workers get different ones.
    #[test]
    fn runs_cover_every_file_once_and_keep_workers_apart() {
        let mut paths = vec!["top.txt".to_string()];
        for i in 0..150 {
            paths.push(format!("a/f{i:03}"));
        }
        paths.push("a/sub/x".into());
        paths.push("a/zz".into());
        for i in 0..100 {
            paths.push(format!("b/f{i:03}"));
        }
        let entries: Vec<Entry> = paths.iter().map(|p| file(p)).collect();
        let files: Vec<&Entry> = entries.iter().collect();
        let runs = Runs::new(&files, 2);
        let mut seen = vec![0; files.len()];
        let (r0, r1) = (runs.take(0).unwrap(), runs.take(1).unwrap());
        let folder = |r: &Range<usize>| folder_of(&files[r.start].path).to_vec();
        assert_ne!(folder(&r0), folder(&r1), "{r0:?} {r1:?}");
        for r in [r0, r1] {
            for i in r {
                seen[i] += 1;
            }
        }
        let mut w = 0;
        while let Some(r) = runs.take(w) {
            assert!(r.len() <= RUN_FILES && !r.is_empty());
            let f = folder(&r);
            assert!(r.clone().all(|i| folder_of(&files[i].path) == f), "{r:?}");
            for i in r {
                seen[i] += 1;
            }
            w = 1 - w;
        }
        assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        assert!(runs.take(0).is_none() && runs.take(1).is_none());
    }
}
