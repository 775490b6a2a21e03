//! Importing sitesnap's own export archives: the archive is read once, as a stream; every
//! file's content goes through the deduplicating chunk sink, the dump too, and the trees are
//! rebuilt from the archive's `sitesnap-tree-v1/<part>` records (exact modes, owners,
//! nanosecond mtimes, root folders) or, for an archive without them, from its tar headers.
//! The snapshot row commits only after every pack is durable. Every path is checked (no `..`,
//! no absolute path); nothing is written outside the repository.

use super::META_TREE_DIR;
use crate::catalog::{SnapshotKind, SnapshotRecord};
use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::repo::Repo;
use crate::store::{ChunkList, ChunkSink, DUMP_CHUNKS, FILE_CHUNKS, SQLITE_CHUNKS, TREE_CHUNKS};
use crate::tree::{Entry, Kind, Tree, TreePart};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The first entry of every archive `export` writes.
const RECORD: &str = "sitesnap-snapshot.json";

/// Whether `path` is an archive `export` wrote (its first entry is the snapshot record).
pub fn is_sitesnap_archive(path: &Path) -> Result<bool> {
    let mut ar = crate::aegir::open_archive(path)?;
    let Ok(mut entries) = ar.entries() else {
        return Ok(false);
    };
    Ok(match entries.next() {
        Some(Ok(e)) => e.path_bytes().as_ref() == RECORD.as_bytes(),
        _ => false,
    })
}

/// What the snapshot record of an archive says (the fields an import keeps).
struct Record {
    id: String,
    site: String,
    label: Option<String>,
    time: chrono::DateTime<chrono::Utc>,
    platform_path: PathBuf,
    site_dir: String,
    db_kind: Option<String>,
    web_root: Option<String>,
    extra_paths: Vec<String>,
    bytes: u64,
    files: u64,
}

impl Record {
    fn parse(bytes: &[u8], archive: &Path) -> Result<Record> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "{}: {RECORD}: {why}; nothing imported",
                archive.display()
            ))
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let need = |k: &str| text(k).ok_or_else(|| bad(&format!("no '{k}'")));
        let time = chrono::DateTime::parse_from_rfc3339(&need("time")?)
            .map_err(|e| bad(&format!("bad time ({e})")))?
            .with_timezone(&chrono::Utc);
        let extra_paths = v["extra_paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Record {
            id: need("id")?,
            site: need("site")?,
            label: text("label"),
            time,
            platform_path: PathBuf::from(need("platform_path")?),
            site_dir: need("site_dir")?,
            db_kind: text("db_kind"),
            web_root: text("web_root"),
            extra_paths,
            bytes: v["bytes"].as_u64().unwrap_or(0),
            files: v["files"].as_u64().unwrap_or(0),
        })
    }
}

/// One part of the archive as read: the entries its tar headers gave, the content of its
/// files, and its exact tree when the archive carries it.
#[derive(Default)]
struct PartRead {
    present: bool,
    headers: Vec<Entry>,
    content: HashMap<Vec<u8>, (Vec<Hash>, u64)>,
    exact: Option<Tree>,
}

/// Everything read from the archive.
#[derive(Default)]
struct Contents {
    parts: [PartRead; 4],
    dump: Option<(Hash, ChunkList, u64)>,
    bytes: u64,
}

fn part_index(name: &[u8]) -> Option<usize> {
    TreePart::ALL
        .iter()
        .position(|p| p.as_str().as_bytes() == name)
}

/// Imports the export archive `archive` as an `imported` snapshot of its site (or of `uri`),
/// which must be registered.
pub fn import(repo: &Repo, archive: &Path, uri: Option<&str>) -> Result<SnapshotRecord> {
    let started = Instant::now();
    let mut ar = crate::aegir::open_archive(archive)?;
    let mut entries = ar.entries().map_err(|e| damaged(archive, e))?;
    let rec = match entries.next() {
        Some(Ok(mut e)) if e.path_bytes().as_ref() == RECORD.as_bytes() => {
            let mut b = Vec::new();
            e.read_to_end(&mut b).map_err(|err| damaged(archive, err))?;
            Record::parse(&b, archive)?
        }
        _ => {
            return Err(Error::Invalid(format!(
                "{}: not an archive `sitesnap export` wrote (no {RECORD} first)",
                archive.display()
            )));
        }
    };
    let site = repo.cat.site(uri.unwrap_or(&rec.site))?;
    if let Some(j) = repo.cat.open_journal_for(&site.uri)? {
        return Err(Error::JournalOpen {
            site: site.uri.clone(),
            journal: j.id,
        });
    }
    let db = site.database()?;
    if let (Some(kind), Some(d)) = (&rec.db_kind, &db)
        && kind != d.kind()
    {
        return Err(Error::Invalid(format!(
            "{} holds a {kind} database but site '{}' uses {}; nothing imported",
            archive.display(),
            site.uri,
            d.kind()
        )));
    }
    crate::progress::phase(
        &format!("import {}", archive.display()),
        rec.bytes,
        rec.files,
    );
    let sink = repo.chunk_sink()?;
    let res = read_all(&mut entries, archive, &sink, db.is_some())
        .and_then(|r| commit(repo, &sink, r, &rec, &site, archive, started));
    if res.is_err() {
        sink.abort();
    }
    res
}

fn damaged(archive: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: damaged archive: {e}", archive.display()))
}

/// Reads every entry after the record: trees, files, the dump.
fn read_all<R: Read>(
    entries: &mut tar::Entries<'_, R>,
    archive: &Path,
    sink: &ChunkSink,
    has_db: bool,
) -> Result<Contents> {
    let mut out = Contents::default();
    let mut buf = Vec::new();
    for e in entries {
        let mut e = e.map_err(|err| damaged(archive, err))?;
        let path = e.path_bytes().into_owned();
        let (top, rest) = match path.iter().position(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..], &b""[..]),
        };
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        check_path(rest, archive, &path)?;
        if top == META_TREE_DIR.as_bytes() {
            let i = part_index(rest).ok_or_else(|| unexpected(archive, &path))?;
            buf.clear();
            e.read_to_end(&mut buf)
                .map_err(|err| damaged(archive, err))?;
            out.parts[i].exact = Some(Tree::decode(&buf)?);
        } else if let Some(i) = part_index(top) {
            out.parts[i].present = true;
            if !rest.is_empty() {
                read_entry(&mut e, rest, &mut out.parts[i], sink, &mut buf, archive)?;
            }
        } else if (top == b"database.sql" || top == b"database.sqlite") && rest.is_empty() {
            if has_db {
                // SQL text is cut at row ends; an SQLite page image anywhere.
                let params = match top {
                    b"database.sql" => DUMP_CHUNKS,
                    _ => SQLITE_CHUNKS,
                };
                let (id, list, n) = sink.put_stream_listed(&mut e, params)?;
                crate::progress::add(n, 0);
                out.dump = Some((id, list, n));
            }
        } else {
            return Err(unexpected(archive, &path));
        }
        out.bytes += e.header().size().unwrap_or(0);
    }
    Ok(out)
}

fn unexpected(archive: &Path, path: &[u8]) -> Error {
    Error::Invalid(format!(
        "{}: unexpected entry '{}'; nothing imported",
        archive.display(),
        String::from_utf8_lossy(path)
    ))
}

/// Refuses a path that is absolute or climbs out (`..`).
fn check_path(rel: &[u8], archive: &Path, whole: &[u8]) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for c in Path::new(std::ffi::OsStr::from_bytes(rel)).components() {
        if !matches!(c, Component::Normal(_) | Component::CurDir) {
            return Err(Error::Invalid(format!(
                "{}: entry '{}' leaves its folder; nothing imported",
                archive.display(),
                String::from_utf8_lossy(whole)
            )));
        }
    }
    Ok(())
}

/// One file, folder or symlink of a part: its header entry, and a file's content stored.
fn read_entry<R: Read>(
    e: &mut tar::Entry<'_, R>,
    rel: &[u8],
    part: &mut PartRead,
    sink: &ChunkSink,
    buf: &mut Vec<u8>,
    archive: &Path,
) -> Result<()> {
    let h = e.header();
    let kind = match h.entry_type() {
        tar::EntryType::Regular => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        _ => {
            return Err(Error::Invalid(format!(
                "{}: entry '{}' is neither a file, a folder nor a symlink; nothing imported",
                archive.display(),
                String::from_utf8_lossy(rel)
            )));
        }
    };
    let num = |r: std::io::Result<u64>| r.map_err(|err| damaged(archive, err));
    let mut entry = Entry {
        path: rel.to_vec(),
        kind,
        mode: num(h.mode().map(u64::from))? as u32 & 0o7777,
        uid: num(h.uid())? as u32,
        gid: num(h.gid())? as u32,
        mtime_ns: num(h.mtime())? as i64 * 1_000_000_000,
        size: 0,
        target: e.link_name_bytes().map(|t| t.into_owned()),
        chunks: Vec::new(),
    };
    if kind == Kind::File {
        let size = num(h.size())?;
        let chunks = if size <= FILE_CHUNKS.max as u64 {
            buf.clear();
            e.read_to_end(buf).map_err(|err| damaged(archive, err))?;
            sink.put_bytes(buf, FILE_CHUNKS)?
        } else {
            sink.put_stream(&mut *e, FILE_CHUNKS)?.0
        };
        crate::progress::add(size, 1);
        entry.size = size;
        entry.chunks = chunks.clone();
        part.content.insert(rel.to_vec(), (chunks, size));
    }
    part.headers.push(entry);
    Ok(())
}

/// The tree of one part: the archive's exact tree with the chunk lists just stored, or (an
/// archive without it) the tree its headers give.
fn build_tree(p: PartRead, part: TreePart, archive: &Path) -> Result<Tree> {
    let Some(mut t) = p.exact else {
        let mut t = Tree {
            entries: p.headers,
            root: None,
        };
        t.sort();
        return Ok(t);
    };
    let bad = |path: &str| {
        Error::Invalid(format!(
            "{}: {part} entry '{path}' does not match the archive's tree record; nothing imported",
            archive.display(),
            part = part.as_str()
        ))
    };
    if t.entries.len() != p.headers.len() {
        return Err(bad("(count)"));
    }
    for e in t.entries.iter_mut().filter(|e| e.kind == Kind::File) {
        let (chunks, size) = p.content.get(&e.path).ok_or_else(|| bad(&e.path_str()))?;
        if *size != e.size {
            return Err(bad(&e.path_str()));
        }
        e.chunks = chunks.clone();
    }
    t.validate()?;
    Ok(t)
}

/// Stores the trees, waits for every pack, then commits the snapshot row.
fn commit(
    repo: &Repo,
    sink: &ChunkSink,
    read: Contents,
    rec: &Record,
    site: &crate::catalog::SiteRecord,
    archive: &Path,
    started: Instant,
) -> Result<SnapshotRecord> {
    let mut blobs: Vec<crate::catalog::BlobRow> = Vec::new();
    let mut ids: [Option<Hash>; 4] = [None; 4];
    let (mut files, mut bytes) = (0, 0);
    for (i, (p, part)) in read.parts.into_iter().zip(TreePart::ALL).enumerate() {
        if !p.present {
            continue;
        }
        let t = build_tree(p, part, archive)?;
        files += t.files();
        bytes += t.bytes();
        let enc = t.encode();
        let chunks = sink.put_bytes(&enc, TREE_CHUNKS)?;
        let id = Hash::of_list(&chunks);
        ids[i] = Some(id);
        blobs.push((id, ChunkList::Direct(chunks), enc.len() as u64));
    }
    let db = site.database()?;
    let dump = read.dump.map(|(id, list, n)| {
        blobs.push((id, list, n));
        (id, n)
    });
    sink.finish()?;
    let db = db.filter(|_| dump.is_some());
    let snap = SnapshotRecord {
        id: crate::capture::new_snapshot_id(&repo.cat)?,
        site: site.uri.clone(),
        kind: SnapshotKind::Imported,
        label: rec.label.clone().or_else(|| {
            archive
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        }),
        pinned: false,
        time: rec.time,
        platform_path: rec.platform_path.clone(),
        platform_tree: ids[0],
        site_dir: rec.site_dir.clone(),
        site_tree: ids[1],
        bindings_tree: ids[2],
        extra_tree: ids[3],
        web_root: rec.web_root.clone(),
        extra_paths: rec.extra_paths.clone(),
        db_kind: db.as_ref().map(|d| d.kind().to_string()),
        db_url: db.as_ref().map(|d| d.redacted()),
        db_dump: dump.map(|d| d.0),
        files,
        bytes: bytes + dump.map_or(0, |d| d.1),
        bytes_read: read.bytes,
        db_bytes: dump.map_or(0, |d| d.1),
        bytes_added: sink.stats.bytes_added.load(Ordering::Relaxed),
        duration_ms: started.elapsed().as_millis() as u64,
        note: Some(format!(
            "imported from {}: snapshot {} of {} exported by sitesnap",
            archive.display(),
            crate::catalog::short_id(&rec.id),
            rec.site
        )),
    };
    crate::objects::commit_snapshot(repo, &snap, &blobs, &[])?;
    Ok(snap)
}
