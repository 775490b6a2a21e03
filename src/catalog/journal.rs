//! Restore journals: one row per restore, open until it is done or rolled back.

use super::kinds::JournalState;
use super::{Catalog, time_str};
use crate::error::Result;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};

/// A restore journal row.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    /// The journal id.
    pub id: String,
    /// The site being restored.
    pub site: String,
    /// The snapshot being restored.
    pub snapshot: String,
    /// The snapshot taken before the restore, once taken.
    pub pre_restore: Option<String>,
    /// The restore plan (JSON).
    pub plan: String,
    /// Steps done.
    pub step: u32,
    /// `open`, `done`, `rolled-back` or `rolling-back`.
    pub state: JournalState,
}

impl Catalog {
    /// The unfinished journal (open or being undone) of a site, if any.
    pub fn open_journal_for(&self, site: &str) -> Result<Option<JournalRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, site, snapshot, pre_restore, plan, step, state FROM journals
                 WHERE site = ?1 AND state IN ('open', 'rolling-back')",
                [site],
                Self::journal_from_row,
            )
            .optional()?)
    }

    /// The unfinished journal whose id is or starts with `id`.
    pub fn unfinished_journal(&self, id: &str) -> Result<Option<JournalRecord>> {
        let mut found: Vec<JournalRecord> = self
            .open_journals()?
            .into_iter()
            .filter(|j| !id.is_empty() && j.id.starts_with(id))
            .collect();
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// Marks a journal as being undone (it stays unfinished).
    pub fn mark_rolling_back(&self, id: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE journals SET state = ?2 WHERE id = ?1",
            params![id, JournalState::RollingBack],
        )?;
        Ok(())
    }

    /// The journal `id` (in any state), if this catalogue has it.
    pub fn journal(&self, id: &str) -> Result<Option<JournalRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, site, snapshot, pre_restore, plan, step, state FROM journals
                 WHERE id = ?1",
                [id],
                Self::journal_from_row,
            )
            .optional()?)
    }

    /// Every unfinished journal (open or being undone), oldest first.
    pub fn open_journals(&self) -> Result<Vec<JournalRecord>> {
        let mut st = self.conn.prepare(
            "SELECT id, site, snapshot, pre_restore, plan, step, state FROM journals
             WHERE state IN ('open', 'rolling-back') ORDER BY started",
        )?;
        let rows = st.query_map([], Self::journal_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn journal_from_row(r: &rusqlite::Row) -> rusqlite::Result<JournalRecord> {
        Ok(JournalRecord {
            id: r.get(0)?,
            site: r.get(1)?,
            snapshot: r.get(2)?,
            pre_restore: r.get(3)?,
            plan: r.get(4)?,
            step: r.get::<_, i64>(5)? as u32,
            state: r.get(6)?,
        })
    }

    /// Opens a journal.
    pub fn create_journal(&self, j: &JournalRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO journals (id, site, snapshot, pre_restore, plan, step, state, started)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
            params![
                j.id,
                j.site,
                j.snapshot,
                j.pre_restore,
                j.plan,
                j.step as i64,
                time_str(&Utc::now())
            ],
        )?;
        Ok(())
    }

    /// Records progress (and the pre-restore snapshot once known).
    pub fn update_journal(&self, id: &str, step: u32, pre_restore: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE journals SET step = ?2, pre_restore = coalesce(?3, pre_restore) WHERE id = ?1",
            params![id, step as i64, pre_restore],
        )?;
        Ok(())
    }

    /// Closes a journal in `state`.
    pub fn close_journal(&self, id: &str, state: JournalState) -> Result<()> {
        self.conn.execute(
            "UPDATE journals SET state = ?2, finished = ?3 WHERE id = ?1",
            params![id, state, time_str(&Utc::now())],
        )?;
        Ok(())
    }
}
