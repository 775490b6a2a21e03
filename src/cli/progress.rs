//! The terminal progress bar every long command shares: phase, done/total bytes and files,
//! rate and estimate, drawn on stderr with indicatif. Installed as the process's
//! [`crate::progress::Reporter`] only when stderr is a terminal and `-q` was not given, so
//! under cron nothing is drawn.

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Files (or packs, snapshots) done and to do, shown beside the bytes.
struct Files {
    done: AtomicU64,
    total: AtomicU64,
    unit: Mutex<&'static str>,
}

/// The bar: created at the first phase, cleared at the end.
pub struct Bar {
    bar: Mutex<Option<ProgressBar>>,
    files: Arc<Files>,
}

impl Bar {
    fn style(&self, known_total: bool) -> ProgressStyle {
        let files = self.files.clone();
        let template = if known_total {
            "{msg} [{bar:24}] {bytes}/{total_bytes} ({percent}%) {files} {binary_bytes_per_sec} eta {eta}"
        } else {
            "{msg} {spinner} {bytes} {files} {binary_bytes_per_sec} {elapsed}"
        };
        ProgressStyle::with_template(template)
            .expect("template")
            .progress_chars("=> ")
            .with_key(
                "files",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let done = files.done.load(Ordering::Relaxed);
                    let unit = *files.unit.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = match files.total.load(Ordering::Relaxed) {
                        0 if done == 0 => Ok(()),
                        0 => write!(w, "{done} {unit}"),
                        t => write!(w, "{done}/{t} {unit}"),
                    };
                },
            )
    }
}

impl crate::progress::Reporter for Bar {
    fn phase(&self, what: &str, bytes: u64, files: u64, unit: &'static str) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let pb = slot.get_or_insert_with(|| {
            let pb = ProgressBar::new(0);
            // Redrawn while a phase runs without moving (a walk, a database dump or load).
            pb.enable_steady_tick(Duration::from_millis(250));
            pb
        });
        self.files.done.store(0, Ordering::Relaxed);
        self.files.total.store(files, Ordering::Relaxed);
        *self.files.unit.lock().unwrap_or_else(|e| e.into_inner()) = unit;
        pb.set_style(self.style(bytes > 0));
        pb.set_length(bytes);
        pb.reset();
        pb.set_message(what.to_string());
    }

    fn add(&self, bytes: u64, files: u64) {
        self.files.done.fetch_add(files, Ordering::Relaxed);
        if let Some(pb) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            pb.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(pb) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pb.finish_and_clear();
        }
    }
}

/// Installs the bar when progress may be shown (`!quiet`) and stderr is a terminal.
pub fn install(show: bool) {
    if show && std::io::stderr().is_terminal() {
        crate::progress::install(Arc::new(Bar {
            bar: Mutex::new(None),
            files: Arc::new(Files {
                done: AtomicU64::new(0),
                total: AtomicU64::new(0),
                unit: Mutex::new("files"),
            }),
        }));
    }
}
