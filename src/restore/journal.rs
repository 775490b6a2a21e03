//! The restore journal's states and steps. A journal row is opened before anything is
//! prepared, records the number of the last step completed, and is closed as done or rolled
//! back; `recover` finishes or undoes every journal still open. The catalogue stores the state
//! as its string (`open`, `done`, `rolled-back`, `rolling-back`).

/// Journal steps, in order. `journals.step` holds the number of the last one completed.
pub(super) const STEP_PREPARED: u32 = 1;
pub(super) const STEP_PLATFORM: u32 = 2;
pub(super) const STEP_SITE: u32 = 3;
pub(super) const STEP_DB: u32 = 4;
pub(super) const STEP_BINDINGS: u32 = 5;

pub use crate::catalog::JournalState;

/// A journaled step that changes the live site, as named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Platform,
    SiteFolder,
    Database,
    Bindings,
}

impl Step {
    /// The journal number recorded once this step is complete.
    pub(super) fn number(self) -> u32 {
        match self {
            Step::Platform => STEP_PLATFORM,
            Step::SiteFolder => STEP_SITE,
            Step::Database => STEP_DB,
            Step::Bindings => STEP_BINDINGS,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Platform => "platform",
            Step::SiteFolder => "site folder",
            Step::Database => "database",
            Step::Bindings => "binding files",
        })
    }
}
