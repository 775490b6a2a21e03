#!/usr/bin/env bash
# Prune and gc on a repository with 1,000 snapshots (10 sites x 100 nights).
#
# Builds a Drupal-like platform (2,000 code files) shared by 10 sites, each with uploads, a
# rotating 64 KiB cache file and an SQLite database. Each "night" every site gets a new upload,
# a new cache file and new database rows, the platform changes 3 files every 10th night, and
# `sitesnap snapshot --all --kind scheduled` runs. The nights are then spread one day apart in
# the catalogue (release builds ignore SITESNAP_TEST_NOW, so the times are rewritten with the
# sqlite3 CLI). Then, with hyperfine (each run on a fresh copy of the repository):
#   prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12   (1,000 snapshots -> ~150)
#   gc after that prune                                       (marks, repacks, deletes)
#   gc --dry-run on the full 1,000-snapshot repository        (the cost of marking alone)
#   verify --read-data after prune + gc
#
# Needs: cargo, sqlite3, hyperfine. Usage: benches/prune_gc.sh [WORKDIR]
# Env: NIGHTS (100), SITES (10), RUNS (5), BIN (target/release/sitesnap).
set -euo pipefail
cd "$(dirname "$0")/.."
NIGHTS=${NIGHTS:-100}
SITES=${SITES:-10}
RUNS=${RUNS:-5}
BIN=${BIN:-$PWD/target/release/sitesnap}
WORK=${1:-$(mktemp -d /tmp/sitesnap-prune-gc.XXXXXX)}
mkdir -p "$WORK"
cd "$WORK"
[ -x "$BIN" ] || (cd - >/dev/null && cargo build --release --bin sitesnap)
export SITESNAP_REPO=$WORK/repo.full

rand() { head -c "$1" /dev/urandom | base64 -w 76; }

if [ ! -f "$WORK/repo.full/catalog.sqlite" ]; then
    rm -rf platform conf repo.full
    P=$WORK/platform
    for d in includes modules/node modules/system sites/all/modules/views themes/bartik; do
        mkdir -p "$P/$d"
    done
    mkdir -p "$P/sites/default" conf
    dirs=(includes modules/node modules/system sites/all/modules/views themes/bartik)
    for i in $(seq 1 2000); do
        d=${dirs[$((i % 5))]}
        { echo "<?php // file $i"; rand $((200 + (i * 37) % 3000)); } >"$P/$d/file$i.php"
    done
    echo '<?php $sites = array();' >"$P/sites/sites.php"
    "$BIN" init >/dev/null
    for s in $(seq 1 "$SITES"); do
        uri=site$s.example.com
        mkdir -p "$P/sites/$uri/files"
        echo "<?php \$base_url = 'http://$uri';" >"$P/sites/$uri/settings.php"
        for j in $(seq 1 30); do rand 20000 >"$P/sites/$uri/files/up$j.txt"; done
        sqlite3 "$P/sites/$uri/site.sqlite" \
            "CREATE TABLE node (nid INTEGER PRIMARY KEY, title TEXT, body TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000)
             INSERT INTO node (title, body) SELECT 'node ' || x, hex(randomblob(100)) FROM c;"
        echo "server { root $P; }" >"conf/$uri.vhost"
        echo "<?php \$aliases['$uri'] = array('root' => '$P');" >"conf/$uri.alias.drushrc.php"
        "$BIN" site add "$uri" --platform "$P" --db "sqlite://$P/sites/$uri/site.sqlite" \
            --bind "$WORK/conf/$uri.vhost" --bind "$WORK/conf/$uri.alias.drushrc.php"
    done
    start=$(date +%s)
    for n in $(seq 1 "$NIGHTS"); do
        for s in $(seq 1 "$SITES"); do
            site=$P/sites/site$s.example.com
            rand 15000 >"$site/files/night$n.txt"
            head -c 65536 /dev/urandom >"$site/files/cache.bin"
            sqlite3 "$site/site.sqlite" \
                "UPDATE node SET body = hex(randomblob(100)) WHERE nid % 97 = $n % 97;
                 INSERT INTO node (title, body) VALUES ('night $n', hex(randomblob(300)));"
        done
        if [ $((n % 10)) -eq 0 ]; then
            for i in 1 2 3; do rand 1000 >>"$P/includes/file$((n + i)).php"; done
        fi
        "$BIN" snapshot --all --kind scheduled
    done
    echo "created $((NIGHTS * SITES)) snapshots in $(($(date +%s) - start)) s"
    # One night per day, 03:00 UTC, the last night yesterday.
    sqlite3 repo.full/catalog.sqlite \
        "WITH r AS (SELECT id, (row_number() OVER (ORDER BY time, id) - 1) / $SITES AS night
                    FROM snapshots)
         UPDATE snapshots SET time = strftime('%Y-%m-%dT03:00:00.000Z', 'now',
                '-' || ($NIGHTS - (SELECT night FROM r WHERE r.id = snapshots.id)) || ' days');"
fi

count=$(sqlite3 repo.full/catalog.sqlite "SELECT count(*) FROM snapshots")
chunks=$(sqlite3 repo.full/catalog.sqlite "SELECT count(*) FROM chunks")
echo "repository: $count snapshots, $chunks chunks, $(du -sh repo.full/data | cut -f1) of packs"

POLICY="--keep-daily 7 --keep-weekly 4 --keep-monthly 12"
# The state after one prune, for the gc runs.
rm -rf repo.pruned && cp -a repo.full repo.pruned
SITESNAP_REPO=$WORK/repo.pruned "$BIN" prune $POLICY
echo "after prune: $(sqlite3 repo.pruned/catalog.sqlite "SELECT count(*) FROM snapshots") snapshots"
rm -rf repo.gcd && cp -a repo.pruned repo.gcd
SITESNAP_REPO=$WORK/repo.gcd "$BIN" gc --json >gc-report.json
echo "gc: $(grep -E '"(bytes_freed|packs_deleted|packs_repacked|chunks_removed)"' gc-report.json | tr -d ' \n')"

hyperfine --runs "$RUNS" --export-json prune.json \
    --prepare "rm -rf $WORK/repo && cp -a $WORK/repo.full $WORK/repo" \
    "SITESNAP_REPO=$WORK/repo $BIN prune $POLICY"
hyperfine --runs "$RUNS" --export-json gc.json \
    --prepare "rm -rf $WORK/repo && cp -a $WORK/repo.pruned $WORK/repo" \
    "SITESNAP_REPO=$WORK/repo $BIN gc"
hyperfine --runs "$RUNS" --export-json mark.json \
    "SITESNAP_REPO=$WORK/repo.full $BIN gc --dry-run"
hyperfine --runs "$RUNS" --export-json verify.json \
    "SITESNAP_REPO=$WORK/repo.gcd $BIN verify --read-data"
for f in prune gc mark verify; do
    printf '%-7s median %s s\n' "$f" \
        "$(grep -o '"median": *[0-9.]*' $f.json | head -1 | grep -o '[0-9.]*$')"
done
echo "work dir: $WORK"
