//! The configuration file (TOML): `--config FILE`, else `$SITESNAP_CONFIG`, else
//! `/etc/sitesnap.toml` when it exists. It gives the repository, the password file, the lock
//! wait and defaults (snapshot kind, remote to push to, metrics file, a retention policy for
//! sites that store none), so a cron line is just `sitesnap snapshot --all`. A flag beats the
//! environment, which beats the file, which beats the built-in default. A bad file is one error
//! line naming the file, the line and the key.

use crate::error::Error;
use crate::retention::{Policy, Span};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file read when neither `--config` nor `$SITESNAP_CONFIG` names one.
pub const DEFAULT_PATH: &str = "/etc/sitesnap.toml";

/// What the configuration file says (everything optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The repository folder (`--repo`).
    pub repository: Option<PathBuf>,
    /// The passphrase file of an encrypted repository (`--password-file`).
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for another writer (`--lock-wait`).
    pub lock_wait: Option<u64>,
    /// Defaults of `snapshot`.
    #[serde(default)]
    pub snapshot: SnapshotDefaults,
    /// The retention policy `prune` applies to sites that store none.
    #[serde(default)]
    pub retention: RetentionDefaults,
    /// Where the configuration was read from (`None`: no file).
    #[serde(skip)]
    pub file: Option<PathBuf>,
    /// It was named (`--config`, `$SITESNAP_CONFIG`), not the default file.
    #[serde(skip)]
    pub named: bool,
}

/// `[snapshot]`: defaults of `snapshot`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotDefaults {
    /// `manual` or `scheduled` (`--kind`).
    pub kind: Option<String>,
    /// The remote to push to after the snapshots (`--push`).
    pub push: Option<String>,
    /// The Prometheus textfile to write (`--metrics`).
    pub metrics: Option<PathBuf>,
}

/// `[retention]`: the policy for sites that store none, with `prune`'s flag names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDefaults {
    /// `--keep-last`.
    pub keep_last: Option<u32>,
    /// `--keep-hourly`.
    pub keep_hourly: Option<u32>,
    /// `--keep-daily`.
    pub keep_daily: Option<u32>,
    /// `--keep-weekly`.
    pub keep_weekly: Option<u32>,
    /// `--keep-monthly`.
    pub keep_monthly: Option<u32>,
    /// `--keep-yearly`.
    pub keep_yearly: Option<u32>,
    /// `--keep-within` (7d, 2w, 1y2m).
    pub keep_within: Option<String>,
}

impl Config {
    /// Reads the configuration: `flag`, else `$SITESNAP_CONFIG`, else the default file if it
    /// exists (a named file must exist).
    pub fn load(flag: Option<&Path>) -> crate::Result<Config> {
        let named = flag
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("SITESNAP_CONFIG").map(PathBuf::from));
        let (path, is_named) = match named {
            Some(p) => (p, true),
            None if Path::new(DEFAULT_PATH).exists() => (PathBuf::from(DEFAULT_PATH), false),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut c: Config = toml::from_str(&text).map_err(|e| bad_toml(&path, &text, &e))?;
        c.check(&path)?;
        c.file = Some(path);
        c.named = is_named;
        Ok(c)
    }

    /// Checks the values the types cannot: absolute paths, known kinds, a policy that keeps.
    fn check(&self, path: &Path) -> crate::Result<()> {
        let bad = |key: &str, why: &str| {
            Error::Invalid(format!("{}: key '{key}': {why}", path.display()))
        };
        for (key, p) in [
            ("repository", &self.repository),
            ("password_file", &self.password_file),
            ("snapshot.metrics", &self.snapshot.metrics),
        ] {
            if p.as_ref().is_some_and(|p| !p.is_absolute()) {
                return Err(bad(key, "must be an absolute path"));
            }
        }
        if let Some(k) = &self.snapshot.kind
            && !matches!(k.as_str(), "manual" | "scheduled")
        {
            return Err(bad(
                "snapshot.kind",
                &format!("'{k}' is not manual or scheduled"),
            ));
        }
        self.retention
            .policy()
            .map_err(|e| bad("retention", &e.to_string()))?;
        Ok(())
    }
}

impl RetentionDefaults {
    /// The policy, `None` when the section gives none.
    pub fn policy(&self) -> crate::Result<Option<Policy>> {
        let within = self.keep_within.as_deref().map(Span::parse).transpose()?;
        let p = Policy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within,
        };
        let given = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        .iter()
        .any(Option::is_some)
            || within.is_some();
        if !given {
            return Ok(None);
        }
        if p.is_empty() {
            return Err(Error::Invalid(
                "this policy keeps nothing: give at least one keep_* above 0".into(),
            ));
        }
        Ok(Some(p))
    }
}

/// One line for a TOML error: the file, the line, the key (with its `[section]`), the reason.
fn bad_toml(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let msg = e.message().replace('\n', " ");
    let Some(span) = e.span() else {
        return Error::Invalid(format!("{}: {msg}", path.display()));
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let key = match (section, key) {
        (Some(s), Some(k)) => format!(", key '{s}.{k}'"),
        (None, Some(k)) => format!(", key '{k}'"),
        _ => String::new(),
    };
    Error::Invalid(format!("{}: line {line_no}{key}: {msg}", path.display()))
}
