//! `sitesnap init`: create a repository.

use crate::cli::args::Ctx;
use crate::repo::Repo;
use anyhow::Result;

/// Creates the repository at the context's path.
pub fn run(ctx: &Ctx) -> Result<i32> {
    Repo::init(&ctx.repo_path)?;
    println!("created repository {}", ctx.repo_path.display());
    Ok(0)
}
