//! Generates the benchmark tree: a Drupal-like platform with one site (`bench.example.com`),
//! deterministic from a seed. Scale 1.0 is about 50,000 files and 800 MB.
//!
//! `cargo run --release --example gen_tree -- <dir> [--seed N] [--scale F]`

#[path = "../benches/common/tree_gen.rs"]
mod tree_gen;

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut seed = 42u64;
    let mut scale = 1.0f64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("--seed N"),
            "--scale" => scale = args.next().and_then(|v| v.parse().ok()).expect("--scale F"),
            _ if dir.is_none() && !a.starts_with('-') => dir = Some(PathBuf::from(a)),
            _ => {
                eprintln!("usage: gen_tree <dir> [--seed N] [--scale F]");
                std::process::exit(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: gen_tree <dir> [--seed N] [--scale F]");
        std::process::exit(2);
    };
    let started = std::time::Instant::now();
    let s = tree_gen::generate(&dir, seed, scale);
    println!(
        "generated {} in {:.1}s: {} files ({} code, {:.1} MB; {} media, {:.1} MB), {} dirs, {:.1} MB, site {}",
        dir.display(),
        started.elapsed().as_secs_f64(),
        s.files,
        s.code_files,
        s.code_bytes as f64 / 1e6,
        s.media_files,
        s.media_bytes as f64 / 1e6,
        s.dirs,
        s.bytes as f64 / 1e6,
        tree_gen::SITE_URI
    );
}
