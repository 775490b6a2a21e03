//! The restore journal's states and steps. A journal row is opened before anything is
//! prepared, records the number of the last step completed, and is closed as done or rolled
//! back; `recover` finishes or undoes every journal still open. The catalogue stores the state
//! as its string (`open`, `done`, `rolled-back`).

use crate::error::{Error, Result};

/// Journal steps, in order. `journals.step` holds the number of the last one completed.
pub(super) const STEP_PREPARED: u32 = 1;
pub(super) const STEP_PLATFORM: u32 = 2;
pub(super) const STEP_SITE: u32 = 3;
pub(super) const STEP_DB: u32 = 4;
pub(super) const STEP_BINDINGS: u32 = 5;

/// Where a restore journal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// The restore is under way (or was interrupted): `recover` must finish or undo it.
    Open,
    /// The restore finished.
    Done,
    /// The restore was undone before it changed the live site.
    RolledBack,
}

impl JournalState {
    /// The state as the catalogue stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalState::Open => "open",
            JournalState::Done => "done",
            JournalState::RolledBack => "rolled-back",
        }
    }

    /// The state from its stored string.
    pub fn parse(s: &str) -> Result<JournalState> {
        match s {
            "open" => Ok(JournalState::Open),
            "done" => Ok(JournalState::Done),
            "rolled-back" => Ok(JournalState::RolledBack),
            other => Err(Error::Corrupt(format!("unknown journal state '{other}'"))),
        }
    }
}

impl std::fmt::Display for JournalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_their_stored_strings() {
        for (st, s) in [
            (JournalState::Open, "open"),
            (JournalState::Done, "done"),
            (JournalState::RolledBack, "rolled-back"),
        ] {
            assert_eq!(st.as_str(), s);
            assert_eq!(JournalState::parse(s).unwrap(), st);
        }
        assert!(JournalState::parse("finished").is_err());
    }
}
