//! Loads one snapshot's database dump into a database, streamed from the store through
//! `Database::load` (what a restore does for the database part). `benches/dump_memory.sh` uses
//! it to measure the load's peak memory.
//!
//! Usage: cargo run --release --example load_snapshot -- REPO SNAPSHOT_ID DATABASE_URL

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [repo, id, url] = args.as_slice() else {
        eprintln!("usage: load_snapshot REPO SNAPSHOT_ID DATABASE_URL");
        std::process::exit(2);
    };
    let run = || -> sitesnap::Result<()> {
        let repo = sitesnap::repo::Repo::open(std::path::Path::new(repo), None)?;
        let snap = repo.cat.resolve_snapshot(id)?;
        let dump = snap
            .db_dump
            .ok_or_else(|| sitesnap::Error::Invalid(format!("snapshot {id} has no database")))?;
        let mut r = sitesnap::capture::blob_reader(&repo, &dump)?;
        sitesnap::db::Database::parse(url)?.load(&mut r)
    };
    if let Err(e) = run() {
        eprintln!("load_snapshot: {e}");
        std::process::exit(1);
    }
}
