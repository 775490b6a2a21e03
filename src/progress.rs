//! Progress of long work (snapshot, restore, export, import, verify, gc, prune): the library
//! says which phase it is in, how much there is to do (bytes and files) and how much is done;
//! the process's one [`Reporter`] (installed by the CLI, like a logger) draws it, or nothing
//! is drawn at all. Reporting is cheap and never fails. This module never prints; it depends
//! on nothing above it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// What draws progress (the CLI's terminal bar).
pub trait Reporter: Send + Sync {
    /// A new phase (`what`, for example "example.com: storing") with its totals (0: unknown);
    /// `unit` names what is counted besides bytes ("files", "packs", "snapshots").
    fn phase(&self, what: &str, bytes: u64, count: u64, unit: &'static str);
    /// Work done in the current phase: bytes and units.
    fn add(&self, bytes: u64, count: u64);
    /// The work is over: clear what was drawn.
    fn finish(&self);
}

static REPORTER: RwLock<Option<Arc<dyn Reporter>>> = RwLock::new(None);

/// Was a reporter ever installed? Without one (cron, scripts, tests) a report reads this flag
/// only: the workers of a snapshot or restore report every file, and taking the lock each time
/// made them queue on its one cache line.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Makes `r` the process's reporter (the CLI does, on a terminal).
pub fn install(r: Arc<dyn Reporter>) {
    *REPORTER.write().unwrap_or_else(|e| e.into_inner()) = Some(r);
    INSTALLED.store(true, Ordering::Release);
}

fn with(f: impl FnOnce(&dyn Reporter)) {
    if !INSTALLED.load(Ordering::Acquire) {
        return;
    }
    let guard = REPORTER.read().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = guard.as_ref() {
        f(r.as_ref());
    }
}

/// Starts a phase with its totals of bytes and files (0 when unknown).
pub fn phase(what: &str, bytes: u64, files: u64) {
    with(|r| r.phase(what, bytes, files, "files"));
}

/// Starts a phase that counts something other than files (`unit`: "packs", "snapshots").
pub fn phase_of(what: &str, bytes: u64, count: u64, unit: &'static str) {
    with(|r| r.phase(what, bytes, count, unit));
}

/// Counts work done in the current phase.
pub fn add(bytes: u64, files: u64) {
    with(|r| r.add(bytes, files));
}

/// Ends the progress display (before a summary or an error is printed).
pub fn finish() {
    with(|r| r.finish());
}

/// A switch a function that reports only sometimes carries (a scan for `diff` reports
/// nothing, the same read for a snapshot does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter(pub bool);

impl Meter {
    /// Counts `bytes` and `files` done when on.
    pub fn add(self, bytes: u64, files: u64) {
        if self.0 {
            add(bytes, files);
        }
    }

    /// Starts a phase when on.
    pub fn phase(self, what: &str, bytes: u64, files: u64) {
        if self.0 {
            phase(what, bytes, files);
        }
    }
}
