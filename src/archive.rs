//! Portable archives: `export` writes one snapshot as a tar (plain, zstd or gzip, by the file
//! name) holding `sitesnap-snapshot.json`, `platform/`, `site/`, `bindings/<absolute path>` and
//! the database dump, with modes, owners and mtimes; every chunk is verified as it is read. The
//! archive is written to a temporary file (0600: binding files hold secrets) and renamed into
//! place. It never writes anywhere but the named output file. Each part's tree (without its
//! chunk lists) rides along as `sitesnap-tree-v1/<part>`, so `import` ([`import`]) gives back
//! the very same trees.

mod import;

pub use import::{import, is_sitesnap_archive};

use crate::catalog::SnapshotRecord;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::read;
use crate::repo::Repo;
use crate::tree::{Kind, Tree, TreePart};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Archive compression, chosen by the output file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.tar`
    None,
    /// `.tar.zst` or `.tzst`
    Zstd,
    /// `.tar.gz` or `.tgz`
    Gzip,
}

impl Compression {
    /// The compression an archive named `p` gets; an unknown ending is a usage error.
    pub fn from_name(p: &Path) -> Result<Self> {
        let n = p.to_string_lossy();
        if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
            Ok(Compression::Zstd)
        } else if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
            Ok(Compression::Gzip)
        } else if n.ends_with(".tar") {
            Ok(Compression::None)
        } else {
            Err(Error::Usage(format!(
                "{}: the name must end in .tar.zst, .tar.gz or .tar",
                p.display()
            )))
        }
    }
}

/// What an export wrote.
#[derive(Debug, serde::Serialize)]
pub struct ExportStats {
    /// The archive written.
    pub file: PathBuf,
    /// Tar entries written (folders, files, links, the dump).
    pub entries: u64,
    /// Bytes of file and dump content written (before compression).
    pub bytes: u64,
}

fn dump_name(kind: Option<&str>) -> &'static str {
    match kind {
        Some("sqlite") => "database.sqlite",
        _ => "database.sql",
    }
}

/// Writes snapshot `snap` into the archive `out`.
pub fn export(repo: &Repo, snap: &SnapshotRecord, out: &Path) -> Result<ExportStats> {
    let comp = Compression::from_name(out)?;
    let tmp = fsutil::temp_sibling(out, "export");
    let file = fsutil::create_private_file(&tmp)?;
    match write_archive(repo, snap, out, &tmp, file, comp) {
        Ok(s) => {
            fs::rename(&tmp, out).at(out)?;
            if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                fsutil::sync_dir(d)?;
            }
            Ok(s)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Writes the archive of `snap` into `file` (the temporary `tmp`) and makes it durable.
fn write_archive(
    repo: &Repo,
    snap: &SnapshotRecord,
    out: &Path,
    tmp: &Path,
    file: fs::File,
    comp: Compression,
) -> Result<ExportStats> {
    let w = match comp {
        Compression::None => Encoder::Plain(std::io::BufWriter::new(file)),
        Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(file, 3).at(tmp)?),
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )),
    };
    let mut tar = tar::Builder::new(w);
    tar.mode(tar::HeaderMode::Complete);
    let mut stats = ExportStats {
        file: out.to_path_buf(),
        entries: 0,
        bytes: 0,
    };
    let meta = serde_json::to_vec_pretty(snap).expect("snapshot serializes");
    let mut h = tar::Header::new_gnu();
    h.set_size(meta.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(snap.time.timestamp().max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, "sitesnap-snapshot.json", &meta[..])
        .at(tmp)?;
    crate::progress::phase(
        &format!("export {}", crate::catalog::short_id(&snap.id)),
        snap.bytes,
        snap.files,
    );
    for part in TreePart::ALL {
        if let Some(t) = read::part_tree(repo, snap, part)? {
            append_meta_tree(&mut tar, part, &t, snap, tmp)?;
            append_tree(repo, &mut tar, part.as_str(), &t, &snap.id, &mut stats, tmp)?;
        }
    }
    if let Some(id) = snap.db_dump {
        let (chunks, size) = read::blob_chunks(repo, &id)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_mtime(snap.time.timestamp().max(0) as u64);
        h.set_entry_type(tar::EntryType::Regular);
        let r = read::chunks_reader(repo, chunks);
        tar.append_data(&mut h, dump_name(snap.db_kind.as_deref()), r)
            .map_err(|e| corrupt_or_io(e, tmp, &snap.id, "database dump"))?;
        stats.entries += 1;
        stats.bytes += size;
        crate::progress::add(size, 0);
    }
    // Every error of the last writes (the encoder's final block, the buffer) counts.
    let f = tar.into_inner().at(tmp)?.finish().at(tmp)?;
    f.sync_all().at(tmp)?;
    Ok(stats)
}

/// Where an archive keeps each part's tree without its chunk lists (the exact modes, owners,
/// nanosecond mtimes and root folder that tar headers cannot all carry), so `import` gives
/// back the very same trees.
pub const META_TREE_DIR: &str = "sitesnap-tree-v1";

/// Appends `t` without its chunk lists as `sitesnap-tree-v1/<part>`.
fn append_meta_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    part: TreePart,
    t: &Tree,
    snap: &SnapshotRecord,
    tmp: &Path,
) -> Result<()> {
    let mut bare = t.clone();
    bare.entries.iter_mut().for_each(|e| e.chunks.clear());
    let bytes = bare.encode();
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(snap.time.timestamp().max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    let name = format!("{META_TREE_DIR}/{}", part.as_str());
    tar.append_data(&mut h, name, &bytes[..]).at(tmp)
}

/// The archive's compression layer over the file, finished explicitly so that an error in
/// its last writes is an error, not dropped.
enum Encoder {
    Plain(std::io::BufWriter<fs::File>),
    Zstd(zstd::Encoder<'static, fs::File>),
    Gzip(flate2::write::GzEncoder<fs::File>),
}

impl Encoder {
    /// Writes what is buffered and the compressed stream's end; returns the file.
    fn finish(self) -> std::io::Result<fs::File> {
        match self {
            Encoder::Plain(b) => b.into_inner().map_err(|e| e.into_error()),
            Encoder::Zstd(z) => z.finish(),
            Encoder::Gzip(g) => g.finish(),
        }
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
        }
    }
}

fn corrupt_or_io(e: std::io::Error, tmp: &Path, snap: &str, what: &str) -> Error {
    let msg = e.to_string();
    if msg.contains("corrupt data") || msg.contains("does not match") || msg.contains("missing") {
        Error::Corrupt(format!("snapshot {snap}, {what}: {msg}"))
    } else {
        Error::io(tmp, e)
    }
}

fn append_tree<W: Write>(
    repo: &Repo,
    tar: &mut tar::Builder<W>,
    prefix: &str,
    t: &Tree,
    snap: &str,
    stats: &mut ExportStats,
    tmp: &Path,
) -> Result<()> {
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, format!("{prefix}/"), std::io::empty())
        .at(tmp)?;
    for e in &t.entries {
        let mut path = PathBuf::from(prefix);
        path.push(std::ffi::OsStr::from_bytes(&e.path));
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid as u64);
        h.set_gid(e.gid as u64);
        h.set_mtime(e.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
        match e.kind {
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, &path, std::io::empty()).at(tmp)?;
            }
            Kind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                let target = std::ffi::OsStr::from_bytes(e.target.as_deref().unwrap_or_default());
                tar.append_link(&mut h, &path, target).at(tmp)?;
            }
            Kind::File => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(e.size);
                let r = read::chunks_reader(repo, e.chunks.clone());
                tar.append_data(&mut h, &path, r).map_err(|err| {
                    corrupt_or_io(err, tmp, snap, &format!("{prefix} file {}", e.path_str()))
                })?;
                stats.bytes += e.size;
                crate::progress::add(e.size, 1);
            }
        }
        stats.entries += 1;
    }
    Ok(())
}
