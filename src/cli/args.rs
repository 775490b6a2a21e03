//! Arguments shared by several commands: the global options (accepted before or after the
//! command name), the retention flags, and the context a command runs in.

use crate::cli::config::Config;
use crate::cli::hint::Hinter;
use crate::crypto::Passphrase;
use crate::error::Error;
use crate::repo::{self, Repo};
use crate::retention::{self, Policy};
use anyhow::Result;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Options every command accepts, before or after its name (`sitesnap --json list` and
/// `sitesnap list --json` are the same).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Repository folder (default: $SITESNAP_REPO, else /var/lib/sitesnap for root, else ~/.local/share/sitesnap)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub repo: Option<PathBuf>,
    /// Print the result as JSON (commands that report something)
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Print what was done, even on success
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
    /// Print no success report or progress bar, even on a terminal (errors still go to stderr)
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,
    /// Seconds to wait for another sitesnap writer to finish (default: the config file's
    /// lock_wait, else 30)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "SECS"
    )]
    pub lock_wait: Option<u64>,
    /// Configuration file (TOML; default: $SITESNAP_CONFIG, else /etc/sitesnap.toml if it
    /// exists): repository, password_file, lock_wait, [snapshot] and [retention] defaults
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// File whose first line is the passphrase of an encrypted repository (default:
    /// $SITESNAP_PASSWORD_FILE, else asked on the terminal)
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,
}

/// What every command runs with: the repository path and the global options.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The repository folder.
    pub repo_path: PathBuf,
    /// `--json` was given.
    pub json: bool,
    /// `-v`: report success too.
    pub verbose: bool,
    /// `-q`: no success report, no progress bar.
    pub quiet: bool,
    /// How long to wait for the writer lock.
    pub lock_wait: Duration,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// Printed next-step commands, completed with `--repo`.
    pub hints: Hinter,
    /// The configuration file's settings and defaults.
    pub config: Config,
}

impl Ctx {
    /// The context for these global options and the configuration file; `commands` names
    /// every command (for hints). Flag, then environment, then the file, then the default.
    pub fn new(g: &GlobalArgs, commands: Vec<String>) -> crate::Result<Ctx> {
        let config = Config::load(g.config.as_deref())?;
        let from_env = std::env::var_os("SITESNAP_REPO").map(PathBuf::from);
        // Hints name the repository unless it is the default one (or the default config's).
        let from_config = config.repository.clone();
        let named = g
            .repo
            .clone()
            .or(from_env.clone())
            .or_else(|| from_config.clone().filter(|_| config.named));
        let repo_path = g
            .repo
            .clone()
            .or(from_env)
            .or(from_config)
            .unwrap_or_else(repo::default_path);
        Ok(Ctx {
            hints: Hinter::new(named.as_deref(), commands),
            repo_path,
            json: g.json,
            verbose: g.verbose,
            quiet: g.quiet,
            lock_wait: Duration::from_secs(g.lock_wait.or(config.lock_wait).unwrap_or(30)),
            password_file: g.password_file.clone(),
            config,
        })
    }

    /// The repository's passphrase: `--password-file`, else `$SITESNAP_PASSWORD_FILE`, else
    /// asked on the terminal (`confirm`: twice). Never taken from the command line itself.
    pub fn passphrase(&self, confirm: bool) -> Result<Passphrase> {
        let file = self
            .password_file
            .clone()
            .or_else(|| std::env::var_os("SITESNAP_PASSWORD_FILE").map(PathBuf::from))
            .or_else(|| self.config.password_file.clone());
        if let Some(f) = file {
            return Ok(Passphrase::from_file(&f)?);
        }
        prompt_passphrase("passphrase", confirm, &self.repo_path)
    }

    /// The passphrase if the repository is encrypted, else `None` (nothing asked).
    fn passphrase_if_needed(&self) -> Result<Option<Passphrase>> {
        if Repo::needs_passphrase(&self.repo_path)? {
            Ok(Some(self.passphrase(false)?))
        } else {
            Ok(None)
        }
    }

    /// Opens the repository to read (asking for its passphrase if it is encrypted).
    pub fn open(&self) -> Result<Repo> {
        let pass = self.passphrase_if_needed()?;
        Ok(Repo::open(&self.repo_path, pass.as_ref())?)
    }

    /// Rebuilds the catalogue (`repair catalog`), with the passphrase if it is encrypted.
    pub fn repair_catalog(&self) -> Result<(Repo, crate::objects::RepairReport)> {
        let pass = self.passphrase_if_needed()?;
        Ok(crate::objects::repair_catalog(
            &self.repo_path,
            self.lock_wait,
            pass.as_ref(),
        )?)
    }

    /// Opens the repository and takes the writer lock for `command`.
    pub fn open_locked(&self, command: &str) -> Result<Repo> {
        let mut r = self.open()?;
        r.lock(command, self.lock_wait)?;
        crate::fsutil::pausepoint("locked");
        // A repository made by an older sitesnap gets its store objects at its first write.
        crate::objects::ensure_upgraded(&r)?;
        Ok(r)
    }

    /// Opens to read for a dry run, else with the writer lock.
    pub fn open_for(&self, dry_run: bool, command: &str) -> Result<Repo> {
        if dry_run {
            self.open()
        } else {
            self.open_locked(command)
        }
    }

    /// Whether a success report is wanted: `-v`, or stdout is a terminal (and not `-q`).
    pub fn report_wanted(&self) -> bool {
        !self.quiet && (self.verbose || std::io::stdout().is_terminal())
    }

    /// The complete command line for `rest`, as printed in a hint.
    pub fn hint(&self, rest: &str) -> String {
        self.hints.cmd(rest)
    }

    /// A library message with its `sitesnap <command>` hints completed.
    pub fn complete(&self, text: &str) -> String {
        self.hints.complete(text)
    }

    /// Whether progress bars may be shown (they appear only on a terminal).
    pub fn progress(&self) -> bool {
        !self.quiet
    }

    /// Ends the progress bar and prints a writing command's one summary line: on a terminal
    /// or with `-v`; never with `-q`, nor with `--json` (which prints the result instead).
    pub fn summary(&self, line: impl std::fmt::Display) {
        crate::progress::finish();
        if self.report_wanted() && !self.json {
            println!("{line}");
        }
    }

    /// What `-v` explains before the summary (a plan, what was kept, a note): shown when the
    /// summary is.
    pub fn explain(&self, line: impl std::fmt::Display) {
        self.summary(line);
    }

    /// A warning on stderr (`sitesnap: warning: ...`), silenced by `-q`.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        crate::progress::finish();
        if !self.quiet {
            eprintln!("sitesnap: warning: {msg}");
        }
    }
}

/// Asks for a passphrase on the terminal (`what` names it in the prompt), twice when
/// `confirm`. Without a terminal: an error saying how to give it.
pub fn prompt_passphrase(what: &str, confirm: bool, repo: &std::path::Path) -> Result<Passphrase> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "repository {} is encrypted: give its {what} with --password-file FILE or \
             $SITESNAP_PASSWORD_FILE (no terminal to ask on)",
            repo.display()
        ))
        .into());
    }
    let first = Passphrase::new(rpassword::prompt_password(format!("{what}: "))?);
    if confirm {
        let again = Passphrase::new(rpassword::prompt_password(format!("{what} again: "))?);
        if again.matches(&first) {
            return Ok(first);
        }
        return Err(Error::Invalid("the two passphrases differ".into()).into());
    }
    Ok(first)
}

fn parse_span(s: &str) -> std::result::Result<retention::Span, String> {
    retention::Span::parse(s).map_err(|e| e.to_string())
}

/// Retention flags, shared by `prune`, `site add` and `site set`.
#[derive(Args, Debug, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot taken within DURATION of the site's newest one (e.g. 7d, 2w, 1y2m)
    #[arg(long, value_name = "DURATION", value_parser = parse_span)]
    pub keep_within: Option<retention::Span>,
}

impl KeepArgs {
    fn given(&self) -> bool {
        self.keep_last.is_some()
            || self.keep_hourly.is_some()
            || self.keep_daily.is_some()
            || self.keep_weekly.is_some()
            || self.keep_monthly.is_some()
            || self.keep_yearly.is_some()
            || self.keep_within.is_some()
    }

    /// The policy these flags describe; `None` when no flag was given.
    pub fn policy(&self) -> crate::Result<Option<Policy>> {
        if !self.given() {
            return Ok(None);
        }
        let p = Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: self.keep_within,
        };
        if p.is_empty() {
            return Err(Error::Usage(
                "this policy keeps nothing: give at least one --keep-* option above 0".into(),
            ));
        }
        Ok(Some(p))
    }
}

/// Where a site is and what belongs to it, for `site add`.
#[derive(Args, Debug, Clone, Default)]
pub struct SiteArgs {
    /// Platform root the site is on
    #[arg(long, value_name = "PATH")]
    pub platform: Option<PathBuf>,
    /// Site directory relative to the platform (default sites/<uri>)
    #[arg(long, value_name = "DIR")]
    pub site_dir: Option<String>,
    /// Database URL: sqlite:///abs/path, mysql://user:pass@host/name, postgres://...
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Read the database password from this file (first line) instead of the URL, so it
    /// never appears on a command line
    #[arg(long, value_name = "FILE", requires = "db")]
    pub db_password_file: Option<PathBuf>,
    /// A binding file (vhost, drush alias); repeat for several
    #[arg(long = "bind", value_name = "FILE")]
    pub bindings: Vec<PathBuf>,
    /// The platform's web root relative to it (web, docroot, ...; default: guessed)
    #[arg(long, value_name = "DIR")]
    pub web_root: Option<String>,
    /// A path (relative to the platform) that belongs to this site alone outside its site
    /// folder, such as private/<uri>; repeat for several
    #[arg(long = "extra-path", value_name = "DIR")]
    pub extra_paths: Vec<String>,
}
