//! The restore journal's states and steps. A journal row is opened before anything is
//! prepared, records the number of the last step completed, and is closed as done or rolled
//! back; `recover` finishes or undoes every journal still open. The catalogue stores the state
//! as its string (`open`, `done`, `rolled-back`).

/// Journal steps, in order. `journals.step` holds the number of the last one completed.
pub(super) const STEP_PREPARED: u32 = 1;
pub(super) const STEP_PLATFORM: u32 = 2;
pub(super) const STEP_SITE: u32 = 3;
pub(super) const STEP_DB: u32 = 4;
pub(super) const STEP_BINDINGS: u32 = 5;

pub use crate::catalog::JournalState;
