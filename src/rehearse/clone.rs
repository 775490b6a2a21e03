//! Making a rehearsal's clone: the live site folder copied (not moved) onto the target
//! platform under the clone's URI, its database copied to a scratch one, and the clone's
//! settings pointed at that copy. Nothing here writes to the live site.

use crate::db::Database;
use crate::error::{IoContext, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Whether `rel` (relative to the site folder) is the SQLite file `db` or one of its
/// journal/WAL files: those are copied through the backup API, not as files.
fn is_sqlite_file(rel: &Path, db: Option<&Path>) -> bool {
    let Some(db) = db else {
        return false;
    };
    let (r, d) = (rel.to_string_lossy(), db.to_string_lossy());
    r == d
        || ["-wal", "-shm", "-journal"]
            .iter()
            .any(|x| r == format!("{d}{x}"))
}

/// Copies the folder `src` to `dest` (which must not exist): folders, files with their
/// modes, symlinks as symlinks; `sqlite_rel` (relative to `src`) is left out. Returns how
/// many files were copied.
pub fn copy_folder(src: &Path, dest: &Path, sqlite_rel: Option<&Path>) -> Result<u64> {
    if let Some(p) = dest.parent() {
        fs::create_dir_all(p).at(p)?;
    }
    fs::create_dir(dest).at(dest)?;
    let mut files = 0;
    for e in walkdir::WalkDir::new(src).min_depth(1).follow_links(false) {
        let e = e.map_err(|e| {
            let p = e.path().unwrap_or(src).to_path_buf();
            crate::error::Error::io(&p, std::io::Error::other(e.to_string()))
        })?;
        let rel = e
            .path()
            .strip_prefix(src)
            .expect("walk stays under its root");
        if is_sqlite_file(rel, sqlite_rel) {
            continue;
        }
        let to = dest.join(rel);
        let ft = e.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).at(&to)?;
            let mode = e
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0o755);
            fs::set_permissions(&to, fs::Permissions::from_mode(mode & 0o7777)).at(&to)?;
        } else if ft.is_file() {
            fs::copy(e.path(), &to).at(&to)?;
            files += 1;
        } else if ft.is_symlink() {
            let target = fs::read_link(e.path()).at(e.path())?;
            std::os::unix::fs::symlink(&target, &to).at(&to)?;
        }
    }
    let mode = fs::metadata(src).at(src)?.permissions().mode();
    fs::set_permissions(dest, fs::Permissions::from_mode(mode & 0o7777)).at(dest)?;
    Ok(files)
}

/// The files of a clone that may name the live database: Drupal's settings and Aegir's
/// drushrc, at the top of the site folder.
const SETTINGS_FILES: &[&str] = &["settings.php", "local.settings.php", "drushrc.php"];

/// Points the clone's settings at the scratch database: the live SQLite path is replaced
/// everywhere; a server database's name on lines that set it (`db_name`, `'database'`).
/// Returns the files changed (relative names).
pub fn repoint_settings(clone: &Path, live: &Database, scratch: &Database) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for name in SETTINGS_FILES {
        let p = clone.join(name);
        let Ok(text) = fs::read_to_string(&p) else {
            continue;
        };
        let new = rewrite(&text, live, scratch);
        if new != text {
            let mode = fs::metadata(&p).at(&p)?.permissions().mode();
            crate::fsutil::write_atomic(&p, new.as_bytes(), mode & 0o7777)?;
            changed.push((*name).to_string());
        }
    }
    Ok(changed)
}

fn rewrite(text: &str, live: &Database, scratch: &Database) -> String {
    match (live, scratch) {
        (Database::Sqlite(a), Database::Sqlite(b)) => {
            text.replace(a.to_string_lossy().as_ref(), b.to_string_lossy().as_ref())
        }
        _ => {
            let (Some(a), Some(b)) = (live.server_name(), scratch.server_name()) else {
                return text.to_string();
            };
            let mut out = String::with_capacity(text.len());
            for line in text.split_inclusive('\n') {
                if line.contains("db_name") || line.contains("'database'") {
                    out.push_str(
                        &line
                            .replace(&format!("'{a}'"), &format!("'{b}'"))
                            .replace(&format!("\"{a}\""), &format!("\"{b}\"")),
                    );
                } else {
                    out.push_str(line);
                }
            }
            out
        }
    }
}

/// The scratch copy of `live` for a clone whose folder is `clone` (an SQLite file inside the
/// site folder keeps its place in it; one outside goes to the clone's top folder; a server
/// database gets `scratch_name` on the same server).
pub fn scratch_of(live: &Database, live_site: &Path, clone: &Path, scratch_name: &str) -> Database {
    match live {
        Database::Sqlite(p) => {
            let to = match p.strip_prefix(live_site) {
                Ok(rel) => clone.join(rel),
                Err(_) => clone.join(p.file_name().unwrap_or_else(|| "site.sqlite".as_ref())),
            };
            Database::Sqlite(to)
        }
        other => other
            .with_name(scratch_name)
            .expect("a server database takes another name"),
    }
}

/// The update command's environment for the scratch database, under Aegir's names (its
/// `settings.php` reads `$_SERVER['db_type']`, `db_name`, `db_user`, `db_passwd`, `db_host`,
/// `db_port`) and sitesnap's (`SITESNAP_DB_*`). The password goes only into the
/// environment.
pub fn db_env(d: &Database) -> Vec<(String, String)> {
    let mut v: Vec<(&str, String)> = Vec::new();
    match d {
        Database::Sqlite(p) => {
            v.push(("db_type", "sqlite".into()));
            v.push(("db_name", p.to_string_lossy().into_owned()));
        }
        Database::Mysql(s) | Database::Postgres(s) => {
            let (ty, port) = match d {
                Database::Mysql(_) => ("mysql", 3306),
                _ => ("pgsql", 5432),
            };
            v.push(("db_type", ty.into()));
            v.push(("db_name", s.name.clone()));
            v.push(("db_user", s.user.clone()));
            v.push(("db_passwd", s.password.clone().unwrap_or_default()));
            v.push(("db_host", s.tool_host().to_string()));
            v.push(("db_port", s.port.unwrap_or(port).to_string()));
        }
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, val) in v {
        out.push((format!("SITESNAP_{}", k.to_uppercase()), val.clone()));
        out.push((k.to_string(), val));
    }
    out
}

/// The clone's site folder: the live one's path relative to its platform with the last
/// component replaced by the clone's URI, on the target platform.
pub fn clone_dir(to: &Path, site_dir: &str, temp_uri: &str) -> PathBuf {
    to.join(Path::new(site_dir).with_file_name(temp_uri))
}
