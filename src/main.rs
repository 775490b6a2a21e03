//! The `sitesnap` binary: parses the command line and runs it; exit code 0 on success, 1 on
//! failure, 2 on a usage error.

fn main() {
    quiet_broken_stdout();
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
