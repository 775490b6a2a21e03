//! `sitesnap rehearse`: clone a site onto the target platform under a temporary URI, run the
//! preflight, the update command and the URL check against the clone, print a report, remove
//! the clone. Also the rehearsal part of `recover`.

use crate::cli::args::Ctx;
use crate::cli::cmd::migrate::print_report;
use crate::cli::output::print_json;
use crate::rehearse::{self, RehearseOpts, Report};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `rehearse`.
#[derive(Args, Debug)]
pub struct RehearseArgs {
    /// The site's URI
    pub uri: String,
    /// Platform root the site would migrate to
    #[arg(long, value_name = "PLATFORM")]
    pub to: PathBuf,
    /// Command run against the clone, in the target platform (e.g. "drush @$SITESNAP_SITE
    /// updatedb -y"); SITESNAP_SITE is the clone's URI, SITESNAP_SITE_DIR its folder, and the
    /// scratch database is in db_type, db_name, db_user, db_passwd, db_host, db_port
    #[arg(long, value_name = "CMD")]
    pub update_cmd: Option<String>,
    /// URL fetched with the clone's URI as Host header; must answer 2xx/3xx
    #[arg(long, value_name = "URL")]
    pub check_url: Option<String>,
    /// Keep the clone's folder and database afterwards (remove them by hand)
    #[arg(long)]
    pub keep: bool,
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn print_update(u: &rehearse::UpdateRun) {
    let verdict = if u.ok { "passed" } else { "FAILED" };
    println!(
        "update:     `{}` {verdict} in {}",
        u.command,
        secs(u.seconds)
    );
    if let Some(e) = &u.error {
        println!("            {e}");
    }
    println!("            log: {}", u.log.display());
    for l in &u.tail {
        println!("    | {l}");
    }
}

fn print_http(h: &rehearse::HttpCheck) {
    let what = match (h.status, &h.error) {
        (Some(s), _) => format!("HTTP {s}"),
        (None, Some(e)) => format!("no answer: {e}"),
        (None, None) => "no answer".into(),
    };
    let verdict = if h.ok { "passed" } else { "FAILED" };
    println!(
        "check:      {} (Host: {}): {what}, {verdict}",
        h.url, h.host
    );
}

/// The report as text, fit to paste into a change ticket.
fn print_text(ctx: &Ctx, r: &Report) {
    println!("Rehearsal {} of {} on {}", r.id, r.site, r.to.display());
    println!("from:       {}", r.from.display());
    println!(
        "clone:      {} in {} ({})",
        r.clone_uri,
        r.clone_dir.display(),
        secs(r.clone_seconds)
    );
    if let Some(d) = &r.scratch_db {
        println!("database:   {d}");
    }
    if !r.repointed.is_empty() {
        println!("settings:   {} pointed at the copy", r.repointed.join(", "));
    }
    println!(
        "preflight:  {} enabled extension(s) checked, {} finding(s)",
        r.preflight.enabled,
        r.preflight.findings.len()
    );
    print_report(&r.preflight, false);
    match &r.update {
        Some(u) => print_update(u),
        None => println!("update:     none given (--update-cmd)"),
    }
    if let Some(h) = &r.http {
        print_http(h);
    }
    for c in &r.cleaned {
        println!("cleanup:    {c}");
    }
    for w in &r.warnings {
        eprintln!("sitesnap: warning: {}", ctx.complete(w));
    }
    if r.kept {
        println!(
            "kept:       {} (remove the folder and the database by hand)",
            r.clone_dir.display()
        );
    }
    println!("time:       {}", secs(r.seconds));
    let f = r.failures();
    if f.is_empty() {
        println!("result:     PASSED");
    } else {
        println!("result:     FAILED ({})", f.join("; "));
    }
}

/// Rehearses; exit 1 if the rehearsal failed (the report says why).
pub fn run(ctx: &Ctx, a: RehearseArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let opts = RehearseOpts {
        update_cmd: a.update_cmd,
        check_url: a.check_url,
        keep: a.keep,
    };
    let r = rehearse::rehearse(&repo, &a.uri, &a.to, &opts)?;
    if ctx.json {
        print_json(&r)?;
    } else {
        print_text(ctx, &r);
    }
    Ok(if r.passed { 0 } else { 1 })
}

/// `recover`: interrupted restores first, then what killed rehearsals left.
pub fn recover(ctx: &Ctx, a: crate::cli::cmd::restore::RecoverArgs) -> Result<i32> {
    let aborting = a.abort.is_some();
    let code = crate::cli::cmd::restore::recover(ctx, a)?;
    if aborting {
        return Ok(code);
    }
    let repo = ctx.open_locked("recover")?;
    let (done, failed) = rehearse::clean_stale(&repo)?;
    for l in &done {
        println!("{l}");
    }
    for f in &failed {
        eprintln!("{}{}", crate::cli::ERROR_PREFIX, ctx.complete(f));
    }
    Ok(if failed.is_empty() { code } else { 1 })
}
