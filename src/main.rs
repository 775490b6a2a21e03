//! The `sitesnap` binary: parses the command line and runs it; exit code 0 on success, 1 on
//! failure, 2 on a usage error.

fn main() {
    quiet_broken_stdout();
    tune_allocator();
    std::process::exit(sitesnap::cli::main());
}

/// Like other Unix tools, a closed stdout (`sitesnap list | head`) ends the process quietly
/// (status 141, as if killed by SIGPIPE) instead of printing a panic. SIGPIPE itself stays
/// ignored (Rust's default): a database client that exits early must make sitesnap's write to
/// its stdin fail with an error the restore handles, never kill sitesnap in the middle of a
/// step.
fn quiet_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Makes glibc's allocator give buffers above 2 MiB (a big file read whole, its frame) back to
/// the system as soon as they are freed. By default it raises its mmap threshold after such a
/// free (up to 32 MiB) and then keeps later large buffers in its heaps, where freed megabytes
/// stay resident: a first snapshot of 52,000 files peaked about 25 MB higher than with this.
/// Fixing that threshold also stops glibc from raising its trim threshold with it, and at its
/// default 128 KiB the heaps were shrunk and grown again all the time (a restore of the same
/// tree took 130,000-160,000 page faults instead of 26,000-29,000): 32 MiB of free heap top is
/// kept, as the default would have grown to. glibc's own `MALLOC_MMAP_THRESHOLD_` and
/// `MALLOC_TRIM_THRESHOLD_`, when set, win.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (var, param, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 2 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 32 << 20),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: mallopt only sets allocator parameters; it is called before any other
            // thread exists.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
