//! `sitesnap hooks set|unset|list`: commands run at points of a site's life.

use crate::cli::args::Ctx;
use crate::cli::output::print_json;
use crate::hooks::{Event, Hooks};
use anyhow::Result;
use clap::Subcommand;

/// The `hooks` subcommands.
#[derive(Subcommand, Debug)]
pub enum HooksCmd {
    /// Set the command for an event (before-snapshot, after-restore, after-migrate,
    /// on-failure); it gets SITESNAP_SITE, SITESNAP_PLATFORM, SITESNAP_SNAPSHOT, SITESNAP_EVENT
    Set {
        /// The event: before-snapshot, after-restore, after-migrate or on-failure
        event: Event,
        /// Shell command (no secrets: it is stored in clear)
        command: String,
        /// Only for this site (default: every site without its own)
        #[arg(long, value_name = "URI")]
        site: Option<String>,
    },
    /// Remove the command for an event
    Unset {
        /// The event: before-snapshot, after-restore, after-migrate or on-failure
        event: Event,
        /// Only this site's hook (default: the global one)
        #[arg(long, value_name = "URI")]
        site: Option<String>,
    },
    /// Set the monitoring ping URL used by snapshot, checkpoint and prune when they get no
    /// --ping (Healthchecks style: URL/start, URL on success, URL/fail with the reason)
    Ping {
        /// The ping URL (e.g. https://hc-ping.com/<uuid>)
        #[arg(required_unless_present = "unset")]
        url: Option<String>,
        /// Remove the stored ping URL
        #[arg(long, conflicts_with = "url")]
        unset: bool,
    },
    /// List the hooks
    List,
}

/// Runs a `hooks` subcommand.
pub fn run(ctx: &Ctx, c: HooksCmd) -> Result<i32> {
    match c {
        HooksCmd::Set {
            event,
            command,
            site,
        } => change(ctx, site, event, Some(command)),
        HooksCmd::Unset { event, site } => change(ctx, site, event, None),
        HooksCmd::Ping { url, .. } => set_ping(ctx, url),
        HooksCmd::List => list(ctx),
    }
}

fn set_ping(ctx: &Ctx, url: Option<String>) -> Result<i32> {
    if let Some(u) = &url {
        crate::cli::cmd::ping::check_url(u)?;
    }
    let repo = ctx.open_locked("hooks")?;
    let mut h = Hooks::load(&repo)?;
    h.ping = url;
    h.save(&repo)?;
    Ok(0)
}

fn change(ctx: &Ctx, site: Option<String>, event: Event, cmd: Option<String>) -> Result<i32> {
    let repo = ctx.open_locked("hooks")?;
    if let Some(u) = &site {
        repo.cat.site(u)?;
    }
    let mut h = Hooks::load(&repo)?;
    h.set(site.as_deref(), event, cmd);
    h.save(&repo)?;
    Ok(0)
}

fn list(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    let h = Hooks::load(&repo)?;
    if ctx.json {
        print_json(&h)?;
        return Ok(0);
    }
    for (e, c) in &h.global {
        println!("{:<16} {:<28} {c}", e.name(), "(every site)");
    }
    for (s, m) in &h.sites {
        for (e, c) in m {
            println!("{:<16} {s:<28} {c}", e.name());
        }
    }
    if let Some(p) = &h.ping {
        println!(
            "{:<16} {:<28} {}",
            "ping",
            "(every site)",
            crate::ping::shown(p)
        );
    }
    Ok(0)
}
