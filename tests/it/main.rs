//! The one integration-test binary: one module per area, sharing `support` (compiled once).

mod support;

mod aegir;
mod bad_input;
mod composer;
mod crash;
mod cron;
mod db;
mod doctor;
mod export;
mod gc;
mod hardening;
mod lock;
mod migrate;
mod ops_cli;
mod remote;
mod repair;
mod restore;
mod retention;
mod site_set;
mod smoke;
mod snapshot;
mod verify;
