//! Verify: checks the repository against itself and names what is damaged. Every pack the
//! catalogue lists must exist with the recorded size and a header that agrees with the index;
//! with `read_data`, every pack is read once, sequentially, its SHA-256 checked against its name
//! and every indexed chunk decompressed and re-hashed (packs are spread over all cores). Then
//! the live set is marked (`reach`): every chunk a snapshot refers to must be indexed, in a
//! sound pack. Each damaged snapshot is named with each damaged file (its path inside the
//! platform, the site directory or the bindings) or "database dump". Verify never repairs or
//! deletes anything.

use crate::catalog::SnapshotKind;
use crate::catalog::{Catalog, SnapshotRecord};
use crate::error::Result;
use crate::hash::Hash;
use crate::reach;
use crate::repo::Repo;
use crate::store::{
    self, Backend, ChunkCodec, ChunkList, ChunkReader, ObjectName, PackEntry, PackFormat,
};
use crate::tree::Tree;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOpts {
    /// Read, decompress and re-hash every chunk.
    pub read_data: bool,
}

/// A pack that is missing, of the wrong size, or whose header or content is wrong.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackProblem {
    /// The pack's name.
    pub pack: String,
    /// What is wrong.
    pub problem: String,
    /// Indexed chunks of this pack that cannot be trusted.
    pub damaged_chunks: u64,
}

/// One damaged thing inside a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DamagedItem {
    /// `platform`, `site`, `binding` or `database`.
    pub part: String,
    /// The file's path (platform-relative, `sites/<uri>/...`, or the binding's absolute path);
    /// "database dump" for the dump; the tree's name when a whole tree is unreadable.
    pub path: String,
    /// The whole tree is unreadable: none of its files can be listed.
    pub whole_tree: bool,
}

/// A snapshot with damaged parts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DamagedSnapshot {
    /// The snapshot id.
    pub id: String,
    /// Its site.
    pub site: String,
    /// Its kind.
    pub kind: SnapshotKind,
    /// When it was taken.
    pub time: chrono::DateTime<chrono::Utc>,
    /// What is damaged in it.
    pub damaged: Vec<DamagedItem>,
}

/// The outcome.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Nothing is damaged.
    pub ok: bool,
    pub read_data: bool,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Packs checked.
    pub packs: u64,
    /// Trees read.
    pub trees: u64,
    /// Chunks the snapshots refer to.
    pub referenced_chunks: u64,
    /// Chunks whose data was decompressed and re-hashed (`read_data`).
    pub chunks_read: u64,
    /// Pack bytes read (`read_data`).
    pub bytes_read: u64,
    /// Packs with problems.
    pub pack_problems: Vec<PackProblem>,
    /// Referenced chunks the index does not know.
    pub missing_chunks: u64,
    /// Snapshots with damage, each with what is damaged.
    pub damaged_snapshots: Vec<DamagedSnapshot>,
    /// Damaged chunks that no snapshot refers to (garbage; `gc` removes them).
    pub unreferenced_damaged_chunks: u64,
    /// Where the catalogue and the store disagree (`repair catalog` brings the catalogue up
    /// to the store).
    pub store: crate::objects::Disagreement,
    /// Objects in the store that the catalogue does not know and no manifest refers to
    /// (left by a crash or superseded: `gc` removes them), e.g. "pack 12ab...".
    pub unknown_objects: Vec<String>,
}

struct PackCheck {
    problem: Option<String>,
    bad: Vec<Hash>,
    chunks_read: u64,
    bytes_read: u64,
}

impl PackCheck {
    /// Every indexed chunk of the pack is suspect.
    fn all(rows: &[PackEntry], problem: String) -> PackCheck {
        PackCheck {
            problem: Some(problem),
            bad: rows.iter().map(|e| e.hash).collect(),
            chunks_read: 0,
            bytes_read: 0,
        }
    }

    /// Adds a problem to the ones already found.
    fn add_problem(&mut self, p: String) {
        self.problem = Some(match self.problem.take() {
            Some(q) => format!("{q}; {p}"),
            None => p,
        });
    }
}

/// One pack to check: its catalogue row and index rows.
struct PackToCheck<'a> {
    name: &'a str,
    rows: Vec<PackEntry>,
}

fn check_pack(
    cat: &Catalog,
    backend: &dyn Backend,
    codec: &ChunkCodec,
    (id, name, size): (i64, &str, u64),
    read_data: bool,
    healed: bool,
) -> Result<PackCheck> {
    let p = PackToCheck {
        name,
        rows: cat.chunks_in_pack(id)?,
    };
    let obj = ObjectName::pack(name);
    match backend.size(&obj) {
        Ok(None) => return Ok(PackCheck::all(&p.rows, "the pack file is missing".into())),
        Err(e) => {
            let msg = format!("cannot be read: {}", store::cause(&e));
            return Ok(PackCheck::all(&p.rows, msg));
        }
        Ok(Some(len)) if len != size => {
            let msg = format!(
                "{len} bytes, the catalogue says {size}{}",
                if len < size { " (truncated)" } else { "" }
            );
            return Ok(PackCheck::all(&p.rows, msg));
        }
        Ok(Some(_)) => {}
    }
    let header = match store::pack::read_header_with(name, size, codec, |off, len| {
        backend.read_range(&obj, off, len)
    }) {
        Ok(h) => h,
        Err(e) => return Ok(PackCheck::all(&p.rows, format!("bad header: {e}"))),
    };
    let mut out = check_header(&p, &header.entries);
    if read_data {
        match backend.read(&obj) {
            Ok(bytes) => check_data(&p, &bytes, (codec, header.format), &mut out, healed),
            Err(e) => {
                let msg = format!("cannot be read: {}", store::cause(&e));
                return Ok(PackCheck::all(&p.rows, msg));
            }
        }
    }
    Ok(out)
}

/// Index rows the pack's own header does not list.
fn check_header(p: &PackToCheck, header: &[PackEntry]) -> PackCheck {
    let listed: HashSet<&PackEntry> = header.iter().collect();
    let bad: Vec<Hash> = p
        .rows
        .iter()
        .filter(|e| !listed.contains(e))
        .map(|e| e.hash)
        .collect();
    PackCheck {
        problem: (!bad.is_empty()).then(|| {
            format!(
                "its header disagrees with the index for {} chunk(s)",
                bad.len()
            )
        }),
        bad,
        chunks_read: 0,
        bytes_read: 0,
    }
}

/// Decompresses every frame and re-hashes every indexed chunk in it, and checks the pack's
/// name (a pack whose damaged chunk was stored anew elsewhere, `healed`, holds damage no index
/// row names; `gc` rewrites it). A damaged frame damages every chunk it holds.
fn check_data(
    p: &PackToCheck,
    bytes: &[u8],
    (codec, format): (&ChunkCodec, PackFormat),
    out: &mut PackCheck,
    healed: bool,
) {
    out.bytes_read = bytes.len() as u64;
    let sum = hex::encode(Sha256::digest(bytes));
    let mut bad_data = 0u64;
    // Rows past the pack's end were already counted as header mismatches.
    let rows: Vec<PackEntry> = p
        .rows
        .iter()
        .filter(|e| e.offset + e.clen as u64 <= bytes.len() as u64)
        .copied()
        .collect();
    out.chunks_read += rows.len() as u64;
    for h in store::frame::damaged_chunks(codec, format, bytes, &rows) {
        if !out.bad.contains(&h) {
            out.bad.push(h);
            bad_data += 1;
        }
    }
    if bad_data > 0 {
        out.add_problem(format!(
            "{bad_data} chunk(s) do not decompress to their hash"
        ));
    } else if sum != p.name && out.problem.is_none() && !healed {
        out.problem =
            Some("its content does not match its name (damage outside the indexed chunks)".into());
    }
}

/// Damaged paths of one tree (or `None` when it cannot be read).
fn damaged_in_tree(
    repo: &Repo,
    reader: &mut ChunkReader,
    id: &Hash,
    bad: &HashSet<Hash>,
) -> Option<Vec<Vec<u8>>> {
    let (list, size) = repo.cat.blob(id).ok()?;
    let chunks = list
        .expand_with(id, &mut |c| match bad.contains(c) {
            true => Err(crate::error::Error::Corrupt("damaged".into())),
            false => reader.read(c),
        })
        .ok()?;
    if chunks.iter().any(|c| bad.contains(c)) {
        return None;
    }
    let mut buf = Vec::with_capacity(size as usize);
    reader.copy_chunks(&chunks, &mut buf).ok()?;
    let t = Tree::decode(&buf).ok()?;
    Some(
        t.entries
            .into_iter()
            .filter(|e| e.chunks.iter().any(|c| bad.contains(c)))
            .map(|e| e.path)
            .collect(),
    )
}

/// Does dump `id` (list `list`) lose a chunk or a list chunk of any level to `bad`, or fail
/// to read? Its ids are streamed, not collected.
fn dump_damaged(repo: &Repo, id: &Hash, list: ChunkList, bad: &HashSet<Hash>) -> bool {
    let mut ids = list.ids(id);
    let mut reader = crate::read::chunk_reader(repo);
    let mut read = |c: &Hash| match bad.contains(c) {
        true => Err(crate::error::Error::Corrupt("damaged".into())),
        false => reader.read(c),
    };
    loop {
        match ids.next_id(&mut read) {
            Ok(Some(c)) if !bad.contains(&c) => continue,
            Ok(None) => return false,
            _ => return true,
        }
    }
}

fn name_damage(
    repo: &Repo,
    snaps: &[SnapshotRecord],
    bad: &HashSet<Hash>,
    unreadable: &HashSet<Hash>,
) -> Result<Vec<DamagedSnapshot>> {
    let mut reader = repo.chunk_reader();
    let mut trees: HashMap<Hash, Option<Vec<Vec<u8>>>> = HashMap::new();
    let mut tree = |id: &Hash| {
        if unreadable.contains(id) {
            return None;
        }
        trees
            .entry(*id)
            .or_insert_with(|| damaged_in_tree(repo, &mut reader, id, bad))
            .clone()
    };
    let dump = |d: &Hash| {
        unreadable.contains(d)
            || match repo.cat.blob(d) {
                Ok((list, _)) => dump_damaged(repo, d, list, bad),
                Err(_) => true,
            }
    };
    Ok(snaps
        .iter()
        .filter_map(|s| snapshot_damage(s, &mut tree, &dump))
        .collect())
}

/// Names what is damaged in snapshot `s`: `tree` gives a tree's damaged paths (None: the tree
/// cannot be read), `dump` whether the dump is damaged. None when nothing is.
pub(crate) fn snapshot_damage(
    s: &SnapshotRecord,
    tree: &mut dyn FnMut(&Hash) -> Option<Vec<Vec<u8>>>,
    dump: &dyn Fn(&Hash) -> bool,
) -> Option<DamagedSnapshot> {
    let mut items = Vec::new();
    let parts = [
        ("platform", s.platform_tree, "platform tree"),
        ("site", s.site_tree, "site directory tree"),
        ("binding", s.bindings_tree, "bindings tree"),
        ("extra", s.extra_tree, "extra paths tree"),
    ];
    for (part, id, what) in parts {
        let Some(id) = id else { continue };
        match tree(&id) {
            None => items.push(DamagedItem {
                part: part.into(),
                path: format!("{what} (unreadable: none of its files can be listed)"),
                whole_tree: true,
            }),
            Some(paths) => {
                for p in paths {
                    let p = String::from_utf8_lossy(&p).into_owned();
                    let path = match part {
                        "site" => format!("{}/{p}", s.site_dir),
                        "binding" => format!("/{p}"),
                        _ => p,
                    };
                    items.push(DamagedItem {
                        part: part.into(),
                        path,
                        whole_tree: false,
                    });
                }
            }
        }
    }
    if s.db_dump.is_some_and(|d| dump(&d)) {
        items.push(DamagedItem {
            part: "database".into(),
            path: "database dump".into(),
            whole_tree: false,
        });
    }
    (!items.is_empty()).then(|| DamagedSnapshot {
        id: s.id.clone(),
        site: s.site.clone(),
        kind: s.kind,
        time: s.time,
        damaged: items,
    })
}

/// Checks every pack on all cores; results in the order of `packs`.
fn check_packs(
    repo: &Repo,
    packs: &[(i64, String, u64)],
    read_data: bool,
) -> Result<Vec<(usize, PackCheck)>> {
    let backend = repo.backend();
    let codec = repo.codec();
    let cat_path = Repo::catalog_path(&repo.root);
    let healed = repo.cat.damaged_packs(true)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, PackCheck)>> = Mutex::new(Vec::new());
    let workers = crate::cores().min(packs.len()).max(1);
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let cat = Catalog::open(&cat_path)?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((id, name, size)) = packs.get(i) else {
                            return Ok(());
                        };
                        let pack = (*id, name.as_str(), *size);
                        let healed = healed.contains(name);
                        let r = check_pack(&cat, &**backend, &codec, pack, read_data, healed)?;
                        crate::progress::add(if read_data { *size } else { 0 }, 1);
                        results.lock().expect("results").push((i, r));
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("verify worker panicked")?;
        }
        Ok(())
    })?;
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.0);
    Ok(results)
}

/// Verifies the repository. Reads only; the caller decides about locking.
pub fn verify(repo: &Repo, opts: &VerifyOpts) -> Result<VerifyReport> {
    let packs = repo.cat.packs()?;
    let snaps = repo.cat.snapshots(None)?;
    let mut rep = VerifyReport {
        read_data: opts.read_data,
        snapshots: snaps.len() as u64,
        packs: packs.len() as u64,
        ..VerifyReport::default()
    };

    // 1. Packs, on all cores, each read once from start to end.
    let pack_bytes: u64 = if opts.read_data {
        packs.iter().map(|p| p.2).sum()
    } else {
        0
    };
    crate::progress::phase_of("verify: packs", pack_bytes, rep.packs, "packs");
    let results = check_packs(repo, &packs, opts.read_data)?;
    let mut bad: HashSet<Hash> = HashSet::new();
    let mut found: Vec<(Hash, String)> = Vec::new();
    for (i, r) in results {
        found.extend(r.bad.iter().map(|h| (*h, packs[i].1.clone())));
        rep.chunks_read += r.chunks_read;
        rep.bytes_read += r.bytes_read;
        if let Some(problem) = r.problem {
            rep.pack_problems.push(PackProblem {
                pack: packs[i].1.clone(),
                problem,
                damaged_chunks: r.bad.len() as u64,
            });
        }
        bad.extend(r.bad);
    }

    // Remembered, so no later snapshot reuses a damaged chunk (a full read replaces the list).
    repo.cat.record_damage(&found, opts.read_data)?;

    // 2. What the snapshots refer to.
    let marked = reach::mark(repo, &bad)?;
    rep.trees = marked.trees;
    rep.referenced_chunks = marked.chunks;
    let missing = repo.cat.live_missing()?;
    rep.missing_chunks = missing.len() as u64;
    bad.extend(missing);
    let unreadable: HashSet<Hash> = marked.unreadable.iter().map(|u| u.blob).collect();

    // 3. Who is hurt.
    let mut live_bad = HashSet::new();
    for h in &bad {
        if repo.cat.live_contains(h)? {
            live_bad.insert(*h);
        }
    }
    rep.unreferenced_damaged_chunks = (bad.len() - live_bad.len()) as u64;
    if !live_bad.is_empty() || !unreadable.is_empty() {
        rep.damaged_snapshots = name_damage(repo, &snaps, &live_bad, &unreadable)?;
    }
    // 4. Store against catalogue.
    check_store(repo, &packs, &mut rep)?;
    rep.ok = rep.pack_problems.is_empty()
        && rep.missing_chunks == 0
        && rep.damaged_snapshots.is_empty()
        && unreadable.is_empty()
        && rep.store.is_empty();
    Ok(rep)
}

/// Compares the store's manifests, blob lists, pins and site objects with the catalogue, and
/// lists the objects neither the catalogue nor a manifest refers to.
fn check_store(repo: &Repo, packs: &[(i64, String, u64)], rep: &mut VerifyReport) -> Result<()> {
    let view = crate::objects::StoreView::read(repo)?;
    rep.store = crate::objects::compare(repo, &view)?;
    let indexed: HashSet<&str> = packs.iter().map(|p| p.1.as_str()).collect();
    for o in repo.backend().list(store::ObjectKind::Pack)? {
        if !indexed.contains(o.name.name.as_str()) {
            rep.unknown_objects.push(o.name.to_string());
        }
    }
    let garbage = crate::objects::unreferenced(&view)?;
    rep.unknown_objects
        .extend(garbage.iter().map(|o| o.to_string()));
    Ok(())
}

/// What is lost for good now, without reading pack data: the snapshots whose data names a
/// chunk `verify` recorded as damaged (and no later snapshot stored anew) or one the index
/// does not know, each with its lost files. `repair snapshots` records it.
pub fn lost(repo: &Repo) -> Result<Vec<DamagedSnapshot>> {
    let recorded = repo.cat.damaged_chunks()?;
    let snaps = repo.cat.snapshots(None)?;
    let marked = reach::mark(repo, &recorded)?;
    let mut bad = recorded;
    bad.extend(repo.cat.live_missing()?);
    let unreadable: HashSet<Hash> = marked.unreadable.iter().map(|u| u.blob).collect();
    let mut live_bad = HashSet::new();
    for h in bad {
        if repo.cat.live_contains(&h)? {
            live_bad.insert(h);
        }
    }
    if live_bad.is_empty() && unreadable.is_empty() {
        return Ok(Vec::new());
    }
    name_damage(repo, &snaps, &live_bad, &unreadable)
}

/// `repair snapshots`: finds what is lost for good ([`lost`]) and marks it in the catalogue
/// (replacing earlier marks), so `doctor` and `restore` can name it.
pub fn repair_snapshots(repo: &Repo) -> Result<Vec<DamagedSnapshot>> {
    let lost = lost(repo)?;
    let marks: Vec<(String, Vec<crate::catalog::LostItem>)> = lost
        .iter()
        .map(|s| {
            let items = s
                .damaged
                .iter()
                .map(|d| crate::catalog::LostItem {
                    part: d.part.clone(),
                    path: d.path.clone(),
                })
                .collect();
            (s.id.clone(), items)
        })
        .collect();
    repo.cat.mark_lost(&marks)?;
    Ok(lost)
}
