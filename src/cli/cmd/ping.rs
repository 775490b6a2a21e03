//! `--ping URL` on `snapshot`, `checkpoint` and `prune` (else the URL stored with `hooks
//! ping`): a start ping, then a success or fail ping with the reason. A failed ping is a
//! warning on stderr and never changes the command's outcome.

use crate::cli::args::Ctx;
use crate::cli::cmd::{prune, snapshot};
use crate::error::Error;
use crate::hooks::Hooks;
use crate::ping::{self, Signal};
use anyhow::Result;
use clap::Args;

/// The `--ping` option.
#[derive(Args, Debug, Clone, Default)]
pub struct PingArg {
    /// Monitoring URL pinged at the start (URL/start), on success (URL) and on failure
    /// (URL/fail, the reason in the body), Healthchecks style; default: `hooks ping`'s URL
    #[arg(long, value_name = "URL")]
    pub ping: Option<String>,
}

/// `snapshot` with `--ping`.
#[derive(Args, Debug)]
pub struct SnapshotCmd {
    #[command(flatten)]
    pub args: snapshot::SnapshotArgs,
    #[command(flatten)]
    pub ping: PingArg,
}

/// `checkpoint` with `--ping`.
#[derive(Args, Debug)]
pub struct CheckpointCmd {
    #[command(flatten)]
    pub args: snapshot::CheckpointArgs,
    #[command(flatten)]
    pub ping: PingArg,
}

/// `prune` with `--ping`.
#[derive(Args, Debug)]
pub struct PruneCmd {
    #[command(flatten)]
    pub args: prune::PruneArgs,
    #[command(flatten)]
    pub ping: PingArg,
}

/// Refuses what is not an http(s) URL (one line; nothing stored).
pub fn check_url(u: &str) -> Result<()> {
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => Ok(()),
        _ => Err(Error::Usage(format!(
            "ping URL '{}': expected http(s)://host/…",
            ping::shown(u)
        ))
        .into()),
    }
}

/// The URL to ping: `--ping`, else the stored one (none when the hooks file cannot be read:
/// the command itself will say what is wrong with the repository).
fn target(ctx: &Ctx, arg: &PingArg) -> Result<Option<String>> {
    if let Some(u) = &arg.ping {
        check_url(u)?;
        return Ok(Some(u.clone()));
    }
    Ok(Hooks::load_at(&ctx.repo_path).ok().and_then(|h| h.ping))
}

fn warn(w: Option<String>) {
    if let Some(w) = w {
        eprintln!("sitesnap: warning: {w}");
    }
}

/// Runs `f` (the command `name`) between a start ping and a success or fail ping.
pub fn around(
    ctx: &Ctx,
    name: &str,
    arg: &PingArg,
    f: impl FnOnce() -> Result<i32>,
) -> Result<i32> {
    let Some(url) = target(ctx, arg)? else {
        return f();
    };
    warn(ping::send(&url, Signal::Start, ""));
    let res = f();
    match &res {
        Ok(0) => warn(ping::send(&url, Signal::Success, "")),
        Ok(code) => warn(ping::send(
            &url,
            Signal::Fail,
            &format!("sitesnap {name} failed (exit code {code}); see its error output"),
        )),
        Err(e) => warn(ping::send(
            &url,
            Signal::Fail,
            &format!(
                "sitesnap {name} failed: {}",
                crate::cli::output::one_line(e)
            ),
        )),
    }
    res
}
