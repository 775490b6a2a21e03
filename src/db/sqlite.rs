//! SQLite's side of a dump: a consistent online copy of a live database file, polling its
//! writers' locks out of step with them.

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a copy stopped when its stop switch was set.
const STOPPED: &str = "the copy was stopped: the snapshot failed elsewhere";

/// How long a capture waits for a site's SQLite database to let it read.
const SQLITE_BUSY_LIMIT: Duration = Duration::from_secs(120);

/// A short random pause (0.5 to 3 ms). A site that commits back to back leaves only short
/// gaps between its exclusive locks; SQLite's default busy handler backs off to 100 ms sleeps
/// and can miss them for many seconds, so poll often and out of step with the writer.
fn jitter() -> Duration {
    let mut b = [0u8; 1];
    let _ = getrandom::fill(&mut b);
    Duration::from_micros(500 + b[0] as u64 * 10)
}

thread_local! {
    /// The stop switch of the copy this thread is making (SQLite's busy handler is a plain
    /// function: it finds the switch here).
    static COPYING: std::cell::RefCell<Option<super::Cancel>> = const { std::cell::RefCell::new(None) };
}

/// Sets this thread's [`COPYING`] switch until dropped.
struct Copying;

impl Copying {
    fn start(cancel: &super::Cancel) -> Copying {
        COPYING.with(|c| *c.borrow_mut() = Some(cancel.clone()));
        Copying
    }

    fn cancelled() -> bool {
        COPYING.with(|c| c.borrow().as_ref().is_some_and(|c| c.is_cancelled()))
    }
}

impl Drop for Copying {
    fn drop(&mut self) {
        COPYING.with(|c| *c.borrow_mut() = None);
    }
}

/// SQLite's busy handler: waits a little and tries again, until [`SQLITE_BUSY_LIMIT`] or the
/// copy's stop switch.
fn busy_poll(calls: i32) -> bool {
    // About 1.8 ms per call on average.
    if calls as u128 * 18 >= SQLITE_BUSY_LIMIT.as_millis() * 10 || Copying::cancelled() {
        return false;
    }
    std::thread::sleep(jitter());
    true
}

/// Consistent online copy of a live SQLite database into `dest`, in one backup step (the
/// source's writers wait for the copy instead of restarting it). Gives up, with a message
/// saying so, if the database stays locked for `SQLITE_BUSY_LIMIT`, or once `cancel` is set.
pub(super) fn backup(
    src: &Path,
    dest: &Path,
    cancel: &super::Cancel,
) -> std::result::Result<(), String> {
    let _copying = Copying::start(cancel);
    let locked = || {
        if cancel.is_cancelled() {
            return STOPPED.to_string();
        }
        format!(
            "database is locked (still busy after {} s)",
            SQLITE_BUSY_LIMIT.as_secs()
        )
    };
    let busy = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => locked(),
        _ => e.to_string(),
    };
    let mut s =
        Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(busy)?;
    s.busy_handler(Some(busy_poll)).map_err(busy)?;
    let mut d = Connection::open(dest).map_err(busy)?;
    // The copy is a private temporary file: no fsync of it or its journal is needed.
    d.pragma_update(None, "synchronous", "OFF").map_err(busy)?;
    {
        let b = rusqlite::backup::Backup::new(&s, &mut d).map_err(busy)?;
        let deadline = Instant::now() + SQLITE_BUSY_LIMIT;
        loop {
            match b.step(-1).map_err(busy)? {
                rusqlite::backup::StepResult::Done => break,
                _ if cancel.is_cancelled() => return Err(STOPPED.into()),
                _ if Instant::now() < deadline => std::thread::sleep(jitter()),
                _ => return Err(locked()),
            }
        }
    }
    // A rollback-journal copy is one self-contained file.
    d.pragma_update(None, "journal_mode", "DELETE")
        .map_err(busy)?;
    Ok(())
}
