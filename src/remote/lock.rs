//! Locks on a remote shared by several servers. A lock is an object in the remote's `locks/`
//! (random 16-hex-digit name), sealed like every other object, saying who holds it: host, pid,
//! command, time, and whether it is exclusive. `push` takes a shared lock (pushes from several
//! servers run together); `prune --remote` and `gc --remote` take an exclusive one, so they
//! never run while a push, another prune or gc runs, and no push starts while they run.
//!
//! Taking a lock: list the locks, drop the stale ones (older than [`STALE_AFTER`], or held on
//! this host by a process that is gone), refuse if one conflicts, write ours, then list again
//! and back off (remove ours, refuse) if a conflicting one appeared meanwhile: two servers that
//! race both back off, neither runs. `--break-lock` removes conflicting locks instead of
//! refusing (for a lock whose holder is known to be dead on another host). A lock is removed
//! when its holder finishes or fails; a killed holder's lock turns stale.
//!
//! While held, a lock is refreshed: a background thread rewrites it with a new `refreshed`
//! time every twelfth of the stale age, so a prune, gc or push that runs longer than
//! [`STALE_AFTER`] never sees its lock broken as stale by another server; a killed holder's
//! lock stops being refreshed and turns stale. The thread stops (and the lock is removed) when
//! the [`RemoteLock`] is dropped; a lock removed meanwhile (`--break-lock`) is not written
//! back.

use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::{ObjectSealer, Repo, hostname};
use crate::store::{Backend, ObjectKind, ObjectName};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;

/// A lock not refreshed for this long is stale, whoever holds it.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// The stale age in force: [`STALE_AFTER`]; for tests only, debug builds take a number of
/// seconds from `SITESNAP_TEST_LOCK_STALE_SECS` (release builds ignore it).
pub fn stale_after() -> chrono::Duration {
    #[cfg(debug_assertions)]
    if let Some(s) = std::env::var("SITESNAP_TEST_LOCK_STALE_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|s| *s > 0)
    {
        return chrono::Duration::seconds(s);
    }
    STALE_AFTER
}

/// How often a held lock is rewritten: a twelfth of the stale age (two hours for a day).
fn refresh_every() -> std::time::Duration {
    (stale_after() / 12).to_std().expect("a positive stale age")
}

/// Who may run beside the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Others with a shared lock may run too (push).
    Shared,
    /// Nobody else may run (prune, gc).
    Exclusive,
}

/// The content of a lock object.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LockInfo {
    host: String,
    pid: u32,
    command: String,
    time: DateTime<Utc>,
    mode: LockMode,
    /// When the holder last rewrote it (absent until the first refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refreshed: Option<DateTime<Utc>>,
}

impl LockInfo {
    fn describe(&self) -> String {
        format!(
            "{} by pid {} on host '{}' since {}",
            self.command,
            self.pid,
            self.host,
            self.time.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }

    /// Stale: not refreshed for too long, or this host's and its process is gone.
    fn is_stale(&self, now: DateTime<Utc>) -> bool {
        now - self.refreshed.unwrap_or(self.time) > stale_after()
            || (self.host == hostname() && !process_alive(self.pid))
    }

    fn conflicts(&self, mode: LockMode) -> bool {
        mode == LockMode::Exclusive || self.mode == LockMode::Exclusive
    }
}

/// Is process `pid` alive on this machine?
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A lock held on a remote, refreshed while held; removed when dropped.
pub struct RemoteLock {
    backend: Arc<dyn Backend>,
    name: ObjectName,
    refresher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        // Stop the refresher first, so it never writes the lock back after its removal.
        if let Some((stop, thread)) = self.refresher.take() {
            drop(stop);
            let _ = thread.join();
        }
        let _ = self.backend.remove(&self.name);
    }
}

/// Rewrites the lock `name` (saying `info`) every [`refresh_every`] until `stop` is dropped,
/// or the lock is found removed. A failed rewrite is tried again at the next turn.
fn refresher(
    backend: Arc<dyn Backend>,
    name: ObjectName,
    mut info: LockInfo,
    sealer: ObjectSealer,
) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let every = refresh_every();
    let thread = std::thread::spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            match backend.size(&name) {
                Ok(None) => return,
                Err(_) => continue,
                Ok(Some(_)) => {}
            }
            info.refreshed = Some(fsutil::now());
            let plain = serde_json::to_vec(&info).expect("a lock serializes");
            if let Ok(stored) = sealer.encode(ObjectKind::Lock, &name.name, &plain) {
                let _ = backend.put(&name, &stored);
            }
        }
    });
    (stop, thread)
}

/// The remote's locks other than `own`: (name, what it says; None: unreadable).
fn others(
    repo: &Repo,
    backend: &dyn Backend,
    own: Option<&str>,
) -> Result<Vec<(ObjectName, Option<LockInfo>)>> {
    let mut out = Vec::new();
    for o in backend.list(ObjectKind::Lock)? {
        if Some(o.name.name.as_str()) == own {
            continue;
        }
        let info = match backend.read(&o.name) {
            Ok(b) => repo
                .decode_object(ObjectKind::Lock, &o.name.name, &b)
                .ok()
                .and_then(|p| serde_json::from_slice::<LockInfo>(&p).ok()),
            // Removed meanwhile: its holder finished.
            Err(_) if backend.size(&o.name)?.is_none() => continue,
            Err(e) => return Err(e),
        };
        out.push((o.name, info));
    }
    Ok(out)
}

/// The first lock conflicting with `mode` (stale ones are removed, or every conflicting one
/// with `break_lock`), as a refusal.
fn conflict(
    repo: &Repo,
    backend: &dyn Backend,
    remote: &str,
    mode: LockMode,
    own: Option<&str>,
    break_lock: bool,
) -> Result<Option<Error>> {
    let now = fsutil::now();
    for (name, info) in others(repo, backend, own)? {
        let what = info.as_ref().map_or_else(
            || format!("unreadable lock {}", name.name),
            LockInfo::describe,
        );
        let stale = info.as_ref().is_some_and(|i| i.is_stale(now));
        let conflicts = info.as_ref().is_none_or(|i| i.conflicts(mode));
        if stale || (break_lock && conflicts) {
            backend.remove(&name)?;
            match stale {
                true => eprintln!(
                    "sitesnap: notice: removed a stale lock of remote '{remote}' ({what})"
                ),
                false => eprintln!(
                    "sitesnap: notice: broke the lock of remote '{remote}' ({what}) as --break-lock asks"
                ),
            }
            continue;
        }
        if conflicts {
            let hint = match mode {
                LockMode::Exclusive => "if that process is gone, run again with --break-lock",
                LockMode::Shared => "try again once it has finished",
            };
            return Ok(Some(Error::Refused(format!(
                "remote '{remote}' is locked ({what}); {hint}"
            ))));
        }
    }
    Ok(None)
}

/// Takes a lock of `mode` on remote `remote` for `command`; it is refreshed until dropped.
pub fn acquire(
    repo: &Repo,
    backend: &Arc<dyn Backend>,
    remote: &str,
    command: &str,
    mode: LockMode,
    break_lock: bool,
) -> Result<RemoteLock> {
    let b = backend.as_ref();
    if let Some(e) = conflict(repo, b, remote, mode, None, break_lock)? {
        return Err(e);
    }
    let info = LockInfo {
        host: hostname(),
        pid: std::process::id(),
        command: command.to_string(),
        time: fsutil::now(),
        mode,
        refreshed: None,
    };
    let id = fsutil::random_hex(8);
    let plain = serde_json::to_vec(&info).expect("a lock serializes");
    let stored = repo.encode_object(ObjectKind::Lock, &id, &plain)?;
    let name = ObjectName::new(ObjectKind::Lock, &id);
    b.put(&name, &stored)?;
    let lock = RemoteLock {
        backend: backend.clone(),
        refresher: Some(refresher(
            backend.clone(),
            name.clone(),
            info,
            repo.object_sealer(),
        )),
        name,
    };
    fsutil::pausepoint("remote-locked");
    if let Some(e) = conflict(repo, b, remote, mode, Some(&id), false)? {
        return Err(e);
    }
    Ok(lock)
}
