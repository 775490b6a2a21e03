//! Hooks: shell commands run at points of a site's life (`before-snapshot`, `after-restore`,
//! `after-migrate`, `on-failure`), per site or for every site (a site's own hook replaces the
//! global one). They are kept in `<repo>/hooks.json` (mode 0600) and get `SITESNAP_SITE`,
//! `SITESNAP_PLATFORM`, `SITESNAP_SNAPSHOT` and `SITESNAP_EVENT` in their environment (plus
//! `SITESNAP_ERROR` for `on-failure`); nothing is put on their command line.

use crate::error::{Error, Result};
use crate::fsutil;
use crate::repo::Repo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// Before a snapshot is taken; a failure stops the snapshot.
    BeforeSnapshot,
    /// After a restore succeeded; a failure is reported, the restore stays.
    AfterRestore,
    /// After a migration succeeded; a failure is reported, the migration stays.
    AfterMigrate,
    /// After a snapshot, restore or migration failed.
    OnFailure,
}

impl Event {
    /// Every event, in order.
    pub const ALL: [Event; 4] = [
        Event::BeforeSnapshot,
        Event::AfterRestore,
        Event::AfterMigrate,
        Event::OnFailure,
    ];

    /// Its name (`before-snapshot`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Event::BeforeSnapshot => "before-snapshot",
            Event::AfterRestore => "after-restore",
            Event::AfterMigrate => "after-migrate",
            Event::OnFailure => "on-failure",
        }
    }
}

impl std::str::FromStr for Event {
    type Err = Error;
    fn from_str(s: &str) -> Result<Event> {
        Event::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown hook event '{s}' (before-snapshot, after-restore, after-migrate, on-failure)"
                ))
            })
    }
}

/// The hooks of a repository.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hooks {
    /// Hooks for every site.
    #[serde(default)]
    pub global: BTreeMap<Event, String>,
    /// Each site's own hooks.
    #[serde(default)]
    pub sites: BTreeMap<String, BTreeMap<Event, String>>,
    /// Monitoring ping URL (Healthchecks style) for snapshot, checkpoint and prune runs that
    /// do not give `--ping`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping: Option<String>,
}

fn path(repo: &Repo) -> PathBuf {
    repo.root.join("hooks.json")
}

impl Hooks {
    /// The repository's hooks (none if it has no hooks file).
    pub fn load(repo: &Repo) -> Result<Hooks> {
        Hooks::load_at(&repo.root)
    }

    /// The hooks of the repository at `root`, read without opening it (no passphrase).
    pub fn load_at(root: &Path) -> Result<Hooks> {
        let p = root.join("hooks.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Hooks::default()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Writes the hooks file (atomically, mode 0600).
    pub fn save(&self, repo: &Repo) -> Result<()> {
        let b = serde_json::to_vec_pretty(self).expect("hooks serialize");
        fsutil::write_atomic(&path(repo), &b, 0o600)
    }

    /// Sets (`Some`) or removes (`None`) a hook, for `site` or for every site.
    pub fn set(&mut self, site: Option<&str>, event: Event, cmd: Option<String>) {
        let map = match site {
            Some(s) => self.sites.entry(s.to_string()).or_default(),
            None => &mut self.global,
        };
        match cmd {
            Some(c) => {
                map.insert(event, c);
            }
            None => {
                map.remove(&event);
            }
        }
        self.sites.retain(|_, m| !m.is_empty());
    }

    /// The command for `event` of `site`: its own, else the global one.
    pub fn command(&self, site: &str, event: Event) -> Option<&str> {
        self.sites
            .get(site)
            .and_then(|m| m.get(&event))
            .or_else(|| self.global.get(&event))
            .map(String::as_str)
    }
}

/// What a hook is told.
#[derive(Debug, Clone)]
pub struct HookCtx<'a> {
    pub event: Event,
    pub site: &'a str,
    pub platform: &'a Path,
    pub snapshot: Option<&'a str>,
    /// Why it failed, for `on-failure`.
    pub error: Option<&'a str>,
}

/// Runs the hook for `ctx.event` of `ctx.site`, if there is one, in the platform folder.
/// An error names the event, the command and its exit status.
pub fn run(hooks: &Hooks, ctx: &HookCtx) -> Result<()> {
    let Some(cmd) = hooks.command(ctx.site, ctx.event) else {
        return Ok(());
    };
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd);
    // Its output goes to stderr: stdout stays the command's own (`--json`).
    c.stdout(std::process::Stdio::from(std::io::stderr()));
    if ctx.platform.is_dir() {
        c.current_dir(ctx.platform);
    }
    c.env("SITESNAP_SITE", ctx.site)
        .env("SITESNAP_PLATFORM", ctx.platform)
        .env("SITESNAP_SNAPSHOT", ctx.snapshot.unwrap_or(""))
        .env("SITESNAP_EVENT", ctx.event.name());
    if let Some(e) = ctx.error {
        c.env("SITESNAP_ERROR", e);
    }
    let st = c.status().map_err(|e| {
        Error::Invalid(format!(
            "{} hook '{cmd}' could not start: {e}",
            ctx.event.name()
        ))
    })?;
    if !st.success() {
        return Err(Error::Invalid(format!(
            "{} hook '{cmd}' of site '{}' failed ({st})",
            ctx.event.name(),
            ctx.site
        )));
    }
    Ok(())
}
