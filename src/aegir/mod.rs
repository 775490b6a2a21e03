//! Aegir: importing Aegir's own backups and discovering an Aegir server's sites. An Aegir
//! backup (`/var/aegir/backups/<uri>-YYYYmmdd.HHMMSS[_N].tar.gz`) holds only the site folder's
//! contents and a `database.sql`; the import takes the platform and binding files from disk as
//! they are at import time and says so in the snapshot's note. Archives are extracted into a
//! private temporary folder inside the repository with every path checked (no `..`, no absolute
//! paths, nothing written through a symlink); this module never writes into a live site.
//! Discovery (reading an Aegir server's aliases and vhosts) is in `discover`.

pub mod discover;

use crate::capture::{self, CaptureOpts, ImportSource};
use crate::catalog::SnapshotKind;
use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::repo::Repo;
use crate::site;
use chrono::{Local, NaiveDateTime, TimeZone, Utc};
use std::fs;
use std::io::Read;
use std::path::{Component, Path};

/// The site URI and time an Aegir backup's file name carries:
/// `<uri>-YYYYmmdd.HHMMSS[_N].tar.gz`.
pub fn parse_backup_name(path: &Path) -> Option<(String, chrono::DateTime<Utc>)> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))?;
    let stem = match stem.rsplit_once('_') {
        Some((s, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => s,
        _ => stem,
    };
    let (uri, stamp) = stem.rsplit_once('-')?;
    let t = NaiveDateTime::parse_from_str(stamp, "%Y%m%d.%H%M%S").ok()?;
    let local = Local.from_local_datetime(&t).earliest()?;
    Some((uri.to_string(), local.with_timezone(&Utc)))
}

/// Opens a tar archive, plain, gzip or zstd (by its first bytes).
pub(crate) fn open_archive(path: &Path) -> Result<tar::Archive<Box<dyn Read>>> {
    let f = fs::File::open(path).at(path)?;
    let mut magic = [0u8; 4];
    let n = (&f).read(&mut magic).at(path)?;
    drop(f);
    let f = fs::File::open(path).at(path)?;
    let r: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::Decoder::new(f).at(path)?)
    } else {
        Box::new(f)
    };
    Ok(tar::Archive::new(r))
}

/// Extracts `archive` into the new folder `dest`, refusing any entry that would land outside it.
fn extract_checked(archive: &Path, dest: &Path) -> Result<()> {
    fsutil::create_private_dir(dest)?;
    let mut ar = open_archive(archive)?;
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    // Owners are not taken from the archive: `tame_modes` gives everything the site
    // folder's owner.
    ar.set_preserve_ownerships(false);
    ar.set_unpack_xattrs(false);
    let bad = |p: &Path, why: &str| {
        Error::Invalid(format!(
            "{}: entry '{}' {why}; nothing imported",
            archive.display(),
            p.display()
        ))
    };
    for e in ar
        .entries()
        .map_err(|e| Error::Invalid(format!("{}: not a tar archive: {e}", archive.display())))?
    {
        let mut e =
            e.map_err(|e| Error::Invalid(format!("{}: damaged archive: {e}", archive.display())))?;
        let p = e
            .path()
            .map_err(|err| bad(Path::new("?"), &err.to_string()))?
            .into_owned();
        for c in p.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => return Err(bad(&p, "contains '..'")),
                _ => return Err(bad(&p, "is an absolute path")),
            }
        }
        if matches!(
            e.header().entry_type(),
            tar::EntryType::Link
                | tar::EntryType::Char
                | tar::EntryType::Block
                | tar::EntryType::Fifo
        ) {
            return Err(bad(
                &p,
                "is a hard link or device, which a site folder does not hold",
            ));
        }
        // unpack_in refuses paths that leave `dest`, including through symlinks it unpacked.
        let ok = e.unpack_in(dest).map_err(|err| {
            // tar's message hides the OS error (a full disk, ...): name both.
            let mut root: Option<&dyn std::error::Error> = std::error::Error::source(&err);
            while let Some(next) = root.and_then(|r| r.source()) {
                root = Some(next);
            }
            let os = root.map(|s| format!(": {s}")).unwrap_or_default();
            Error::Invalid(format!("{}: {}: {err}{os}", archive.display(), p.display()))
        })?;
        if !ok {
            return Err(bad(&p, "would be written outside the site folder"));
        }
    }
    Ok(())
}

/// Imports an Aegir backup of a registered site as an `imported` snapshot.
pub fn import(repo: &Repo, archive: &Path, uri: Option<&str>) -> Result<SnapshotRecord> {
    let parsed = parse_backup_name(archive);
    let uri = match (uri, &parsed) {
        (Some(u), _) => u.to_string(),
        (None, Some((u, _))) => u.clone(),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{}: not named <uri>-YYYYmmdd.HHMMSS.tar.gz; say which site with --site",
                archive.display()
            )));
        }
    };
    // A missing file is named as missing, before the site is looked up.
    fs::metadata(archive).at(archive)?;
    let s: SiteRecord = repo.cat.site(&uri)?;
    let time = match &parsed {
        Some((_, t)) => *t,
        None => fs::metadata(archive)
            .and_then(|m| m.modified())
            .map(chrono::DateTime::<Utc>::from)
            .at(archive)?,
    };
    let platform = site::locate(&repo.cat, &s)?;
    let work = repo
        .tmp_dir()
        .join(format!("import-{}", fsutil::random_hex(6)));
    let res = import_from(repo, archive, &uri, &s, &platform, &work, time);
    let _ = remove_private_tree(&work);
    res
}

/// Extracts the backup into `work` and captures it as an `imported` snapshot of `s`.
fn import_from(
    repo: &Repo,
    archive: &Path,
    uri: &str,
    s: &SiteRecord,
    platform: &Path,
    work: &Path,
    time: chrono::DateTime<Utc>,
) -> Result<SnapshotRecord> {
    crate::progress::phase(&format!("import {}: extracting", archive.display()), 0, 0);
    extract_checked(archive, work)?;
    let tamed = tame_modes(work, &platform.join(&s.site_dir))?;
    // Aegir packs from inside the site folder: entries are ./settings.php, ./files/...
    let dump = work.join("database.sql");
    let has_dump = match fs::symlink_metadata(&dump) {
        Ok(m) if m.file_type().is_file() => true,
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "{}: entry 'database.sql' is not a regular file (a symlink?); nothing imported",
                archive.display()
            )));
        }
        Err(_) => false,
    };
    let db = s.database()?;
    if has_dump && matches!(db, Some(crate::db::Database::Sqlite(_))) {
        return Err(Error::Invalid(format!(
            "{} holds a MySQL dump but site '{uri}' uses SQLite",
            archive.display()
        )));
    }
    let note = format!(
        "imported from {}: site folder{} from the backup; platform {} and binding files as they were on disk at import time",
        archive.display(),
        if has_dump && db.is_some() {
            " and database"
        } else {
            ""
        },
        platform.display()
    ) + &tamed;
    let mut o = CaptureOpts::new(SnapshotKind::Imported);
    o.progress = true;
    o.source = Some(ImportSource {
        site_dir: work.to_path_buf(),
        dump: (has_dump && db.is_some()).then_some(dump),
        time,
        note,
    });
    o.label = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    capture::snapshot(repo, s, platform, &o)
}

/// Clears setuid, setgid and sticky bits under the extracted folder `work` and (as root) gives
/// every entry the owner of the live site folder `live` (else of its parent). Returns what
/// was changed, for the snapshot's note (empty when nothing was).
fn tame_modes(work: &Path, live: &Path) -> Result<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let owner = [live, live.parent().unwrap_or(live)]
        .iter()
        .find_map(|p| fs::metadata(p).ok())
        .map(|m| (m.uid(), m.gid()));
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    let owner = owner.filter(|_| unsafe { libc::geteuid() } == 0);
    let mut cleared = Vec::new();
    let mut chowned = 0usize;
    for e in walkdir::WalkDir::new(work).min_depth(1) {
        let e = e.map_err(|err| Error::Invalid(format!("{}: {err}", work.display())))?;
        let md = e.path().symlink_metadata().at(e.path())?;
        if let Some((u, g)) = owner
            && (md.uid(), md.gid()) != (u, g)
        {
            std::os::unix::fs::lchown(e.path(), Some(u), Some(g)).at(e.path())?;
            chowned += 1;
        }
        if !md.file_type().is_symlink() && md.mode() & 0o7000 != 0 {
            let mode = md.mode() & 0o777;
            fs::set_permissions(e.path(), fs::Permissions::from_mode(mode)).at(e.path())?;
            let rel = e.path().strip_prefix(work).unwrap_or(e.path());
            cleared.push(format!(
                "{} ({:o} -> {mode:o})",
                rel.display(),
                md.mode() & 0o7777
            ));
        }
    }
    let mut out = String::new();
    if !cleared.is_empty() {
        out.push_str(&format!(
            "; setuid/setgid/sticky bits cleared on {}",
            cleared.join(", ")
        ));
    }
    if let (Some((u, g)), true) = (owner, chowned > 0) {
        out.push_str(&format!(
            "; {chowned} entries given the site folder's owner {u}:{g}"
        ));
    }
    Ok(out)
}

fn remove_private_tree(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in walkdir::WalkDir::new(p).into_iter().flatten() {
        if e.file_type().is_dir() {
            let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        }
    }
    fs::remove_dir_all(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names() {
        let (u, t) = parse_backup_name(Path::new(
            "/var/aegir/backups/www.example.com-20240131.235959_2.tar.gz",
        ))
        .unwrap();
        assert_eq!(u, "www.example.com");
        assert_eq!(
            t.with_timezone(&Local).format("%Y%m%d.%H%M%S").to_string(),
            "20240131.235959"
        );
        assert!(parse_backup_name(Path::new("backup.tar.gz")).is_none());
        assert!(parse_backup_name(Path::new("a-b.zip")).is_none());
    }
}
