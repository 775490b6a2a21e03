//! `sitesnap prune`: forget snapshots by retention policy. The library plans
//! ([`plan_prune`]); this prints the plan (a table, or `--json`) and, unless `--dry-run`,
//! carries it out.

use crate::cli::args::{Ctx, KeepArgs};
use crate::cli::output::print_json;
use crate::remote::{self, Hosts, RemotePruneRequest};
use crate::retention::{PruneEntry, PrunePlan, PruneRequest, SitePlan, execute_prune, plan_prune};
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

/// Arguments of `prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only this site (default: every site)
    #[arg(long, value_name = "URI")]
    pub site: Option<String>,
    /// Show what would be kept and removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Prune a remote's snapshots instead, with the --keep-* flags given (remote retention
    /// may differ from local), under the remote's exclusive lock; `gc --remote` frees the data
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// With --remote: this host's snapshots (default: the host running prune)
    #[arg(
        long,
        value_name = "HOST",
        requires = "remote",
        conflicts_with = "all_hosts"
    )]
    pub host: Option<String>,
    /// With --remote: every host's snapshots (each host's sites pruned on their own)
    #[arg(long, requires = "remote")]
    pub all_hosts: bool,
    /// With --remote: remove the remote's conflicting locks instead of refusing
    #[arg(long, requires = "remote")]
    pub break_lock: bool,
}

/// The `--json` answer.
#[derive(Serialize)]
struct PruneJson<'a> {
    dry_run: bool,
    removed: usize,
    sites: &'a [SitePlan],
}

/// Plans, shows and (unless a dry run) applies the retention policies.
pub fn run(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if let Some(name) = &a.remote {
        return remote_prune(ctx, &a, name);
    }
    let req = PruneRequest {
        policy: a.keep.policy()?,
        site: a.site.clone(),
        default_policy: ctx.config.retention.policy()?,
    };
    let repo = ctx.open_for(a.dry_run, "prune")?;
    let plan = plan_prune(&repo.cat, &req, crate::fsutil::now(), &chrono::Local)?;
    if !a.dry_run {
        let n = plan.remove_count() as u64;
        crate::progress::phase_of("prune: forgetting", 0, n, "snapshots");
        execute_prune(&repo, &plan)?;
        crate::progress::add(0, n);
    }
    crate::progress::finish();
    if ctx.json {
        let out = PruneJson {
            dry_run: a.dry_run,
            removed: plan.remove_count(),
            sites: &plan.sites,
        };
        // Through a `Value`: its keys come out sorted, as they always have.
        print_json(&serde_json::to_value(&out)?)?;
    } else if a.dry_run {
        print_plan(&|l| println!("{l}"), ctx, &plan, true);
    } else {
        print_plan(&|l| ctx.explain(l), ctx, &plan, false);
    }
    if !plan.explicit_policy && !plan.any_policy() && !plan.sites.is_empty() && !ctx.quiet {
        let which = if a.site.is_some() {
            "this site"
        } else {
            "any site"
        };
        eprintln!(
            "sitesnap: notice: no retention policy is stored for {which}; nothing pruned (store one with `{}` or give --keep-* flags)",
            ctx.hint("site set <uri> --keep-daily 7 ...")
        );
    }
    Ok(0)
}

/// `prune --remote NAME`.
fn remote_prune(ctx: &Ctx, a: &PruneArgs, name: &str) -> Result<i32> {
    let Some(policy) = a.keep.policy()? else {
        return Err(crate::Error::Usage(
            "prune --remote needs its retention as --keep-* flags (e.g. --keep-monthly 12)".into(),
        )
        .into());
    };
    let repo = ctx.open()?;
    let def = remote::find(&ctx.repo_path, name)?;
    let what = || format!("prune on remote '{}'", def.name);
    let backend = remote::open(&def).with_context(what)?;
    let req = RemotePruneRequest {
        policy,
        hosts: Hosts::from_args(a.host.as_deref(), a.all_hosts, Hosts::This),
        site: a.site.clone(),
        dry_run: a.dry_run,
        break_lock: a.break_lock,
    };
    let now = crate::fsutil::now();
    let r =
        remote::prune(&repo, &def.name, &backend, &req, now, &chrono::Local).with_context(what)?;
    if ctx.json {
        print_json(&r)?;
        return Ok(0);
    }
    if a.dry_run || ctx.report_wanted() {
        for g in &r.groups {
            println!("{} on {}:", g.site, g.host);
            for (tag, list) in [("keep", &g.keep), ("remove", &g.remove)] {
                for e in list {
                    let reasons: Vec<String> = e.reasons.iter().map(ToString::to_string).collect();
                    println!(
                        "  {tag:<6}  {}  {}  {}",
                        &e.id[..8],
                        e.time,
                        reasons.join(", ")
                    );
                }
            }
        }
        let verb = if a.dry_run { "would remove" } else { "removed" };
        println!(
            "remote {}: {verb} {} snapshot(s); `{}` frees their data",
            r.remote,
            r.removed,
            ctx.hint(&format!("gc --remote {}", r.remote))
        );
    }
    for u in &r.unreadable {
        eprintln!(
            "sitesnap: warning: manifest {u} on remote '{}' cannot be read; left alone",
            r.remote
        );
    }
    Ok(0)
}

/// Prints the plan line by line through `out` (stdout for a dry run; else shown when the
/// summary is); its last line is the summary.
fn print_plan(out: &dyn Fn(String), ctx: &Ctx, plan: &PrunePlan, dry_run: bool) {
    for s in &plan.sites {
        print_site(out, ctx, s);
    }
    let n = plan.remove_count();
    if dry_run {
        out(format!(
            "would remove {n} snapshot(s) (dry run: nothing changed)"
        ));
    } else {
        out(format!(
            "removed {n} snapshot(s); `{}` frees their data",
            ctx.hint("gc")
        ));
    }
}

fn print_site(out: &dyn Fn(String), ctx: &Ctx, s: &SitePlan) {
    let site = &s.site;
    let Some(policy) = &s.policy else {
        out(format!(
            "{site}: no retention policy stored; nothing pruned (set one: {} --keep-daily 7 ...)",
            ctx.hint(&format!("site set {site}"))
        ));
        return;
    };
    out(format!("{site}: {policy}"));
    for (tag, list) in [("keep", &s.keep), ("remove", &s.remove)] {
        for e in list {
            out(entry_line(tag, e));
        }
    }
}

fn entry_line(tag: &str, e: &PruneEntry) -> String {
    let reasons: Vec<String> = e.reasons.iter().map(ToString::to_string).collect();
    let label = e
        .label
        .as_deref()
        .map(|l| format!("  [{l}]"))
        .unwrap_or_default();
    format!(
        "  {tag:<6}  {}  {}  {:<11}  {}{label}",
        e.short_id,
        e.time_local,
        e.kind,
        reasons.join(", ")
    )
}
