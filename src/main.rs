//! The `sitesnap` binary: parses the command line and runs it; exit code 0 on success, 1 on
//! failure, 2 on a usage error.

fn main() {
    std::process::exit(sitesnap::cli::main());
}
