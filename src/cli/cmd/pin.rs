//! `sitesnap pin`, `unpin` and `forget`: snapshots by id.

use crate::catalog::SnapshotRecord;
use crate::cli::args::Ctx;
use crate::cli::output::{local_time, short};
use crate::error::Error;
use crate::retention::journal_holds;
use anyhow::Result;
use clap::Args;
use std::collections::HashMap;

/// Arguments of `pin` and `unpin`.
#[derive(Args, Debug)]
pub struct PinArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
}

/// Arguments of `forget`.
#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshot ids (unique prefixes are enough)
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Also forget pinned snapshots
    #[arg(long)]
    pub force: bool,
}

/// Pins (`pin` true) or unpins a snapshot.
pub fn pin(ctx: &Ctx, id: &str, pin: bool) -> Result<i32> {
    let repo = ctx.open_locked(if pin { "pin" } else { "unpin" })?;
    let s = repo.cat.resolve_snapshot(id)?;
    let what = if pin { "pinned" } else { "unpinned" };
    if s.pinned == pin {
        ctx.summary(format!(
            "snapshot {} of {} is already {what}",
            short(&s.id),
            s.site
        ));
        return Ok(0);
    }
    crate::objects::set_pinned(&repo, &s.id, pin)?;
    ctx.summary(format!(
        "{what} snapshot {} of {} ({})",
        short(&s.id),
        s.site,
        local_time(&s.time)
    ));
    Ok(0)
}

/// Why `s` may not be forgotten, if it may not.
fn refusal(s: &SnapshotRecord, holds: &HashMap<String, String>, force: bool) -> Option<Error> {
    if let Some(why) = holds.get(&s.id) {
        return Some(Error::Refused(format!(
            "snapshot {} is {why}; run `sitesnap recover` first",
            short(&s.id)
        )));
    }
    if s.pinned && !force {
        let label = s
            .label
            .as_deref()
            .map(|l| format!(" \"{l}\""))
            .unwrap_or_default();
        return Some(Error::Refused(format!(
            "snapshot {} of {} is pinned ({}{label}); `sitesnap unpin {}` first or add --force",
            short(&s.id),
            s.site,
            s.kind,
            short(&s.id)
        )));
    }
    None
}

/// Forgets snapshots by id; one bad or protected id changes nothing.
pub fn forget(ctx: &Ctx, a: ForgetArgs) -> Result<i32> {
    let repo = ctx.open_locked("forget")?;
    let holds = journal_holds(&repo.cat)?;
    let mut snaps: Vec<SnapshotRecord> = Vec::new();
    for id in &a.ids {
        let s = repo.cat.resolve_snapshot(id)?;
        if let Some(e) = refusal(&s, &holds, a.force) {
            return Err(e.into());
        }
        if !snaps.iter().any(|x| x.id == s.id) {
            snaps.push(s);
        }
    }
    let list: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
    crate::objects::forget_snapshots(&repo, &list)?;
    for s in &snaps {
        ctx.explain(format!(
            "forgot snapshot {} of {} ({}, {})",
            short(&s.id),
            s.site,
            local_time(&s.time),
            s.kind
        ));
    }
    ctx.summary(format!(
        "forgot {} snapshot(s); `{}` frees their data",
        snaps.len(),
        ctx.hint("gc")
    ));
    Ok(0)
}
