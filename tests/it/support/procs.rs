//! Processes: running the binary in the background, waiting for pause points, watching
//! children's command lines and environments.

use super::world::{Run, World};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `watch_procs` saw.
#[derive(Debug, Default)]
pub struct ProcReport {
    /// Command lines (of any process) that held one of the needles.
    pub argv_hits: Vec<String>,
    /// Command lines of processes named like one of the tools.
    pub tools_seen: Vec<String>,
    /// Tool processes whose environment held a needle (their command line).
    pub env_hits: Vec<String>,
    /// `--defaults-extra-file` paths seen on tool command lines: the tool, the path and its
    /// mode when seen.
    pub option_files: Vec<(String, PathBuf, Option<u32>)>,
}

/// Watches every process's command line until stopped, looking for `needles`; and the tool
/// processes (named like one of `tools`) started under the world `w` (their environment holds
/// its `SITESNAP_REPO`, inherited from sitesnap), recording their command line, whether their
/// environment holds a needle, and their option files.
pub struct ProcWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<ProcReport>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn watch_procs(w: &World, needles: Vec<String>, tools: &'static [&'static str]) -> ProcWatch {
    use std::sync::atomic::Ordering;
    let marker = format!("SITESNAP_REPO={}", w.repo.display()).into_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut rep = ProcReport::default();
        let mut seen_pids = std::collections::HashSet::new();
        while !st.load(Ordering::Relaxed) {
            let Ok(rd) = fs::read_dir("/proc") else { break };
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let Ok(cmd) = fs::read(e.path().join("cmdline")) else {
                    continue;
                };
                if cmd.is_empty() {
                    continue;
                }
                let shown = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if needles.iter().any(|n| contains(&cmd, n.as_bytes())) {
                    rep.argv_hits.push(shown.clone());
                }
                let argv0 = cmd.split(|b| *b == 0).next().unwrap_or(b"");
                let base =
                    Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(argv0))
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                if !tools.contains(&base.as_str()) || seen_pids.contains(pid) {
                    continue;
                }
                let Ok(env) = fs::read(e.path().join("environ")) else {
                    continue;
                };
                if !env.split(|b| *b == 0).any(|v| v == marker.as_slice()) {
                    continue; // another test's process
                }
                seen_pids.insert(pid.to_string());
                rep.tools_seen.push(shown.clone());
                if needles.iter().any(|n| contains(&env, n.as_bytes())) {
                    rep.env_hits.push(shown.clone());
                }
                for a in cmd.split(|b| *b == 0) {
                    if let Some(p) = a.strip_prefix(b"--defaults-extra-file=") {
                        let p = PathBuf::from(String::from_utf8_lossy(p).into_owned());
                        let mode = fs::metadata(&p)
                            .ok()
                            .map(|m| m.permissions().mode() & 0o7777);
                        rep.option_files.push((base.clone(), p, mode));
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        rep
    });
    ProcWatch { stop, handle }
}

/// The command lines of running MariaDB dump tools (`mariadb-dump`, `mysqldump`) whose
/// arguments name the database `name`: dump tools left behind.
pub fn dump_processes(name: &str) -> Vec<String> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if (c.contains("mariadb-dump") || c.contains("mysqldump")) && c.contains(name) {
                v.push(c);
            }
        }
    }
    v
}

impl ProcWatch {
    pub fn finish(self) -> ProcReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("watcher")
    }
}

/// Runs the real binary in the background (so its children can be watched) and waits.
pub fn run_watched(
    w: &World,
    args: &[&str],
    needles: Vec<String>,
    tools: &'static [&'static str],
) -> (Run, ProcReport) {
    let watch = watch_procs(w, needles, tools);
    // Give the watcher one pass before the child starts.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = w.run(args);
    (r, watch.finish())
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sitesnap"))
}

/// Starts the binary in the background with the repository and extra environment.
pub fn spawn(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(bin());
    c.env("SITESNAP_REPO", repo)
        .env_remove("SITESNAP_FAILPOINT")
        .env_remove("SITESNAP_TEST_NOW")
        .env_remove("SITESNAP_PAUSE")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("spawn sitesnap")
}

pub struct Done {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(c: Child) -> Done {
    let o = c.wait_with_output().expect("wait for sitesnap");
    Done {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Waits until `path` exists (a process reached its pause point). Panics after a minute: that
/// is a hung test, not a timing assertion.
pub fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run of the binary stopped at a fail point (`point@stop`), so a test can change the world
/// at that moment; [`Stopped::resume`] lets it go on.
pub struct Stopped(Child);

impl Stopped {
    /// Runs `args` in the world `w` with `SITESNAP_FAILPOINT=point` (which ends in `@stop`) and
    /// waits until it stops there (a run that ends without stopping fails the test).
    pub fn at(w: &World, args: &[&str], point: &str) -> Stopped {
        assert!(
            point.ends_with("@stop"),
            "{point}: not a stopping fail point"
        );
        let child = Command::new(bin())
            .args(args)
            .env("SITESNAP_REPO", &w.repo)
            .env("SITESNAP_FAILPOINT", point)
            .env_remove("SITESNAP_TEST_NOW")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        assert_eq!(
            unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) },
            pid
        );
        assert!(
            libc::WIFSTOPPED(status),
            "{args:?} did not stop at the fail point {point}"
        );
        Stopped(child)
    }

    /// Continues the stopped run and waits for its end.
    pub fn resume(self) -> std::process::Output {
        // SAFETY: signalling our own stopped child.
        assert_eq!(
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGCONT) },
            0
        );
        self.0.wait_with_output().unwrap()
    }
}
