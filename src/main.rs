//! The `sitesnap` binary: parses the command line and runs it; exit code 0 on success, 1 on
//! failure, 2 on a usage error.

fn main() {
    // Like other Unix tools: a closed pipe (`sitesnap list | head`) ends the process quietly
    // instead of a panic on the next print.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(sitesnap::cli::main());
}
