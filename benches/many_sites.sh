#!/usr/bin/env bash
# `snapshot --all` of many sites on one platform, against restic's backup of the same trees.
#
# The issue's hosting-scale case: one Drupal-7-sized platform (1,100 code files) with SITES
# sites (100), each with 20 uploads of 20 KB and a 2,000-row SQLite database. Measures, with
# hyperfine (RUNS runs each, medians):
#   first   sitesnap snapshot --all --kind scheduled   (fresh repository each run)
#           restic backup PLATFORM                      (fresh repository each run)
#   repeat  the same with nothing changed               (on the repository of one first run)
# and prints the ratios sitesnap/restic. The SQLite files live inside the site folders, so
# restic backs up exactly what sitesnap reads (sitesnap dumps the database instead of copying
# the file).
#
# With PLATFORMS=2 (issue 14's "two Drupal platforms with 20 sites": PLATFORMS=2 SITES=20) the
# sites are spread over that many platforms (site k on platform k mod PLATFORMS) and restic
# backs up all of them in one run.
#
# Needs: cargo, sqlite3, restic, hyperfine (Debian). Usage: benches/many_sites.sh [WORKDIR]
# Env: SITES (100, in all), PLATFORMS (1), RUNS (5), BIN (target/release/sitesnap).
set -euo pipefail
cd "$(dirname "$0")/.."
SITES=${SITES:-100}
PLATFORMS=${PLATFORMS:-1}
RUNS=${RUNS:-5}
BIN=${BIN:-$PWD/target/release/sitesnap}
WORK=${1:-$(mktemp -d /tmp/sitesnap-many-sites.XXXXXX)}
WORK=$WORK/p$PLATFORMS-s$SITES
[ -x "$BIN" ] || cargo build --release --bin sitesnap
for t in sqlite3 restic hyperfine; do
    command -v $t >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 1; }
done
mkdir -p "$WORK"
cd "$WORK"
rand() { head -c "$1" /dev/urandom | base64 -w 76; }
# Platform k's folder (k = 1..PLATFORMS), and the platform of site s.
plat() { if [ "$PLATFORMS" = 1 ]; then echo "$WORK/platform"; else echo "$WORK/platform$1"; fi; }
site_plat() { plat $(( ($1 - 1) % PLATFORMS + 1 )); }
ALL_P=()
for k in $(seq 1 "$PLATFORMS"); do ALL_P+=("$(plat "$k")"); done

if [ ! -d "$(plat 1)" ]; then
    dirs=(includes modules/node modules/system sites/all/modules/views themes/bartik)
    mkdir -p conf
    for P in "${ALL_P[@]}"; do
        for d in "${dirs[@]}"; do mkdir -p "$P/$d"; done
        for i in $(seq 1 1100); do
            { echo "<?php // file $i"; rand $((200 + (i * 37) % 6000)); } >"$P/${dirs[$((i % 5))]}/f$i.php"
        done
    done
    for s in $(seq 1 "$SITES"); do
        uri=site$s.example.com
        P=$(site_plat "$s")
        mkdir -p "$P/sites/$uri/files"
        echo "<?php \$base_url = 'http://$uri';" >"$P/sites/$uri/settings.php"
        for j in $(seq 1 20); do rand 15000 >"$P/sites/$uri/files/up$j.txt"; done
        sqlite3 "$P/sites/$uri/site.sqlite" \
            "CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT, body TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000)
             INSERT INTO node (title, body) SELECT 'node ' || x, hex(randomblob(100)) FROM c;"
        echo "server { root $P; }" >"conf/$uri.vhost"
        echo "<?php \$aliases['$uri'] = array('root' => '$P');" >"conf/$uri.alias.drushrc.php"
    done
fi

# A registered, empty repository template (site add x SITES is not what is measured).
if [ ! -f tmpl/catalog.sqlite ]; then
    rm -rf tmpl
    SITESNAP_REPO=$WORK/tmpl "$BIN" init >/dev/null
    for s in $(seq 1 "$SITES"); do
        uri=site$s.example.com
        P=$(site_plat "$s")
        SITESNAP_REPO=$WORK/tmpl "$BIN" -q site add "$uri" --platform "$P" \
            --db "sqlite://$P/sites/$uri/site.sqlite" \
            --bind "$WORK/conf/$uri.vhost" --bind "$WORK/conf/$uri.alias.drushrc.php"
    done
fi
export RESTIC_PASSWORD=bench
snap="$BIN --repo $WORK/r snapshot --all --kind scheduled"
hyperfine --runs "$RUNS" --export-json first.json \
    --prepare "rm -rf $WORK/r; cp -a $WORK/tmpl $WORK/r" "$snap" \
    --prepare "rm -rf $WORK/rr; restic init -q --repo $WORK/rr" "restic backup -q --repo $WORK/rr ${ALL_P[*]}" \
    >/dev/null
rm -rf r rr; cp -a tmpl r; $snap >/dev/null; restic init -q --repo rr; restic backup -q --repo rr "${ALL_P[@]}" >/dev/null
hyperfine --runs "$RUNS" --export-json repeat.json --warmup 1 \
    "$snap" "restic backup -q --repo $WORK/rr ${ALL_P[*]}" >/dev/null
python3 - "$SITES" "$PLATFORMS" <<'PY'
import json, statistics as st, sys
def med(f):
    r = json.load(open(f))["results"]
    return [st.median(x["times"]) for x in r]
n, p = sys.argv[1], sys.argv[2]
(sf, rf), (sr, rr) = med("first.json"), med("repeat.json")
print(f"{n} sites on {p} platform(s), medians")
print(f"| | sitesnap snapshot --all | restic backup | sitesnap/restic |")
print(f"|---|---|---|---|")
print(f"| first | {sf:.2f} s | {rf:.2f} s | {sf/rf:.2f}x (target <= 0.5x: {'met' if sf/rf <= 0.5 else 'not met'}) |")
print(f"| repeat, nothing changed | {sr:.2f} s | {rr:.2f} s | {sr/rr:.2f}x (target <= 0.3x: {'met' if sr/rr <= 0.3 else 'not met'}) |")
PY
