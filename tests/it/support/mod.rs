//! Shared test harness, split by concern. Every test module does `use crate::support::*;`.
#![allow(dead_code)]

pub mod db;
pub mod fixtures;
pub mod garage;
pub mod http;
pub mod procs;
pub mod readback;
pub mod repo;
pub mod trees;
pub mod world;

pub use db::*;
pub use fixtures::*;
pub use garage::*;
pub use http::*;
pub use procs::*;
pub use readback::*;
pub use repo::*;
pub use trees::*;
pub use world::*;
