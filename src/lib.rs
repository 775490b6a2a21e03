//! sitesnap: backup and rollback snapshots for sites hosted the Aegir way. A snapshot holds all
//! four parts of a site (platform code, site directory, database, binding files) in a
//! deduplicated, compressed, content-addressed store with an SQLite catalogue, and a restore
//! puts the site back on the platform it was on. The CLI (`main.rs`) is a thin layer over this
//! library; tests and benches use it directly.

pub mod aegir;
pub mod archive;
pub mod browse;
pub mod capture;
pub mod catalog;
pub mod cli;
pub mod crypto;
pub mod db;
pub mod diff;
pub mod doctor;
pub mod error;
pub mod fsutil;
pub mod gc;
pub mod hash;
pub mod hooks;
pub mod http;
pub mod leftovers;
pub mod migrate;
pub mod objects;
pub mod ping;
pub mod preflight;
pub mod progress;
pub mod reach;
pub mod read;
pub mod rehearse;
pub mod remote;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod shown;
pub mod site;
pub mod stats;
pub mod store;
pub mod tree;
pub mod updatelog;
pub mod verify;
pub mod webroot;

pub use error::{Error, Result};

/// The number of cores this process may use (2 when unknown), asked of the system once:
/// `std::thread::available_parallelism` reads the cgroup files on every call, which a
/// `snapshot --all` of 100 sites did 500 times.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}
