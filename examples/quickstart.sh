#!/usr/bin/env bash
# Quick start: builds sitesnap, generates a small SQLite-backed Drupal-like site in a temporary
# folder, snapshots it, lists the snapshot, and shows a restore plan. The example needs no crate
# beyond the binary's own (no dev-only crates). Run from the project root:
#   ./examples/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Without the default `s3` feature (S3 remotes): the first build stays short.
cargo build --release --locked --no-default-features --bin sitesnap --example make_demo_site
work=$(mktemp -d /tmp/sitesnap-quickstart.XXXXXX)
export SITESNAP_REPO="$work/repo"
S=target/release/sitesnap
platform=$(target/release/examples/make_demo_site "$work")
echo "== demo world in $work"
$S init
$S site add demo.example.com --platform "$platform" \
  --db "sqlite://$platform/sites/demo.example.com/site.sqlite" \
  --bind "$work/config/vhost" --bind "$work/config/alias.drushrc.php"
$S snapshot demo.example.com -v
echo "== the same snapshot again: nothing new to read or store"
$S snapshot demo.example.com -v
$S list
echo "== what a restore of the first snapshot would do"
$S restore "$($S list --json | grep -m1 '"short_id"' | cut -d'"' -f4)" --dry-run
echo "== done; remove $work when finished"
