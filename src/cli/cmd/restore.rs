//! `sitesnap restore` and `sitesnap recover`.

use crate::cli::args::Ctx;
use crate::cli::output::{fmt_bytes, print_json, short};
use crate::error::Error;
use crate::hooks::{self, Event, HookCtx, Hooks};
use crate::remote;
use crate::repo::Repo;
use crate::restore::{self, PlatformAction, RestoreOpts};
use anyhow::{Context, Result};
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

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
    /// Leave a platform that changed since the snapshot (a hotfix on a shared platform) as it
    /// is now; the site folder, database and bindings still go back; the differences are listed
    #[arg(long, conflicts_with_all = ["repair_platform", "no_files"])]
    pub keep_platform: bool,
    /// Leave the database as it is
    #[arg(long)]
    pub no_db: bool,
    /// Restore only the database
    #[arg(long)]
    pub no_files: bool,
    /// Keep the replaced site folder (moved aside) instead of removing it at the end
    #[arg(long)]
    pub keep_old: bool,
    /// Write the snapshot's files and dump into this new (or empty) folder instead, never
    /// touching the live site: platform/, site/, extra/, bindings/<path>, database.sql
    #[arg(long, value_name = "DIR", conflicts_with_all = ["repair_platform", "keep_platform", "no_db", "no_files", "keep_old"])]
    pub target: Option<PathBuf>,
    /// With --target: only paths matching this glob (as `ls` shows them: site/files/*.pdf,
    /// platform/**/*.info, /etc/nginx/*, database); a matched folder brings everything below
    /// it; repeat for several
    #[arg(long, value_name = "GLOB", requires = "target")]
    pub include: Vec<String>,
    /// Fetch the snapshot from this remote first: only its manifest, blob lists and the packs
    /// it needs (kept as local objects). A folder without a repository becomes one under the
    /// remote's key (its passphrase is asked)
    #[arg(long, value_name = "NAME")]
    pub from: Option<String>,
    /// With --from: the host that took the snapshot (required for another server's snapshot)
    #[arg(long, value_name = "HOST", requires = "from")]
    pub host: Option<String>,
}

/// Plans a restore, shows it, asks (unless `--yes`) and runs it.
pub fn run(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    let opts = RestoreOpts {
        repair_platform: a.repair_platform,
        no_db: a.no_db,
        no_files: a.no_files,
        keep_old: a.keep_old,
        keep_platform: a.keep_platform,
    };
    if let Some(name) = &a.from {
        fetch_from(ctx, &a, name)?;
    }
    if let Some(t) = &a.target {
        return to_target(ctx, &a, t);
    }
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
            if drift {
                println!(
                    "to bring back the snapshot's platform files: {}",
                    repair_hint(ctx, &a)
                );
            }
        }
        return Ok(if drift { 1 } else { 0 });
    }
    if !ctx.json && (ctx.report_wanted() || !a.yes) {
        // Shown before the question, and on a terminal or with -v.
        println!("{}", plan.describe());
    }
    if drift {
        // run() refuses with the reason; the error names the complete command.
        if let Err(e) = restore::run(&repo, &snap, &plan) {
            let again = repair_hint(ctx, &a);
            return Err(Error::Refused(format!("{e}: {again}")).into());
        }
    }
    if !a.yes && !confirmed(ctx, &a)? {
        eprintln!("nothing changed");
        return Ok(1);
    }
    let mut out = run_with_hooks(&repo, &snap, &plan)?;
    out.undo = undo_hint(ctx, &out.pre_restore, plan.platform, a.yes);
    for w in &out.warnings {
        ctx.warn(w);
    }
    if ctx.json {
        print_json(&out)?;
        return Ok(0);
    }
    for k in &out.kept_old {
        ctx.explain(format!("kept the replaced copy at {}", k.display()));
    }
    let kept = match (&out.plan.platform, &out.plan.platform_diff) {
        (PlatformAction::Kept, Some(d)) => format!(
            " (platform kept as it is now: {} path(s) differ from the snapshot)",
            d.added.len() + d.removed.len() + d.changed.len()
        ),
        _ => String::new(),
    };
    ctx.summary(format!(
        "restored {} to snapshot {} on {}{kept}; the state before is pre-restore snapshot {}; undo with: {}",
        plan.site,
        short(&snap.id),
        plan.target_platform.display(),
        short(&out.pre_restore),
        out.undo
    ));
    Ok(0)
}

/// `restore --from NAME`: brings the snapshot from the remote into the repository (made first
/// under the remote's key when the folder holds none) unless it is already there.
fn fetch_from(ctx: &Ctx, a: &RestoreArgs, name: &str) -> Result<()> {
    let def = remote::find(&ctx.repo_path, name)?;
    let what = || format!("restore from remote '{}'", def.name);
    if !Repo::catalog_path(&ctx.repo_path).exists() {
        let backend = remote::open(&def).with_context(what)?;
        let pass = || {
            ctx.passphrase(false)
                .map_err(|e| Error::Invalid(format!("{e:#}")))
        };
        remote::join(
            &ctx.repo_path,
            &def.name,
            backend.as_ref(),
            ctx.lock_wait,
            &pass,
        )
        .with_context(what)?;
    }
    let repo = ctx.open_locked("restore --from")?;
    if repo.cat.resolve_snapshot(&a.id).is_ok() {
        return Ok(());
    }
    let backend = remote::open(&def).with_context(what)?;
    let r = remote::fetch_snapshot(&repo, &def.name, backend, &a.id, a.host.as_deref())
        .with_context(what)?;
    let line = format!(
        "fetched snapshot {} ({}, host {}) from {}: {} of {} pack(s), {}; {} of {} chunk(s) were already here",
        short(&r.snapshot),
        r.site,
        r.host,
        r.remote,
        r.fetched_packs,
        r.remote_packs,
        fmt_bytes(r.fetched_bytes),
        r.chunks_local,
        r.chunks
    );
    if ctx.json {
        eprintln!("{line}");
    } else if !ctx.quiet {
        println!("{line}");
    }
    if r.need_password {
        eprintln!(
            "sitesnap: notice: the database password of {} is not in the store; give it with `{}`",
            r.site,
            ctx.hint(&format!("site set {} --db URL", r.site))
        );
    }
    Ok(())
}

/// `restore --target`: into a new folder, read-only on the repository, the live site untouched.
fn to_target(ctx: &Ctx, a: &RestoreArgs, target: &Path) -> Result<i32> {
    let include = restore::Include::new(&a.include)?;
    let repo = ctx.open()?;
    let snap = repo.cat.resolve_snapshot(&a.id)?;
    let mut platforms = vec![snap.platform_path.clone()];
    if let Ok(site) = repo.cat.site(&snap.site) {
        platforms.push(site.platform.clone());
        if let Ok(now) = crate::site::locate(&repo.cat, &site) {
            platforms.push(now);
        }
    }
    let target = restore::check_target(target, &platforms)?;
    let out = restore::to_target(&repo, &snap, &target, &include, a.dry_run)?;
    if ctx.json {
        print_json(&out)?;
    } else if a.dry_run || ctx.verbose {
        out.paths.iter().for_each(|p| println!("{p}"));
    }
    if !ctx.json && (a.dry_run || ctx.report_wanted()) {
        let verb = if a.dry_run { "would write" } else { "wrote" };
        crate::progress::finish();
        println!(
            "{verb} {} file(s), {} of snapshot {} into {}{}",
            out.files,
            fmt_bytes(out.bytes),
            short(&snap.id),
            out.target.display(),
            if a.dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

/// The command that undoes a restore: the pre-restore snapshot, with `--repair-platform` when
/// this restore repaired the platform (the pre-restore snapshot holds the platform as it was),
/// and `--yes` when this one ran without asking.
fn undo_hint(ctx: &Ctx, pre: &str, platform: PlatformAction, yes: bool) -> String {
    let mut cmd = format!("restore {}", short(pre));
    if platform == PlatformAction::Repair {
        cmd.push_str(" --repair-platform");
    }
    if yes {
        cmd.push_str(" --yes");
    }
    ctx.hint(&cmd)
}

/// This restore again with `--repair-platform` (and `--yes` if it was given).
fn repair_hint(ctx: &Ctx, a: &RestoreArgs) -> String {
    let mut cmd = format!("restore {} --repair-platform", a.id);
    for (on, flag) in [
        (a.no_db, " --no-db"),
        (a.keep_old, " --keep-old"),
        (a.yes, " --yes"),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    ctx.hint(&cmd)
}

/// This restore again, confirmed: the command to run where there is no terminal to ask on.
fn with_yes(ctx: &Ctx, a: &RestoreArgs) -> String {
    let mut cmd = format!("restore {}", a.id);
    for (on, flag) in [
        (a.repair_platform, " --repair-platform"),
        (a.keep_platform, " --keep-platform"),
        (a.no_db, " --no-db"),
        (a.no_files, " --no-files"),
        (a.keep_old, " --keep-old"),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    ctx.hint(&format!("{cmd} --yes"))
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
            // The one line names the site and the snapshot, as a failed snapshot's does.
            Err(anyhow::Error::from(e).context(format!(
                "restore of site '{}' to snapshot {}",
                plan.site,
                short(&snap.id)
            )))
        }
    }
}

/// Asks on the terminal; refuses without one.
fn confirmed(ctx: &Ctx, a: &RestoreArgs) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "restore changes a live site and there is no terminal to ask on; confirm with: {}",
            with_yes(ctx, a)
        ))
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
        ctx.summary(ctx.complete(&restore::abort(&repo, &j)?));
        return Ok(0);
    }
    let done = restore::recover(&repo)?;
    if done.is_empty() {
        ctx.summary("no interrupted restore");
    }
    let mut code = 0;
    for r in done {
        match r.result {
            Ok(line) => ctx.summary(ctx.complete(&line)),
            Err(e) => {
                code = 1;
                let why = crate::cli::output::one_line(&anyhow::Error::from(e));
                eprintln!(
                    "{}journal {} ({}): {}",
                    crate::cli::ERROR_PREFIX,
                    r.journal,
                    r.site,
                    ctx.complete(&why)
                );
            }
        }
    }
    Ok(code)
}
