//! `sitesnap init [--encrypt]`: create a repository, encrypted under a passphrase if asked.

use crate::cli::args::Ctx;
use crate::repo::Repo;
use anyhow::Result;
use clap::Args;

/// `init` options.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Encrypt the repository: every chunk and object is sealed under a random master key,
    /// kept in a key file opened by a passphrase (--password-file, $SITESNAP_PASSWORD_FILE, or
    /// asked twice on the terminal). Losing the passphrase loses the data.
    #[arg(long)]
    pub encrypt: bool,
}

/// Creates the repository at the context's path.
pub fn run(ctx: &Ctx, a: InitArgs) -> Result<i32> {
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
