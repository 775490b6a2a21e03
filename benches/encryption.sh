#!/usr/bin/env bash
# The throughput cost of encryption at rest: `sitesnap snapshot` of the same generated
# Drupal-like tree (examples/gen_tree.rs; SCALE 0.375 is about 300 MB) into a fresh plain
# repository and a fresh encrypted one (`init --encrypt`), RUNS times each, alternating; prints
# every run's wall time and the medians and their ratio. Also times `list` on each repository
# (the per-command cost of unlocking: argon2id). Warm caches; `sync` before every timed command.
#
#   benches/encryption.sh [RUNS]
#   env: RUNS (3), SEED (42), SCALE (0.375), BENCH_DIR (<checkout>/bench-data),
#        SITESNAP_BIN and GEN_BIN (binaries to use instead of this checkout's release build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-${1:-3}}
SEED=${SEED:-42}
SCALE=${SCALE:-0.375}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-data}
URI=bench.example.com
if [ -z "${SITESNAP_BIN:-}" ] || [ -z "${GEN_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin sitesnap --example gen_tree)
fi
SITESNAP=${SITESNAP_BIN:-$ROOT/target/release/sitesnap}
GEN=${GEN_BIN:-$ROOT/target/release/examples/gen_tree}

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TREE=$BENCH_DIR/tree-seed$SEED-scale$SCALE
PLATFORM=$TREE/platform
if [ ! -f "$TREE/generated" ]; then
    rm -rf "$TREE"
    mkdir -p "$TREE"
    "$GEN" "$PLATFORM" --seed "$SEED" --scale "$SCALE" >"$TREE/generated.tmp"
    mv "$TREE/generated.tmp" "$TREE/generated"
fi
echo "tree: $(du -sb "$PLATFORM" | cut -f1) bytes, $(find "$PLATFORM" -type f | wc -l) files"
find "$PLATFORM" -type f -exec cat {} + >/dev/null
WORK=$BENCH_DIR/enc-work
PW=$BENCH_DIR/enc-passphrase
printf 'benchmark passphrase\n' >"$PW"
chmod 600 "$PW"

now() { date +%s.%N; }
# run_one KIND: a fresh repository of KIND (plain|encrypted), one timed snapshot; prints seconds.
run_one() {
    local repo=$WORK/$1
    rm -rf "$repo"
    mkdir -p "$WORK"
    local enc=()
    [ "$1" = encrypted ] && enc=(--encrypt)
    SITESNAP_PASSWORD_FILE=$PW "$SITESNAP" --repo "$repo" init "${enc[@]}" >/dev/null
    SITESNAP_PASSWORD_FILE=$PW "$SITESNAP" --repo "$repo" site add "$URI" --platform "$PLATFORM" >/dev/null
    sync
    local t0 t1
    t0=$(now)
    SITESNAP_PASSWORD_FILE=$PW "$SITESNAP" --repo "$repo" snapshot "$URI"
    sync
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
time_list() {
    sync
    local t0 t1
    t0=$(now)
    SITESNAP_PASSWORD_FILE=$PW "$SITESNAP" --repo "$WORK/$1" list >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

plain=(); encrypted=(); lp=(); le=()
for run in $(seq 1 "$RUNS"); do
    p=$(run_one plain); lp+=("$(time_list plain)")
    e=$(run_one encrypted); le+=("$(time_list encrypted)")
    printf 'run %d: plain %.2f s, encrypted %.2f s\n' "$run" "$p" "$e"
    plain+=("$p"); encrypted+=("$e")
done
mp=$(printf '%s\n' "${plain[@]}" | median)
me=$(printf '%s\n' "${encrypted[@]}" | median)
printf 'snapshot median: plain %.2f s, encrypted %.2f s, ratio encrypted/plain %.3f\n' \
    "$mp" "$me" "$(echo "$me / $mp" | bc -l)"
printf 'repository size: plain %s bytes, encrypted %s bytes\n' \
    "$(du -sb "$WORK/plain" | cut -f1)" "$(du -sb "$WORK/encrypted" | cut -f1)"
printf 'list median (unlock cost): plain %.3f s, encrypted %.3f s\n' \
    "$(printf '%s\n' "${lp[@]}" | median)" "$(printf '%s\n' "${le[@]}" | median)"
[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
