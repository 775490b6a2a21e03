//! The one integration-test binary: one module per area, sharing `support` (compiled once).

mod support;

mod aegir;
mod aegir_discover;
mod bad_input;
mod cache_tables;
mod composer;
mod crash;
mod cron;
mod db;
mod diff;
mod doctor;
mod drush_hook;
mod encryption;
mod export;
mod gc;
mod hardening;
mod hooks;
mod lock;
mod migrate;
mod ops_cli;
mod preflight;
mod remote;
mod repair;
mod restore;
mod retention;
mod site_set;
mod smoke;
mod snapshot;
mod solid;
mod ux;
mod verify;
