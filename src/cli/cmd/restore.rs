//! `sitesnap restore` and `sitesnap recover`.

use crate::cli::args::Ctx;
use crate::cli::output::{print_json, short};
use crate::error::Error;
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
    let out = restore::run(&repo, &snap, &plan)?;
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

/// Arguments of `recover`.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Undo this unfinished restore instead (journal id or a unique prefix): the site goes
    /// back to its pre-restore state
    #[arg(long, value_name = "JOURNAL")]
    pub abort: Option<String>,
}

/// Finishes or undoes interrupted restores, each site on its own; exit 1 if any of them could
/// not be finished or undone.
pub fn recover(ctx: &Ctx, a: RecoverArgs) -> Result<i32> {
    let repo = ctx.open_locked("recover")?;
    if let Some(j) = a.abort {
        println!("{}", restore::abort(&repo, &j)?);
        return Ok(0);
    }
    let done = restore::recover(&repo)?;
    if done.is_empty() {
        println!("no interrupted restore");
    }
    let mut code = 0;
    for r in done {
        match r.result {
            Ok(line) => println!("{line}"),
            Err(e) => {
                code = 1;
                eprintln!(
                    "sitesnap: error: journal {} ({}): {}",
                    r.journal,
                    r.site,
                    crate::cli::output::one_line(&anyhow::Error::from(e))
                );
            }
        }
    }
    Ok(code)
}
