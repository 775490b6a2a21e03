//! `sitesnap restore` and `sitesnap recover`.

use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short};
use crate::error::Error;
use crate::hooks::{self, Event, HookCtx, Hooks};
use crate::restore::{self, PlatformAction, RestoreOpts};
use anyhow::Result;
use clap::Args;
use std::io::IsTerminal;

/// Arguments of `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot id (a unique prefix is enough)
    pub id: String,
    /// Print the plan and stop
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Bring a platform that changed since the snapshot back to the snapshot's files
    /// (other sites on that platform are affected)
    #[arg(long)]
    pub repair_platform: bool,
    /// Leave the database as it is
    #[arg(long)]
    pub no_db: bool,
    /// Restore only the database
    #[arg(long)]
    pub no_files: bool,
    /// Keep the replaced site folder (moved aside) instead of removing it at the end
    #[arg(long)]
    pub keep_old: bool,
}

/// Plans a restore, shows it, asks (unless `--yes`) and runs it.
pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    let opts = RestoreOpts {
        repair_platform: a.repair_platform,
        no_db: a.no_db,
        no_files: a.no_files,
        keep_old: a.keep_old,
    };
    let repo = ctx.open_for(a.dry_run, "restore")?;
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let (plan, _) = restore::plan(&repo, &snap, &opts)?;
    let drift = plan.platform == PlatformAction::Drift;
    if a.dry_run {
        if ctx.json {
            print_json(&plan)?;
        } else {
            println!("{}", plan.describe());
            println!("(dry run: nothing changed)");
        }
        return Ok(if drift { 1 } else { 0 });
    }
    if !ctx.json {
        println!("{}", plan.describe());
    }
    if drift {
        // run() refuses with the reason.
        restore::run(&repo, &snap, &plan)?;
    }
    if !a.yes && !confirmed()? {
        eprintln!("nothing changed");
        return Ok(1);
    }
    let out = run_with_hooks(&repo, &snap, &plan)?;
    if ctx.json {
        print_json(&out)?;
        return Ok(0);
    }
    println!(
        "restored {} to snapshot {} on {}",
        plan.site,
        short(&snap.id),
        plan.target_platform.display()
    );
    for k in &out.kept_old {
        println!("kept the replaced copy at {}", k.display());
    }
    println!(
        "current state saved as pre-restore snapshot {}; undo with: {}",
        short(&out.pre_restore),
        out.undo
    );
    Ok(0)
}

/// Restores, then runs the `after-restore` hook (a failure is reported; the restore stays), or
/// the `on-failure` hook if the restore failed.
fn run_with_hooks(
    repo: &crate::repo::Repo,
    snap: &crate::catalog::SnapshotRecord,
    plan: &restore::Plan,
) -> Result<restore::Outcome> {
    let hooks = Hooks::load(repo)?;
    let hook = |event| HookCtx {
        event,
        site: &plan.site,
        platform: &plan.target_platform,
        snapshot: Some(&snap.id),
        error: None,
    };
    match restore::run(repo, snap, plan) {
        Ok(o) => {
            if let Err(he) = hooks::run(&hooks, &hook(Event::AfterRestore)) {
                eprintln!("sitesnap: warning: the restore succeeded but {he}");
            }
            Ok(o)
        }
        Err(e) => {
            let why = e.to_string();
            let ctx = HookCtx {
                error: Some(&why),
                ..hook(Event::OnFailure)
            };
            if let Err(he) = hooks::run(&hooks, &ctx) {
                eprintln!("sitesnap: warning: {he}");
            }
            Err(e.into())
        }
    }
}

/// Asks on the terminal; refuses without one.
fn confirmed() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(
            "restore changes a live site: add --yes to confirm (no terminal to ask on)".into(),
        )
        .into());
    }
    eprint!("Proceed? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Finishes or undoes interrupted restores.
pub fn recover(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open_locked("recover")?;
    let lines = restore::recover(&repo)?;
    if lines.is_empty() {
        println!("no interrupted restore");
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}
