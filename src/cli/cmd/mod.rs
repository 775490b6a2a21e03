//! One module per command: its arguments (clap) and its run function, which calls the library
//! and prints the result as text or `--json`.

pub mod aegir;
pub mod browse;
pub mod diff;
pub mod docs;
pub mod doctor;
pub mod export;
pub mod gc;
pub mod hooks;
pub mod init;
pub mod key;
pub mod list;
pub mod migrate;
pub mod pin;
pub mod ping;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rehearse;
pub mod remote;
pub mod repair;
pub mod restore;
pub mod site;
pub mod snapshot;
pub mod stats;
pub mod verify;
