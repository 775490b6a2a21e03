//! `sitesnap key add|list|remove`: the passphrases (key files) of an encrypted repository.

use crate::cli::args::{Ctx, prompt_passphrase};
use crate::cli::output::print_json;
use crate::crypto::Passphrase;
use crate::error::Error;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

/// What `key` does.
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Add a passphrase: a new key file of the same master key
    Add {
        /// File whose first line is the new passphrase (else asked twice on the terminal)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
    /// List the key files: id, when and where made, which one opened the repository now
    List,
    /// Remove a key file (never the only one, nor the one that opened the repository now)
    Remove {
        /// The key file's id (see `key list`)
        id: String,
    },
}

/// Runs `key <what>`.
pub fn run(ctx: &Ctx, c: KeyCmd) -> Result<i32> {
    match c {
        KeyCmd::Add { new_password_file } => add(ctx, new_password_file),
        KeyCmd::List => list(ctx),
        KeyCmd::Remove { id } => remove(ctx, &id),
    }
}

/// Refuses a repository that is not encrypted.
fn encrypted(repo: &crate::repo::Repo) -> Result<()> {
    if repo.is_encrypted() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "repository {} is not encrypted: it has no keys (create one with `sitesnap init --encrypt`)",
        repo.root.display()
    ))
    .into())
}

fn add(ctx: &Ctx, file: Option<PathBuf>) -> Result<i32> {
    let repo = ctx.open_locked("key add")?;
    encrypted(&repo)?;
    let pass = match file {
        Some(f) => Passphrase::from_file(&f)?,
        None => prompt_passphrase("new passphrase", true, &ctx.repo_path)?,
    };
    let id = repo.add_key(&pass)?;
    if ctx.json {
        print_json(&serde_json::json!({ "added": id }))?;
    }
    ctx.summary(format!("added key {id}"));
    Ok(0)
}

fn list(ctx: &Ctx) -> Result<i32> {
    let repo = ctx.open()?;
    encrypted(&repo)?;
    let keys = repo.keys().list()?;
    let current = repo.key_id().unwrap_or_default();
    if ctx.json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id, "created": k.created, "host": k.host,
                    "current": k.id == current,
                })
            })
            .collect();
        print_json(&rows)?;
        return Ok(0);
    }
    println!("{:<2}{:<18}{:<22}HOST", "", "ID", "CREATED");
    for k in &keys {
        let mark = if k.id == current { "*" } else { "" };
        println!("{mark:<2}{:<18}{:<22}{}", k.id, k.created, k.host);
    }
    Ok(0)
}

fn remove(ctx: &Ctx, id: &str) -> Result<i32> {
    let repo = ctx.open_locked("key remove")?;
    encrypted(&repo)?;
    let ids = repo.keys().ids()?;
    if !ids.iter().any(|i| i == id) {
        return Err(Error::Invalid(format!("no key file with id '{id}'")).into());
    }
    if ids.len() == 1 {
        return Err(Error::Refused(format!(
            "key {id} is the only key of the repository; add another first (`sitesnap key add`)"
        ))
        .into());
    }
    if repo.key_id() == Some(id) {
        return Err(Error::Refused(format!(
            "key {id} opened the repository now; open it with another passphrase to remove this one"
        ))
        .into());
    }
    repo.keys().remove(id)?;
    ctx.summary(format!("removed key {id}"));
    Ok(0)
}
