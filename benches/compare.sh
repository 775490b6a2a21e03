#!/usr/bin/env bash
# Compares sitesnap with restic, borg and tar+zstd on the same generated Drupal-like tree (about
# 50,000 files / 800 MB, examples/gen_tree.rs, deterministic from SEED) or on a real tree
# (TREE_DIR): first snapshot, repeat snapshot with nothing changed, repository size, peak RSS,
# restore onto a fresh path. Prints the medians of RUNS runs, the ratios sitesnap/restic,
# sitesnap/borg and sitesnap/tar, and issue 14's targets, each met or not met.
#
#   benches/compare.sh [RUNS]
#   env: RUNS (default 5), SEED (42), SCALE (1.0), BENCH_DIR (<checkout>/bench-data, which must be
#        on the disk being measured), KEEP=1 keeps the last run's repositories, SITESNAP_BIN
#        (another sitesnap binary to measure instead of this checkout's release build),
#        SITESNAP_BASE_BIN (a second sitesnap build, e.g. main before a change, measured in the
#        same runs as "base"), TREE_DIR (a real tree to measure instead of the generated one,
#        e.g. "$(rustc --print sysroot)/share/doc/rust/html": copied into BENCH_DIR as the
#        platform, with an empty site folder added).
#
# Caches are warm (dropping them needs root on the host): the tree is read once before the
# first run, and `sync` runs before every timed command so one tool's writeback is not billed
# to the next. Every tool writes its repository on the same disk as the tree.
#   sitesnap: `sitesnap snapshot <site>` (platform + site directory, no database), repo fsynced.
#   restic:   `restic backup <platform>` (RESTIC_PASSWORD from the environment, repository v2
#             with compression auto; its local cache in BENCH_DIR, emptied before each run).
#   borg:     `borg create --compression zstd,3` (borg 1.2 from Debian, unencrypted repository,
#             its cache in BENCH_DIR, emptied before each first run); restore `borg extract`.
#   tar:      `tar --listed-incremental=S -I 'zstd -T0' -cf` ; the repeat is a level-1
#             incremental with a copy of the level-0 snapshot file (GNU tar's "nothing changed").
# Every restore goes onto a fresh path (sitesnap recreates the platform, which was moved away;
# the others extract into a new empty folder). sitesnap's restore is durable when it ends (one
# `syncfs` before the new tree is renamed into place); the others leave their data to the
# kernel's writeback, so tar is measured twice: `tar -x` alone and `tar -x` then `sync`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-${1:-5}}
SEED=${SEED:-42}
SCALE=${SCALE:-1.0}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-data}
URI=bench.example.com

need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v zstd >/dev/null || need+=(zstd)
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian" >&2
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "building sitesnap (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin sitesnap --example gen_tree)
# SITESNAP_BIN=/path/to/sitesnap measures another build (e.g. before a change) on the same tree.
SITESNAP=${SITESNAP_BIN:-$ROOT/target/release/sitesnap}
GEN=$ROOT/target/release/examples/gen_tree

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TREE=$BENCH_DIR/tree-seed$SEED-scale$SCALE
PLATFORM=$TREE/platform
if [ -n "${TREE_DIR:-}" ]; then
    TREE=$BENCH_DIR/tree-$(basename "$TREE_DIR")
    PLATFORM=$TREE/platform
fi
if [ ! -f "$TREE/generated" ]; then
    rm -rf "$TREE"
    mkdir -p "$TREE"
    if [ -n "${TREE_DIR:-}" ]; then
        cp -a "$TREE_DIR" "$PLATFORM"
        mkdir -p "$PLATFORM/sites/$URI"
        printf '<?php\n$settings = [];\n' >"$PLATFORM/sites/$URI/settings.php"
        echo "copied $TREE_DIR: $(find "$PLATFORM" -type f | wc -l) files, $(du -sm "$PLATFORM" | cut -f1) MB" >"$TREE/generated.tmp"
    else
        "$GEN" "$PLATFORM" --seed "$SEED" --scale "$SCALE" | tee "$TREE/generated.tmp" >&2
    fi
    mv "$TREE/generated.tmp" "$TREE/generated"
fi
WORK=$BENCH_DIR/work
rm -rf "$WORK"
mkdir -p "$WORK"
RESULTS=$BENCH_DIR/results-$(date +%Y%m%d-%H%M%S).txt
: >"$RESULTS"

export RESTIC_PASSWORD=${RESTIC_PASSWORD:-sitesnap-bench}
export RESTIC_CACHE_DIR=$WORK/restic-cache
export BORG_CACHE_DIR=$WORK/borg-cache BORG_CONFIG_DIR=$WORK/borg-config
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export SITESNAP_REPO=$WORK/sitesnap-repo
BASE=${SITESNAP_BASE_BIN:-}
BASE_REPO=$WORK/base-repo

# measure TOOL PHASE RUN CMD...: wall seconds (ns clock) and peak RSS (KiB) into RESULTS.
measure() {
    local tool=$1 phase=$2 run=$3
    shift 3
    sync
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || {
        echo "FAILED: $tool $phase: $*" >&2
        cat "$WORK/cmd.err" >&2
        exit 1
    }
    t1=$(date +%s%N)
    local wall rss
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    rss=$(tail -1 "$WORK/time.out")
    echo "$tool $phase $run wall $wall" >>"$RESULTS"
    echo "$tool $phase $run rss $rss" >>"$RESULTS"
    printf '  %-8s %-8s run %d: %7.3f s  %6.1f MiB RSS\n' "$tool" "$phase" "$run" "$wall" \
        "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" >&2
}

record() { echo "$1 $2 $3 $4 $5" >>"$RESULTS"; }

nfiles() { find "$1" -type f | wc -l; }

HAVE_RESTORE=0
"$SITESNAP" restore --help >/dev/null 2>&1 && HAVE_RESTORE=1

# Restore: sitesnap restores the platform and site in place, so the generated platform is moved
# out of the way first (into BENCH_DIR/aside, not beside the platform, where sitesnap would find
# the site) and put back afterwards (the files cache stays valid: paths, inodes and ctimes of the
# files do not change). restic and tar restore into an empty folder. Restored trees are moved
# into WORK/trash and deleted only after the last measurement: ext4 skips inodes freed in the
# last minutes when it allocates new ones, so deleting 50,000 files and then creating 50,000
# costs ten times more in the kernel and would be billed to whichever tool comes next.
# sitesnap is measured only when this build has `sitesnap restore`.
# sitesnap_restore TOOL BIN REPO RUN SNAP: one sitesnap build's restore.
sitesnap_restore() {
    local tool=$1 bin=$2 repo=$3 run=$4 snap=$5
    mkdir -p "$BENCH_DIR/aside"
    mv "$PLATFORM" "$BENCH_DIR/aside/platform"
    trap 'mv "$PLATFORM" "$WORK/trash/restored-platform.$$"; mv "$BENCH_DIR/aside/platform" "$PLATFORM"' EXIT
    SITESNAP_REPO=$repo measure "$tool" restore "$run" "$bin" restore "$snap" --yes
    local n
    n=$(nfiles "$PLATFORM")
    mv "$PLATFORM" "$WORK/trash/$run/$tool"
    mv "$BENCH_DIR/aside/platform" "$PLATFORM"
    trap - EXIT
    record "$tool" restore "$run" files "$n"
}

# A first and a repeat snapshot of the tree by one sitesnap build into a fresh repository;
# prints the first snapshot's id.
sitesnap_snapshots() {
    local tool=$1 bin=$2 repo=$3 run=$4
    export SITESNAP_REPO=$repo
    rm -rf "$repo"
    "$bin" init >/dev/null
    "$bin" site add "$URI" --platform "$PLATFORM" >/dev/null
    measure "$tool" first "$run" "$bin" snapshot "$URI"
    record "$tool" first "$run" size "$(du -sb "$repo" | cut -f1)"
    measure "$tool" repeat "$run" "$bin" snapshot "$URI"
    record "$tool" repeat "$run" size "$(du -sb "$repo" | cut -f1)"
    # Through a file: awk leaving at the first match would end `list` with SIGPIPE.
    "$bin" list --json >"$WORK/$tool-list.json"
    awk -F'"' '/^ *"id":/ { print $4; exit }' "$WORK/$tool-list.json"
}

restore_phase() {
    local run=$1 snap=$2 base_snap=${3:-}
    mkdir -p "$WORK/trash/$run"
    if [ -n "$base_snap" ] && [ $((run % 2)) = 0 ]; then
        sitesnap_restore base "$BASE" "$BASE_REPO" "$run" "$base_snap"
    fi
    if [ "$HAVE_RESTORE" = 1 ]; then
        sitesnap_restore sitesnap "$SITESNAP" "$SITESNAP_REPO" "$run" "$snap"
    fi
    if [ -n "$base_snap" ] && [ $((run % 2)) = 1 ]; then
        sitesnap_restore base "$BASE" "$BASE_REPO" "$run" "$base_snap"
    fi
    measure restic restore "$run" restic --repo "$WORK/restic-repo" restore latest \
        --target "$WORK/trash/$run/restic"
    record restic restore "$run" files "$(nfiles "$WORK/trash/$run/restic")"
    mkdir -p "$WORK/trash/$run/borg"
    measure borg restore "$run" env -C "$WORK/trash/$run/borg" borg extract "$WORK/borg-repo::first"
    record borg restore "$run" files "$(nfiles "$WORK/trash/$run/borg")"
    mkdir -p "$WORK/trash/$run/tar"
    measure tar restore "$run" tar -I 'zstd -T0' -xf "$WORK/full.tar.zst" -C "$WORK/trash/$run/tar"
    record tar restore "$run" files "$(nfiles "$WORK/trash/$run/tar")"
    # The same extraction made durable as sitesnap's restore is (it runs `syncfs` before it
    # renames the tree into place; tar leaves its data to the kernel's writeback).
    mkdir -p "$WORK/trash/$run/tarsync"
    measure tarsync restore "$run" sh -c 'tar -I "zstd -T0" -xf "$1" -C "$2" && sync' tarsync \
        "$WORK/full.tar.zst" "$WORK/trash/$run/tarsync"
}

# Room for every restored tree (6 per run, kept until the end) and the repositories.
need_kb=$(( ($(du -sk "$PLATFORM" | cut -f1) * (6 * RUNS + 6)) ))
avail_kb=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
if [ "$avail_kb" -lt "$need_kb" ]; then
    echo "not enough space in $BENCH_DIR: need $((need_kb / 1024)) MiB, have $((avail_kb / 1024)) MiB" >&2
    exit 1
fi
# Files deleted by a previous run in the last 5 minutes would slow down file creation (above).
if [ -f "$BENCH_DIR/.last-delete" ]; then
    wait_s=$(( $(cat "$BENCH_DIR/.last-delete") + 300 - $(date +%s) ))
    if [ "$wait_s" -gt 0 ]; then
        echo "waiting ${wait_s}s for the previous run's deleted inodes to age" >&2
        sleep "$wait_s"
    fi
fi

echo "warming the page cache with the tree" >&2
find "$PLATFORM" -type f -print0 | xargs -0 cat >/dev/null

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS" >&2
for run in $(seq 1 "$RUNS"); do
    echo "run $run of $RUNS" >&2
    # The previous run wrote five restored trees and four repositories: the tree may have left
    # the page cache, and the first tool of the run would read it from disk (seen: the first
    # snapshot of a run took up to 0.9 s longer than the second tool's). Read it again.
    [ "$run" = 1 ] || find "$PLATFORM" -type f -print0 | xargs -0 cat >/dev/null

    # sitesnap and base take turns at going first (the first tool of a run may pay for what
    # the previous run left the disk doing).
    first_id= base_id=
    if [ -z "$BASE" ] || [ $((run % 2)) = 1 ]; then
        first_id=$(sitesnap_snapshots sitesnap "$SITESNAP" "$WORK/sitesnap-repo" "$run")
        [ -z "$BASE" ] || base_id=$(sitesnap_snapshots base "$BASE" "$BASE_REPO" "$run")
    else
        base_id=$(sitesnap_snapshots base "$BASE" "$BASE_REPO" "$run")
        first_id=$(sitesnap_snapshots sitesnap "$SITESNAP" "$WORK/sitesnap-repo" "$run")
    fi
    export SITESNAP_REPO=$WORK/sitesnap-repo

    rm -rf "$WORK/restic-repo" "$RESTIC_CACHE_DIR"
    restic --repo "$WORK/restic-repo" init -q >/dev/null
    measure restic first "$run" restic --repo "$WORK/restic-repo" backup -q "$PLATFORM"
    record restic first "$run" size "$(du -sb "$WORK/restic-repo" | cut -f1)"
    measure restic repeat "$run" restic --repo "$WORK/restic-repo" backup -q "$PLATFORM"
    record restic repeat "$run" size "$(du -sb "$WORK/restic-repo" | cut -f1)"

    rm -rf "$WORK/borg-repo" "$BORG_CACHE_DIR"
    borg init --encryption=none "$WORK/borg-repo" >/dev/null
    measure borg first "$run" borg create --compression zstd,3 "$WORK/borg-repo::first" "$PLATFORM"
    record borg first "$run" size "$(du -sb "$WORK/borg-repo" | cut -f1)"
    measure borg repeat "$run" borg create --compression zstd,3 "$WORK/borg-repo::repeat" "$PLATFORM"
    record borg repeat "$run" size "$(du -sb "$WORK/borg-repo" | cut -f1)"

    rm -f "$WORK"/*.tar.zst "$WORK"/snar*
    measure tar first "$run" tar --listed-incremental="$WORK/snar0" -I 'zstd -T0' \
        -cf "$WORK/full.tar.zst" -C "$TREE" platform
    record tar first "$run" size "$(stat -c %s "$WORK/full.tar.zst")"
    cp "$WORK/snar0" "$WORK/snar1"
    measure tar repeat "$run" tar --listed-incremental="$WORK/snar1" -I 'zstd -T0' \
        -cf "$WORK/incr.tar.zst" -C "$TREE" platform
    record tar repeat "$run" size "$(( $(stat -c %s "$WORK/full.tar.zst") + $(stat -c %s "$WORK/incr.tar.zst") ))"

    restore_phase "$run" "$first_id" "$base_id"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS" >&2

median() { # TOOL PHASE METRIC
    awk -v t="$1" -v p="$2" -v m="$3" '$1 == t && $2 == p && $4 == m { print $5 }' "$RESULTS" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'; }
mb() { awk -v v="$1" -v d="$2" -v f="${3:-%.1f}" 'BEGIN { if (v == "-") print "-"; else printf f, v / d }'; }

echo
echo "tree: $(cat "$TREE/generated")"
echo "machine: $(nproc) cores, $(uname -r); warm page cache; $RUNS runs; medians"
echo "$(grep '^load' "$RESULTS" | tr '\n' ' ')"
FMT='%-22s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n'
printf "$FMT" "" sitesnap restic borg tar "ss/restic" "ss/borg" "ss/tar" base "base/restic" \
    "base/tar" "ss/base"
row() { # LABEL PHASE METRIC DIVISOR [FORMAT]
    local s r g t b
    s=$(median sitesnap "$2" "$3"); r=$(median restic "$2" "$3"); t=$(median tar "$2" "$3")
    g=$(median borg "$2" "$3"); b=$(median base "$2" "$3")
    printf "$FMT" "$1" "$(mb "$s" "$4" "${5:-}")" "$(mb "$r" "$4" "${5:-}")" \
        "$(mb "$g" "$4" "${5:-}")" "$(mb "$t" "$4" "${5:-}")" "$(ratio "$s" "$r")" \
        "$(ratio "$s" "$g")" "$(ratio "$s" "$t")" "$(mb "$b" "$4" "${5:-}")" \
        "$(ratio "$b" "$r")" "$(ratio "$b" "$t")" "$(ratio "$s" "$b")"
}
row "first snapshot (s)" first wall 1 %.2f
row "repeat snapshot (s)" repeat wall 1 %.2f
row "repository (MB)" first size 1e6
row "after repeat (MB)" repeat size 1e6
row "peak RSS first (MiB)" first rss 1024
row "peak RSS repeat (MiB)" repeat rss 1024
row "restore (s)" restore wall 1 %.2f
row "peak RSS restore (MiB)" restore rss 1024
row "files restored" restore files 1 %d
echo "restore by tar -x then sync (s): $(mb "$(median tarsync restore wall)" 1 %.2f)"
[ "$HAVE_RESTORE" = 1 ] || echo "(sitesnap restore: not in this build yet; restic and tar restore measured)"
echo
check() { # LABEL VALUE OP LIMIT
    awk -v l="$1" -v v="$2" -v op="$3" -v lim="$4" 'BEGIN {
        if (v == "-") { printf "  %-40s not measured\n", l; exit }
        ok = (op == "<=") ? (v <= lim) : (v < lim)
        printf "  %-40s %s %s %s: %s\n", l, v, op, lim, ok ? "met" : "NOT MET" }'
}
med() { median "$1" "$2" "$3"; }
targets() { # TOOL: issue 14's targets (and issue 9's repository size) for one sitesnap build
    echo "issue 14 targets, $1:"
    check "first snapshot / restic" "$(ratio "$(med "$1" first wall)" "$(med restic first wall)")" "<=" 0.25
    check "peak RSS of a first snapshot (MB, 10^6 B)" "$(mb "$(med "$1" first rss)" 976.5625)" "<" 100
    check "repeat snapshot / restic" "$(ratio "$(med "$1" repeat wall)" "$(med restic repeat wall)")" "<=" 0.05
    check "restore / restic restore" "$(ratio "$(med "$1" restore wall)" "$(med restic restore wall)")" "<=" 0.50
    check "restore / tar -x (no database here)" "$(ratio "$(med "$1" restore wall)" "$(med tar restore wall)")" "<=" 1.00
    check "restore / (tar -x then sync), both durable" "$(ratio "$(med "$1" restore wall)" "$(med tarsync restore wall)")" "<=" 1.00
    check "repository / restic (issue 9)" "$(ratio "$(med "$1" first size)" "$(med restic first size)")" "<=" 0.60
}
targets sitesnap
[ -z "$BASE" ] || targets base
echo "restore runs (s), in order:"
for t in sitesnap base restic borg tar tarsync; do
    v=$(awk -v t="$t" '$1 == t && $2 == "restore" && $4 == "wall" { printf "%s ", $5 }' "$RESULTS")
    [ -z "$v" ] || printf '  %-8s %s\n' "$t" "$v"
done
echo "raw results: $RESULTS"
rm -rf "$WORK/trash"
date +%s >"$BENCH_DIR/.last-delete"
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
