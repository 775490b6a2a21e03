//! Client tools as child processes: finding them on `PATH`, streaming a dump out of one or a
//! script into one, draining its stderr on a thread (bounded), and turning its exit status and
//! stderr into one line. It never builds argv from a secret: callers hand secrets to the child
//! through a private option file or the child's own environment, and every message it returns
//! has the secret scrubbed out as a last line of defence.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

/// At most this much of a child's stderr is kept (the rest is read and dropped).
const STDERR_KEEP: usize = 16 << 10;
/// The end of a dump kept to check that the dump tool wrote its completion trailer.
const TAIL_KEEP: usize = 512;

/// The first of `names` found as an executable file on `PATH`.
pub(crate) fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for n in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(n);
            if let Ok(md) = std::fs::metadata(&p)
                && md.is_file()
                && md.permissions().mode() & 0o111 != 0
            {
                return Some(p);
            }
        }
    }
    None
}

/// The program name of a command, for messages.
fn prog(cmd: &Command) -> String {
    std::path::Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "client".into())
}

/// Reads a child's stderr to the end on a thread, keeping the first `STDERR_KEEP` bytes, so a
/// chatty child never blocks on a full pipe.
struct StderrDrain(JoinHandle<Vec<u8>>);

impl StderrDrain {
    fn start(mut e: ChildStderr) -> Self {
        StderrDrain(std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match e.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = STDERR_KEEP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            kept
        }))
    }

    fn finish(self) -> Vec<u8> {
        self.0.join().unwrap_or_default()
    }
}

/// One line out of a child's stderr: its non-empty lines joined with " / ", bounded, with
/// `secret` scrubbed.
pub(crate) fn one_line(stderr: &[u8], secret: Option<&str>) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut s = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    if s.chars().count() > 400 {
        s = s.chars().take(400).collect::<String>() + "…";
    }
    scrub(&s, secret)
}

/// Replaces every occurrence of `secret` (and its percent-encoded form) in `s` with `***`.
pub(crate) fn scrub(s: &str, secret: Option<&str>) -> String {
    match secret {
        Some(p) if !p.is_empty() => {
            let enc = percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
            s.replace(p, "***").replace(&enc, "***")
        }
        _ => s.to_string(),
    }
}

fn status_text(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown exit".into(),
    }
}

fn failed(cmd: &str, st: ExitStatus, stderr: &[u8], secret: Option<&str>) -> String {
    let e = one_line(stderr, secret);
    if e.is_empty() {
        format!("{cmd} failed ({})", status_text(st))
    } else {
        format!("{cmd} failed ({}): {e}", status_text(st))
    }
}

fn spawn(cmd: &mut Command, secret: Option<&str>) -> Result<Child, String> {
    let name = prog(cmd);
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl(2),
    // which is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            // The tool dies with us: a killed sitesnap leaves no orphan dump or client.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| scrub(&format!("cannot run {name}: {e}"), secret))
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` to completion with `input` on its stdin; returns its stdout, or one line saying
/// why it failed.
pub(crate) fn run(mut cmd: Command, input: &[u8], secret: Option<&str>) -> Result<Vec<u8>, String> {
    let name = prog(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, secret)?;
    let err = StderrDrain::start(child.stderr.take().expect("piped stderr"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Feed stdin on a thread while stdout is read here: neither side can fill a pipe and stall.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    let read = child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut out);
    let _ = feeder.join();
    let st = child
        .wait()
        .map_err(|e| format!("waiting for {name}: {e}"))?;
    let stderr = err.finish();
    if !st.success() {
        return Err(failed(&name, st, &stderr, secret));
    }
    read.map_err(|e| format!("reading from {name}: {e}"))?;
    Ok(out)
}

/// A reader that counts what passes and keeps the last `TAIL_KEEP` bytes.
struct Tail<R> {
    inner: R,
    tail: Vec<u8>,
    total: u64,
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 2 * TAIL_KEEP {
            self.tail.drain(..self.tail.len() - TAIL_KEEP);
        }
        Ok(n)
    }
}

/// Runs a dump tool and hands its stdout to `consume` as it comes (nothing is buffered beyond
/// the pipe). The dump is good only if `consume` succeeded, the tool exited 0 and the stream
/// ends with `trailer` (the tool's completion comment) within its last bytes: a tool that died
/// halfway, or a stream cut short, fails.
pub(crate) fn stream_out<T>(
    mut cmd: Command,
    trailer: &str,
    secret: Option<&str>,
    timeout: std::time::Duration,
    cancel: &super::Cancel,
    consume: &mut dyn FnMut(&mut dyn Read) -> crate::Result<T>,
) -> Result<crate::Result<T>, String> {
    let name = prog(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, secret)?;
    let err = StderrDrain::start(child.stderr.take().expect("piped stderr"));
    let dog = Watchdog::start(child.id(), timeout, cancel.clone());
    let mut out = Tail {
        inner: child.stdout.take().expect("piped stdout"),
        tail: Vec::new(),
        total: 0,
    };
    let res = consume(&mut out);
    let Tail { inner, tail, total } = out;
    drop(inner);
    // Stopped before the child is reaped, so its pid cannot have been reused.
    if let Some(why) = dog.stop() {
        kill(&mut child);
        let _ = err.finish();
        return Err(match why {
            Killed::Late => format!(
                "{name} did not finish within {} s and was stopped (a table lock held elsewhere?)",
                timeout.as_secs_f64()
            ),
            Killed::Cancelled => format!("{name} was stopped: the snapshot failed elsewhere"),
        });
    }
    if res.is_err() {
        // The consumer gave up (a full disk, say): stop the tool, report the consumer's error.
        kill(&mut child);
        let _ = err.finish();
        return Ok(res);
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for {name}: {e}"))?;
    let stderr = err.finish();
    if !st.success() {
        return Err(failed(&name, st, &stderr, secret));
    }
    let start = tail.len().saturating_sub(TAIL_KEEP);
    let tail = String::from_utf8_lossy(&tail[start..]);
    if !tail.contains(trailer) {
        let e = one_line(&stderr, secret);
        return Err(format!(
            "{name} output is truncated ({total} bytes, no '{trailer}' at its end){}",
            if e.is_empty() {
                String::new()
            } else {
                format!(": {e}")
            }
        ));
    }
    Ok(res)
}

/// How often a watchdog looks at its dump's stop switch.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Why a watchdog killed its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    /// Its time limit passed.
    Late,
    /// Its stop switch was set.
    Cancelled,
}

/// Kills a process (SIGKILL) when a time limit passes or a stop switch is set, unless stopped
/// first.
struct Watchdog {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<Option<Killed>>,
}

impl Watchdog {
    fn start(pid: u32, limit: std::time::Duration, cancel: super::Cancel) -> Watchdog {
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let deadline = std::time::Instant::now() + limit;
        let thread = std::thread::spawn(move || {
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left.min(CANCEL_POLL)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return None,
                }
                let why = if cancel.is_cancelled() {
                    Killed::Cancelled
                } else if std::time::Instant::now() >= deadline {
                    Killed::Late
                } else {
                    continue;
                };
                // SAFETY: plain kill(2) on our own child, which is not reaped before `stop`
                // has joined this thread, so the pid still names it.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                return Some(why);
            }
        });
        Watchdog { stop, thread }
    }

    /// Stops the watchdog; why it had already killed the process, if it had.
    fn stop(self) -> Option<Killed> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(None)
    }
}

/// Runs a client with `prefix` then everything from `r` on its stdin, and checks it exits 0.
/// Its stdout is discarded. A read error from `r` stops the client and is reported as such.
pub(crate) fn stream_in(
    mut cmd: Command,
    prefix: &[u8],
    r: &mut dyn Read,
    secret: Option<&str>,
) -> Result<u64, String> {
    let name = prog(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd, secret)?;
    let err = StderrDrain::start(child.stderr.take().expect("piped stderr"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut sent = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let mut feed = || -> Result<(), FeedError> {
        stdin.write_all(prefix).map_err(FeedError::Write)?;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FeedError::Read(e)),
            };
            stdin.write_all(&buf[..n]).map_err(FeedError::Write)?;
            sent += n as u64;
        }
        Ok(())
    };
    let fed = feed();
    drop(stdin);
    if let Err(FeedError::Read(e)) = fed {
        kill(&mut child);
        let _ = err.finish();
        return Err(format!("reading the dump to load failed: {e}"));
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for {name}: {e}"))?;
    let stderr = err.finish();
    if !st.success() {
        return Err(failed(&name, st, &stderr, secret));
    }
    if let Err(FeedError::Write(e)) = fed {
        // The client exited 0 but stopped reading early.
        return Err(format!("{name} stopped reading the dump: {e}"));
    }
    Ok(sent)
}

enum FeedError {
    Read(io::Error),
    Write(io::Error),
}

#[cfg(test)]
mod tests {
    use super::super::Cancel;
    use super::*;

    #[test]
    fn scrubs_plain_and_encoded_secrets() {
        assert_eq!(scrub("a p@ss b", Some("p@ss")), "a *** b");
        assert_eq!(scrub("url u:p%40ss@h", Some("p@ss")), "url u:***@h");
        assert_eq!(one_line(b"\n first \n\nsecond\n", None), "first / second");
    }

    const LONG: std::time::Duration = std::time::Duration::from_secs(60);

    #[test]
    fn stream_out_kills_a_tool_past_its_time() {
        let mut sh = Command::new("sh");
        sh.args(["-c", "printf 'x'; exec sleep 30"]);
        let t = std::time::Instant::now();
        let e = stream_out(
            sh,
            "-- done",
            None,
            std::time::Duration::from_millis(300),
            &Cancel::default(),
            &mut |r| {
                std::io::copy(r, &mut std::io::sink()).unwrap();
                Ok(())
            },
        )
        .unwrap_err();
        assert!(e.contains("did not finish within"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
    }

    /// A tool that writes nothing (waiting for a lock, say) is killed once the dump's stop
    /// switch is set, long before its time limit, and the error says it was stopped.
    #[test]
    fn stream_out_kills_a_tool_once_cancelled() {
        let mut sh = Command::new("sh");
        sh.args(["-c", "exec sleep 60"]);
        let cancel = Cancel::default();
        let later = cancel.clone();
        let switch = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            later.cancel();
        });
        let e = stream_out(sh, "-- done", None, LONG, &cancel, &mut |r| {
            std::io::copy(r, &mut std::io::sink()).unwrap();
            Ok(())
        })
        .unwrap_err();
        switch.join().unwrap();
        assert!(
            e.contains("was stopped: the snapshot failed elsewhere"),
            "{e}"
        );
    }

    #[test]
    fn stream_out_checks_status_and_trailer() {
        let mut sh = Command::new("sh");
        sh.args(["-c", "printf 'data\\n-- done\\n'"]);
        let mut got = Vec::new();
        let r = stream_out(sh, "-- done", None, LONG, &Cancel::default(), &mut |r| {
            r.read_to_end(&mut got).unwrap();
            Ok(())
        });
        assert!(matches!(r, Ok(Ok(()))));
        assert_eq!(got, b"data\n-- done\n");

        let mut sh = Command::new("sh");
        sh.args(["-c", "printf 'half'"]);
        let e = stream_out(sh, "-- done", None, LONG, &Cancel::default(), &mut |r| {
            std::io::copy(r, &mut std::io::sink()).unwrap();
            Ok(())
        })
        .unwrap_err();
        assert!(e.contains("truncated"), "{e}");

        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            "printf 'x\\n-- done\\n'; echo 'boom secret' >&2; exit 3",
        ]);
        let e = stream_out(
            sh,
            "-- done",
            Some("secret"),
            LONG,
            &Cancel::default(),
            &mut |r| {
                std::io::copy(r, &mut std::io::sink()).unwrap();
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e, "sh failed (exit status 3): boom ***");
    }

    #[test]
    fn stream_in_reports_client_failure() {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            "head -c 10 >/dev/null; echo 'ERROR at line 1' >&2; exit 1",
        ]);
        let data = vec![b'x'; 1 << 20];
        let e = stream_in(sh, b"prefix", &mut &data[..], None).unwrap_err();
        assert_eq!(e, "sh failed (exit status 1): ERROR at line 1");
        let mut sh = Command::new("sh");
        sh.args(["-c", "wc -c >&2"]);
        assert_eq!(stream_in(sh, b"ab", &mut &b"cde"[..], None), Ok(3));
    }
}
