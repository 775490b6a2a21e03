#!/bin/bash
# Behaviour check for CLI refactors: runs ~100 commands (init, site add/set/show, snapshots at
# fixed SITESNAP_TEST_NOW times, list/show, pin, prune --dry-run with many --keep-* mixes and
# --json, forget, gc, verify, diff, export, doctor, restore, errors for bad input) against two
# debug binaries in identical temp worlds (SQLite site), masks ids/hashes/durations/paths and
# diffs stdout, stderr and exit codes.
# Expected differences: help (global options layout), `-q -v` (new -q), and the row order of
# the two same-second snapshots `snapshot --all` takes (sorted by their random ids) in list.
# usage: scripts/cli-compare.sh OLD_BINARY NEW_BINARY   (both named `sitesnap`)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/clicmp.XXXX)
bash "$HERE/cli-compare-world.sh" "$1" "$W/old" old >/dev/null
bash "$HERE/cli-compare-world.sh" "$2" "$W/new" new >/dev/null
python3 "$HERE/cli-compare-mask.py" "$W/old"
python3 "$HERE/cli-compare-mask.py" "$W/new"
total=$(ls "$W/old/masked" | grep -c '\.err$')
differ=$(diff -rq "$W/old/masked" "$W/new/masked" | sed -E 's/.*masked\/([0-9]+-[^.]*)\..*/\1/' | sort -u)
echo "commands: $total; differing: $(echo -n "$differ" | grep -c .)"
for d in $differ; do echo "== $d"; diff "$W/old/masked/$d.out" "$W/new/masked/$d.out"; diff "$W/old/masked/$d.err" "$W/new/masked/$d.err"; done
echo "(outputs kept in $W)"
