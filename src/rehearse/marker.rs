//! Crash safety of `rehearse`: before a clone's folder or database is created, a marker
//! (`<repo>/rehearsals/<id>.json`, 0600) records what it will be. A rehearsal removes its marker
//! after cleaning up; a marker whose process is gone is a rehearsal that was killed, and the
//! next `rehearse` or `recover` removes what it names. No password is recorded: a scratch
//! database is named, and dropped with the site's own credentials read at that time.

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::repo::Repo;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::PathBuf;

/// Every clone's folder name starts with this.
pub const CLONE_PREFIX: &str = "rehearse-";

/// What a rehearsal creates, recorded before it creates it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    /// The rehearsal's id (random hex).
    pub id: String,
    /// The live site.
    pub site: String,
    /// The clone's URI (`rehearse-<id>.<site>`).
    pub temp_uri: String,
    /// The clone's site folder on the target platform.
    pub clone_dir: PathBuf,
    /// The scratch database's name on the site's database server (an SQLite copy lives in
    /// the clone's folder).
    pub scratch_db: Option<String>,
    /// The rehearsing process.
    pub pid: u32,
}

fn dir(repo: &Repo) -> PathBuf {
    repo.root.join("rehearsals")
}

fn file(repo: &Repo, id: &str) -> PathBuf {
    dir(repo).join(format!("{id}.json"))
}

/// Records `m` durably.
pub fn write(repo: &Repo, m: &Marker) -> Result<()> {
    fsutil::create_private_dir(&dir(repo))?;
    let b = serde_json::to_vec_pretty(m).expect("marker serializes");
    fsutil::write_atomic(&file(repo, &m.id), &b, 0o600)
}

/// Forgets the marker of rehearsal `id`.
pub fn remove(repo: &Repo, id: &str) -> Result<()> {
    let p = file(repo, id);
    match fs::remove_file(&p) {
        Ok(()) => fsutil::sync_dir(&dir(repo)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Every marker in the repository.
pub fn list(repo: &Repo) -> Result<Vec<Marker>> {
    let d = dir(repo);
    let entries = match fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&d, e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.at(&d)?.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let b = fs::read(&p).at(&p)?;
        let m: Marker = serde_json::from_slice(&b)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
        out.push(m);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Whether process `pid` still runs.
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only asks whether `pid` exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the clone's folder, if it is there.
fn remove_folder(m: &Marker, said: &mut Vec<String>) -> Result<()> {
    let name = m.clone_dir.file_name().map(|n| n.to_string_lossy());
    if !name.is_some_and(|n| n.starts_with(CLONE_PREFIX)) {
        return Err(Error::Invalid(format!(
            "rehearsal {}: {} is not a clone folder; not removed",
            m.id,
            m.clone_dir.display()
        )));
    }
    if fs::symlink_metadata(&m.clone_dir).is_ok() {
        fs::remove_dir_all(&m.clone_dir).at(&m.clone_dir)?;
        if let Some(p) = m.clone_dir.parent() {
            fsutil::sync_dir(p)?;
        }
        said.push(format!("removed clone folder {}", m.clone_dir.display()));
    }
    Ok(())
}

/// Drops the scratch database, with the live site's credentials as they are now.
fn drop_database(repo: &Repo, m: &Marker, said: &mut Vec<String>) -> Result<()> {
    let Some(name) = &m.scratch_db else {
        return Ok(());
    };
    let cannot = |why: String| {
        Error::Invalid(format!(
            "rehearsal {}: cannot drop scratch database '{name}' ({why}); drop it by hand",
            m.id
        ))
    };
    let site = repo.cat.site(&m.site).map_err(|e| cannot(e.to_string()))?;
    let live = site
        .database()
        .map_err(|e| cannot(e.to_string()))?
        .ok_or_else(|| cannot(format!("site '{}' has no database now", m.site)))?;
    let scratch = live
        .with_name(name)
        .ok_or_else(|| cannot("the site's database is not on a server now".into()))?;
    if scratch.drop_scratch()? {
        said.push(format!("dropped scratch database {}", scratch.redacted()));
    }
    Ok(())
}

/// Removes what `m` names (folder, scratch database), then the marker. Returns what it
/// removed, one line each.
pub fn clean(repo: &Repo, m: &Marker) -> Result<Vec<String>> {
    let mut said = Vec::new();
    let folder = remove_folder(m, &mut said);
    let db = drop_database(repo, m, &mut said);
    folder?;
    db?;
    remove(repo, &m.id)?;
    Ok(said)
}

/// Cleans every rehearsal whose process is gone (killed). Returns, per rehearsal, what was
/// removed or why it could not be.
pub fn clean_stale(repo: &Repo) -> Result<Vec<(Marker, Result<Vec<String>>)>> {
    let mut out = Vec::new();
    for m in list(repo)? {
        if m.pid != std::process::id() && alive(m.pid) {
            continue;
        }
        let r = clean(repo, &m);
        out.push((m, r));
    }
    Ok(out)
}
