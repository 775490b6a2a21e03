#!/usr/bin/env bash
# Remote figures for docs/remote.md: (1) the objects and bytes a nightly incremental push of 10
# sites sends (after the first full push, each site gets one new 50 kB upload and one changed
# file, `snapshot --all`, `push --json`); (2) the time `restore <id> --from NAME --target DIR`
# takes for one site into a fresh repository folder (fetch of the manifest, blob lists and the
# packs it needs, then writing the files), RUNS times, median. Against Garage when S3_ENDPOINT,
# S3_BUCKET and AWS_* are set (`eval "$(.ci/garage.sh start)"`), else a folder remote.
#
#   benches/remote_nightly.sh
#   env: RUNS (3), BENCH_DIR (<checkout>/bench-data), SITESNAP_BIN (default: release build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$ROOT/bench-data}
if [ -z "${SITESNAP_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin sitesnap)
fi
SITESNAP=${SITESNAP_BIN:-$ROOT/target/release/sitesnap}
WORK=$BENCH_DIR/remote-nightly
rm -rf "$WORK"
mkdir -p "$WORK"
PW=$WORK/passphrase
printf 'benchmark passphrase\n' >"$PW"
chmod 600 "$PW"
export SITESNAP_PASSWORD_FILE=$PW
ss() { "$SITESNAP" --repo "$WORK/repo" "$@"; }

# Two platforms of 400 code-like files (about 1 MB each), five sites on each with 20 uploads
# of 20-60 kB of random data.
for p in 1 2; do
    plat=$WORK/platforms/drupal-$p
    mkdir -p "$plat/modules" "$plat/sites"
    for i in $(seq 1 400); do
        head -c 1800 /dev/urandom | base64 >"$plat/modules/file$i.php"
    done
done
ss init --encrypt >/dev/null
for s in $(seq 1 10); do
    p=$(( (s % 2) + 1 ))
    plat=$WORK/platforms/drupal-$p
    site=$plat/sites/site$s.example
    mkdir -p "$site/files"
    printf '<?php\n' >"$site/settings.php"
    for i in $(seq 1 20); do
        head -c $(( 20000 + i * 2000 )) /dev/urandom >"$site/files/upload$i.bin"
    done
    ss site add "site$s.example" --platform "$plat" >/dev/null
done
if [ -n "${S3_ENDPOINT:-}" ]; then
    URL=s3://$S3_BUCKET/nightly-$(date +%s)
    ss remote add offsite "$URL" --endpoint "$S3_ENDPOINT" --region "${AWS_REGION:-garage}" >/dev/null
    echo "remote: Garage at $S3_ENDPOINT"
else
    mkdir -p "$WORK/nas"
    URL=file://$WORK/nas
    ss remote add offsite "$URL" >/dev/null
    echo "remote: folder"
fi
ss snapshot --all --kind scheduled >/dev/null
echo "first push: $(ss push --json)"
for night in 1 2 3; do
    for s in $(seq 1 10); do
        p=$(( (s % 2) + 1 ))
        site=$WORK/platforms/drupal-$p/sites/site$s.example
        head -c 50000 /dev/urandom >"$site/files/night$night.bin"
        head -c 3000 /dev/urandom >"$site/files/upload1.bin"
    done
    ss snapshot --all --kind scheduled >/dev/null
    echo "night $night push: $(ss push --json)"
done

ID=$(ss list site3.example --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
times=()
for r in $(seq 1 "$RUNS"); do
    fresh=$WORK/fresh-$r
    rm -rf "$fresh" "$WORK/out-$r"
    "$SITESNAP" --repo "$fresh" remote add offsite "$URL" ${S3_ENDPOINT:+--endpoint "$S3_ENDPOINT" --region "${AWS_REGION:-garage}"} >/dev/null
    sync
    t0=$(date +%s.%N)
    "$SITESNAP" --repo "$fresh" restore "$ID" --from offsite --target "$WORK/out-$r" >"$WORK/restore-$r.log"
    t1=$(date +%s.%N)
    t=$(echo "$t1 - $t0" | bc -l)
    times+=("$t")
    echo "restore --from run $r: $t s; $(grep fetched "$WORK/restore-$r.log")"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "restore --from median: " a[int((NR+1)/2)] " s"}'
echo "local repository: $(du -sb "$WORK/repo/data" | cut -f1) bytes"
