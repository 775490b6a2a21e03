//! `sitesnap remote add|list|remove`: the remotes a repository pushes to. Credentials are never
//! arguments: they come from the environment or a 0600 file named by `--credentials-file`.

use crate::cli::args::Ctx;
use crate::cli::output::print_json;
use crate::remote::{self, RemoteDef};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

/// The remote subcommands.
#[derive(Subcommand, Debug)]
pub enum RemoteCmd {
    /// Add a remote: s3://BUCKET[/PREFIX] (with --endpoint for a non-AWS server) or
    /// file:///path (a NAS mount)
    Add {
        /// Its name
        name: String,
        /// s3://BUCKET[/PREFIX] or file:///path
        url: String,
        /// S3 endpoint URL, e.g. http://127.0.0.1:3900 (default: AWS)
        #[arg(long)]
        endpoint: Option<String>,
        /// S3 region
        #[arg(long, default_value = remote::DEFAULT_REGION)]
        region: String,
        /// File (mode 0600) holding aws_access_key_id and aws_secret_access_key lines; without
        /// it the keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
        #[arg(long)]
        credentials_file: Option<PathBuf>,
    },
    /// List the remotes
    List,
    /// Forget a remote (its objects stay where they are)
    Remove {
        /// Its name
        name: String,
    },
}

/// Runs `remote <cmd>`.
pub fn run(ctx: &Ctx, c: RemoteCmd) -> Result<i32> {
    match c {
        RemoteCmd::Add {
            name,
            url,
            endpoint,
            region,
            credentials_file,
        } => {
            let credentials_file = credentials_file
                .map(|f| std::path::absolute(&f))
                .transpose()?;
            let def = RemoteDef {
                name,
                url,
                endpoint,
                region,
                credentials_file,
            };
            remote::add(&ctx.repo_path, def.clone())?;
            ctx.summary(format!("added remote {} ({})", def.name, def.url));
        }
        RemoteCmd::List => {
            let defs = remote::load(&ctx.repo_path)?;
            if ctx.json {
                print_json(&defs)?;
            }
            for d in defs.iter().filter(|_| !ctx.json) {
                let mut line = format!("{}\t{}", d.name, d.url);
                if let Some(e) = &d.endpoint {
                    line += &format!("\tendpoint {e}\tregion {}", d.region);
                }
                if let Some(f) = &d.credentials_file {
                    line += &format!("\tcredentials {}", f.display());
                }
                println!("{line}");
            }
        }
        RemoteCmd::Remove { name } => {
            let d = remote::remove(&ctx.repo_path, &name)?;
            ctx.summary(format!(
                "removed remote {} ({}); its objects were left",
                d.name, d.url
            ));
        }
    }
    Ok(0)
}
