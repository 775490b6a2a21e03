//! The update command of a migration, run with its output streamed to the terminal (stderr)
//! and saved to a log file in the repository (`<repo>/logs/migrate-<snapshot id>.log`, mode
//! 0600), named in the error when it fails and by `show <pre-migrate id>`.

use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::Repo;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// The log file of the migration whose pre-migrate snapshot is `snapshot_id`.
pub fn log_path(repo: &Repo, snapshot_id: &str) -> PathBuf {
    repo.root
        .join("logs")
        .join(format!("migrate-{snapshot_id}.log"))
}

/// Copies `r` line by line to stderr and the log; returns its last non-empty line.
fn pump(r: impl Read, log: Arc<Mutex<std::fs::File>>) -> String {
    let mut last = String::new();
    for line in BufReader::new(r).lines().map_while(|l| l.ok()) {
        eprintln!("{line}");
        if let Ok(mut f) = log.lock() {
            let _ = writeln!(f, "{line}");
        }
        if !line.trim().is_empty() {
            last = line.trim().to_string();
        }
    }
    last
}

/// Runs `cmd` for site `uri` in `platform` (`SITESNAP_SITE`, `SITESNAP_PLATFORM` set), its
/// output streamed and saved to `log`. An error names the command, its status, its last line
/// of output and the log.
pub fn run(cmd: &str, uri: &str, platform: &Path, log: &Path) -> Result<()> {
    run_with_env(cmd, uri, platform, log, &[])
}

/// [`run`] with more variables in the command's environment (never on its command line).
pub fn run_with_env(
    cmd: &str,
    uri: &str,
    platform: &Path,
    log: &Path,
    env: &[(String, String)],
) -> Result<()> {
    if let Some(d) = log.parent() {
        fsutil::create_private_dir(d)?;
    }
    let file = Arc::new(Mutex::new(fsutil::create_private_file(log)?));
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(platform)
        .env("SITESNAP_SITE", uri)
        .env("SITESNAP_PLATFORM", platform)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Invalid(format!("update command '{cmd}' could not start: {e}")))?;
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let f2 = Arc::clone(&file);
    let t_out = std::thread::spawn(move || pump(out, f2));
    let last_err = pump(err, Arc::clone(&file));
    let last_out = t_out.join().unwrap_or_default();
    let status = child
        .wait()
        .map_err(|e| Error::Invalid(format!("update command '{cmd}': {e}")))?;
    if let Ok(f) = file.lock() {
        let _ = f.sync_all();
    }
    if status.success() {
        return Ok(());
    }
    let last = if last_err.is_empty() {
        last_out
    } else {
        last_err
    };
    Err(Error::Invalid(format!(
        "update command '{cmd}' failed ({status}){}; its output is in {}",
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        },
        log.display()
    )))
}
