//! The library's typed error. Every variant renders as one line that names the thing at fault
//! (a site, a snapshot id, a path, a database); the CLI prints it as is and maps it to an exit
//! code. Never put a database password into an error: URLs are redacted before they get here.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the library returns; the CLI prints it as one line (`sitesnap: error: ...`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line input that clap cannot catch (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Bad input from the user: unknown site, unsafe path, ... (exit code 1).
    #[error("{0}")]
    Invalid(String),
    #[error("no repository at {0} (run `sitesnap init` first)")]
    NoRepository(PathBuf),
    #[error("unknown site '{0}'")]
    UnknownSite(String),
    #[error("no snapshot matches id '{0}'")]
    UnknownSnapshot(String),
    #[error("snapshot id '{0}' is ambiguous: it matches {1}")]
    AmbiguousSnapshot(String, String),
    #[error("{}: {source}", crate::shown::shown(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalogue: {0}")]
    Catalog(#[from] rusqlite::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database {url}: {msg}")]
    Database { url: String, msg: String },
    #[error("repository is locked by {0}")]
    Locked(String),
    #[error(
        "site '{site}' has an unfinished restore (journal {journal}); run `sitesnap recover` first (or `sitesnap recover --abort {journal}`)"
    )]
    JournalOpen { site: String, journal: String },
    #[error("{0}")]
    Refused(String),
    /// A restore step failed and the site was put back exactly as it was before.
    #[error(
        "restore of {site} failed at the {step} step: {cause}; rolled back: the site is as it was before"
    )]
    RolledBack {
        site: String,
        step: String,
        cause: Box<Error>,
    },
    /// A restore step failed and putting the site back failed too: `recover` finishes the undo.
    #[error(
        "restore of {site} failed at the {step} step: {cause}; rolling back failed too: {undo}; run `sitesnap recover` (journal {journal})"
    )]
    RollbackFailed {
        site: String,
        step: String,
        journal: String,
        cause: Box<Error>,
        undo: Box<Error>,
    },
    /// Every step of a restore is done but recording where the site is now failed: the journal
    /// stays open, and `recover` records it again.
    #[error(
        "every step is done (the site's files, database and bindings are the snapshot's), but recording it in the catalogue failed: {cause}; run `sitesnap recover` to finish (journal {journal})"
    )]
    RecordFailed { journal: String, cause: Box<Error> },
    /// A store-first change failed and undoing its store side failed too (`what`: taking back
    /// a rolled-back snapshot's objects, putting back a failed forget's manifests): store and
    /// catalogue disagree until `repair catalog`.
    #[error("{cause}; {what} failed too: {undo}; run `sitesnap repair catalog`")]
    StoreUndoFailed {
        cause: Box<Error>,
        what: &'static str,
        undo: Box<Error>,
    },
    /// A remote (S3 bucket, NAS folder) failed: one line naming it and what went wrong.
    #[error("{0}")]
    Remote(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Process exit code for this error: 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Adds the path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
