//! `sitesnap init [--encrypt]`: create a repository, encrypted under a passphrase if asked.

use crate::cli::args::Ctx;
use crate::remote;
use crate::repo::Repo;
use anyhow::{Context, Result};
use clap::Args;

/// `init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Encrypt the repository: every chunk and object is sealed under a random master key,
    /// kept in a key file opened by a passphrase (--password-file, $SITESNAP_PASSWORD_FILE, or
    /// asked twice on the terminal). Losing the passphrase loses the data.
    #[arg(long)]
    pub encrypt: bool,
    /// Share the master key of remote NAME (defined first in this folder with `remote add`):
    /// its key files are fetched and opened with the passphrase. Servers that push into one
    /// bucket need one key for their data to be stored once
    #[arg(long, value_name = "NAME", conflicts_with = "encrypt")]
    pub from: Option<String>,
}

/// Creates the repository at the context's path.
pub fn run(ctx: &Ctx, a: InitArgs) -> Result<i32> {
    if let Some(name) = &a.from {
        let def = remote::find(&ctx.repo_path, name)?;
        let what = || format!("init from remote '{}'", def.name);
        let backend = remote::open(&def).with_context(what)?;
        let pass = || {
            ctx.passphrase(false)
                .map_err(|e| crate::Error::Invalid(format!("{e:#}")))
        };
        let repo = remote::join(
            &ctx.repo_path,
            &def.name,
            backend.as_ref(),
            ctx.lock_wait,
            &pass,
        )
        .with_context(what)?;
        println!(
            "created encrypted repository {} under the key of remote '{}' (key {})",
            ctx.repo_path.display(),
            def.name,
            repo.key_id().unwrap_or("?")
        );
        return Ok(0);
    }
    let pass = if a.encrypt {
        Some(ctx.passphrase(true)?)
    } else {
        None
    };
    let repo = Repo::init(&ctx.repo_path, pass.as_ref())?;
    ctx.summary(match repo.key_id() {
        Some(id) => format!(
            "created encrypted repository {} (key {id}); without its passphrase the data cannot be read",
            ctx.repo_path.display()
        ),
        None => format!("created repository {}", ctx.repo_path.display()),
    });
    Ok(0)
}
