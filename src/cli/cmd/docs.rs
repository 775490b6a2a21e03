//! `sitesnap completions <shell>` and `sitesnap man`: shell completion scripts (clap_complete)
//! and manual pages (clap_mangen), generated from the same clap definitions as the parser.

use crate::cli::args::Ctx;
use anyhow::{Context, Result};
use clap::Args;
use clap_complete::Shell;
use std::path::PathBuf;

/// Arguments of `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write sitesnap.1 and one sitesnap-<command>.1 page per command into this folder
    /// (default: sitesnap.1 to stdout)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script (`sitesnap completions bash > /etc/bash_completion.d/sitesnap`).
pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> Result<i32> {
    clap_complete::generate(a.shell, &mut cmd, "sitesnap", &mut std::io::stdout());
    Ok(0)
}

/// Prints the manual page, or writes every page into a folder.
pub fn man(ctx: &Ctx, a: ManArgs, cmd: clap::Command) -> Result<i32> {
    match &a.dir {
        None => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .context("writing to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
            clap_mangen::generate_to(cmd, dir).with_context(|| dir.display().to_string())?;
            if ctx.report_wanted() {
                println!("wrote the manual pages into {}", dir.display());
            }
        }
    }
    Ok(0)
}
