#!/usr/bin/env bash
# Push of a repository of about 1 GB to a local S3 server (Garage) against restic sending the
# same tree to the same server, in one script, RUNS runs each, interleaved, medians:
#   sitesnap push:   `sitesnap push` of an encrypted repository holding one snapshot of the
#                    tree, to a fresh prefix each run (upload of an existing repository);
#   restic copy:     `restic copy --from-repo LOCAL` of a local restic repository of the same
#                    tree into a fresh S3 repository (restic's own upload of an existing one);
#   restic backup:   `restic backup TREE` straight into a fresh S3 repository (reads, chunks,
#                    compresses and uploads: not an upload-only figure, shown for scale).
# MB/s = size of what is sent (sitesnap: its repository's data folder; restic: its local
# repository) / wall seconds. Then `restore <id> --from offsite --target DIR` of the site into
# a fresh repository folder from the bucket, RUNS times, median.
#
#   eval "$(.ci/garage.sh start)"; nice -n 5 benches/remote_push.sh
#   env: RUNS (3), SEED (42), SCALE (1.3: about 1 GB), BENCH_DIR (<checkout>/bench-data),
#        SITESNAP_BIN (default: this checkout's release build), TREE_DIR (a real tree instead
#        of the generated one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
SEED=${SEED:-42}
SCALE=${SCALE:-1.3}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-data}
URI=bench.example.com
for v in S3_ENDPOINT S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
    if [ -z "${!v:-}" ]; then
        echo "remote_push.sh: $v is not set; start the server with: eval \"\$(.ci/garage.sh start)\"" >&2
        exit 1
    fi
done
command -v restic >/dev/null || { echo "remote_push.sh: restic is not installed" >&2; exit 1; }
export AWS_DEFAULT_REGION=${AWS_REGION:-garage}

if [ -z "${SITESNAP_BIN:-}" ]; then
    echo "building sitesnap (release)" >&2
    (cd "$ROOT" && cargo build --release --quiet --bin sitesnap --example gen_tree)
fi
SITESNAP=${SITESNAP_BIN:-$ROOT/target/release/sitesnap}
GEN=$ROOT/target/release/examples/gen_tree

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
if [ -n "${TREE_DIR:-}" ]; then
    TREE=$BENCH_DIR/tree-$(basename "$TREE_DIR")
else
    TREE=$BENCH_DIR/tree-seed$SEED-scale$SCALE
fi
PLATFORM=$TREE/platform
if [ ! -f "$TREE/generated" ]; then
    rm -rf "$TREE"
    mkdir -p "$TREE"
    if [ -n "${TREE_DIR:-}" ]; then
        cp -a "$TREE_DIR" "$PLATFORM"
        mkdir -p "$PLATFORM/sites/$URI"
        printf '<?php\n' >"$PLATFORM/sites/$URI/settings.php"
        echo "copied $TREE_DIR" >"$TREE/generated.tmp"
    else
        [ -x "$GEN" ] || (cd "$ROOT" && cargo build --release --quiet --example gen_tree)
        "$GEN" "$PLATFORM" --seed "$SEED" --scale "$SCALE" | tee "$TREE/generated.tmp" >&2
    fi
    mv "$TREE/generated.tmp" "$TREE/generated"
fi
echo "tree: $(find "$PLATFORM" -type f | wc -l) files, $(du -sb "$PLATFORM" | cut -f1) bytes" >&2

WORK=$BENCH_DIR/remote-push
rm -rf "$WORK"
mkdir -p "$WORK"
PW=$WORK/passphrase
printf 'benchmark passphrase\n' >"$PW"
chmod 600 "$PW"
export SITESNAP_PASSWORD_FILE=$PW
export RESTIC_PASSWORD=sitesnap-bench RESTIC_FROM_PASSWORD=sitesnap-bench
export RESTIC_CACHE_DIR=$WORK/restic-cache
REPO=$WORK/repo
RLOCAL=$WORK/restic-local
STAMP=$(date +%s)
ss() { "$SITESNAP" --repo "$REPO" "$@"; }

# The repositories to send (not timed).
ss init --encrypt >/dev/null
ss site add "$URI" --platform "$PLATFORM" >/dev/null
ss snapshot "$URI" >/dev/null
ID=$(ss list "$URI" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
restic init -r "$RLOCAL" -q
restic backup -r "$RLOCAL" -q "$PLATFORM" >/dev/null
SS_BYTES=$(du -sb "$REPO/data" | cut -f1)
RESTIC_BYTES=$(du -sb "$RLOCAL" | cut -f1)
echo "sitesnap repository data: $SS_BYTES bytes; restic repository: $RESTIC_BYTES bytes" >&2

RESULTS=$WORK/results.txt
: >"$RESULTS"
# timed TOOL RUN BYTES CMD...: wall seconds into RESULTS (with MB/s for BYTES).
timed() {
    local tool=$1 run=$2 bytes=$3
    shift 3
    sync
    local t0 t1 wall
    t0=$(date +%s%N)
    "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || {
        echo "FAILED: $tool: $*" >&2
        cat "$WORK/cmd.err" >&2
        exit 1
    }
    t1=$(date +%s%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    echo "$tool $run $wall $bytes" >>"$RESULTS"
    printf '  %-14s run %d: %8.3f s  %7.1f MB/s\n' "$tool" "$run" "$wall" \
        "$(awk -v s="$wall" -v b="$bytes" 'BEGIN { print b / s / 1e6 }')" >&2
}

S3R() { echo "s3:$S3_ENDPOINT/$S3_BUCKET/$1"; }
for r in $(seq 1 "$RUNS"); do
    ss remote add "push$r" "s3://$S3_BUCKET/bench-$STAMP/sitesnap-$r" \
        --endpoint "$S3_ENDPOINT" --region "$AWS_DEFAULT_REGION" >/dev/null
    timed "sitesnap-push" "$r" "$SS_BYTES" "$SITESNAP" --repo "$REPO" push "push$r" --json
    cp "$WORK/cmd.out" "$WORK/push-$r.json"
    restic init -q -r "$(S3R "bench-$STAMP/copy-$r")" --from-repo "$RLOCAL" --copy-chunker-params \
        >/dev/null
    timed "restic-copy" "$r" "$RESTIC_BYTES" \
        restic -q -r "$(S3R "bench-$STAMP/copy-$r")" copy --from-repo "$RLOCAL"
    restic init -q -r "$(S3R "bench-$STAMP/backup-$r")" >/dev/null
    rm -rf "$RESTIC_CACHE_DIR"
    timed "restic-backup" "$r" "$RESTIC_BYTES" \
        restic -q -r "$(S3R "bench-$STAMP/backup-$r")" backup "$PLATFORM"
done
echo "sitesnap push report (run 1): $(cat "$WORK/push-1.json")"

# restore --from into a fresh repository folder (manifest, blob lists and packs from the bucket).
# Restored trees are moved aside and deleted only after the last run: ext4 skips inodes freed
# in the last minutes, so deleting 65,000 files just before a restore makes it several times
# slower (measured here: 29 s, then 102 s).
mkdir -p "$WORK/trash"
for r in $(seq 1 "$RUNS"); do
    fresh=$WORK/fresh-$r
    "$SITESNAP" --repo "$fresh" remote add offsite "s3://$S3_BUCKET/bench-$STAMP/sitesnap-1" \
        --endpoint "$S3_ENDPOINT" --region "$AWS_DEFAULT_REGION" >/dev/null
    timed "restore-from" "$r" "$SS_BYTES" \
        "$SITESNAP" --repo "$fresh" restore "$ID" --from offsite --target "$WORK/out-$r"
    mv "$WORK/out-$r" "$WORK/trash/"
done
rm -rf "$WORK/trash"

echo
echo "medians of $RUNS runs (one run, interleaved), to $S3_ENDPOINT:"
for tool in sitesnap-push restic-copy restic-backup restore-from; do
    awk -v t="$tool" '$1 == t { print $3, $4 }' "$RESULTS" | sort -n |
        awk -v t="$tool" '{ w[NR] = $1; b = $2; all = all sprintf(" %.2f", $1) }
            END { m = w[int((NR + 1) / 2)];
                  printf "  %-14s %7.2f s  %7.1f MB/s   runs:%s s\n", t, m, b / m / 1e6, all }'
done
push=$(awk '$1 == "sitesnap-push" { print $3 }' "$RESULTS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
copy=$(awk '$1 == "restic-copy" { print $3 }' "$RESULTS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "  time ratio sitesnap push / restic copy: $(awk -v a="$push" -v b="$copy" 'BEGIN { printf "%.2f", a / b }')"
