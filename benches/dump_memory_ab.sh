#!/bin/sh
# Peak RSS of snapshots of one large MariaDB database taken by several sitesnap binaries in
# turn (A B A B ...), each into a fresh repository, in one sitting (issue 14). Generates the
# database of benches/dump_memory.sh once (ROWS rows, default 7800000: a 1.9 GB dump), then for
# each of RUNS rounds (default 1) runs every binary of BINS (space separated paths) under
# `/usr/bin/time -v`, printing peak RSS, elapsed time, the dump's chunk count, its catalogue
# list bytes and the catalogue's size. SECOND=1 also takes a second snapshot of the unchanged
# database into the same repository and prints its peak RSS. KEEP_DB=1 keeps the database (DB
# names it) for reuse.
set -eu
cd "$(dirname "$0")/.."
. benches/common/big_table.sh
MYSQL_ARGS=${MYSQL_ARGS:-}
ROWS=${ROWS:-7800000}
RUNS=${RUNS:-1}
DB=${DB:-ssnap_bench_memab_$$}
URL_PREFIX=${URL_PREFIX:-mysql://root@localhost}
URL_QUERY=${URL_QUERY-?socket=/run/mysqld/mysqld.sock}
URL="$URL_PREFIX/$DB$URL_QUERY"
WORK=${WORK:-$(pwd)/bench-data/dump_memory_ab}
sql() { mariadb $MYSQL_ARGS --batch --skip-column-names "$@"; }
cleanup() {
    [ "${KEEP_DB:-0}" = 1 ] || sql -e "DROP DATABASE IF EXISTS $DB" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/platform/sites/big.example"
echo '<?php' >"$WORK/platform/index.php"

if [ "$(sql -e "SHOW DATABASES LIKE '$DB'")" != "$DB" ]; then
echo "generating $DB ($ROWS rows) ..."
sql -e "CREATE DATABASE $DB"
{ big_table_sql "$ROWS"; echo "DROP TABLE k;"; } | sql "$DB"
fi

run=0
while [ "$run" -lt "$RUNS" ]; do
    run=$((run + 1))
    for BIN in $BINS; do
        R="$WORK/repo"
        rm -rf "$R"
        SITESNAP_REPO="$R" "$BIN" init >/dev/null
        SITESNAP_REPO="$R" "$BIN" site add big.example --platform "$WORK/platform" --db "$URL" >/dev/null
        load=$(cut -d' ' -f1 /proc/loadavg)
        SITESNAP_REPO="$R" /usr/bin/time -v "$BIN" snapshot big.example --json >"$WORK/snap.json" 2>"$WORK/snap.time"
        rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/snap.time")
        el=$(awk -F': ' '/Elapsed/ {print $2}' "$WORK/snap.time")
        q="SELECT COUNT || ' chunks, list ' || length(b.chunks) || ' B' FROM snapshots s JOIN blobs b ON b.id = s.db_dump"
        shape=$(sqlite3 "$R/catalog.sqlite" "$(echo "$q" | sed 's|COUNT|coalesce(b.count, length(b.chunks) / 32)|')" 2>/dev/null ||
            sqlite3 "$R/catalog.sqlite" "$(echo "$q" | sed 's|COUNT|length(b.chunks) / 32|')")
        cat_bytes=$(du -cb "$R"/catalog.sqlite* | tail -1 | cut -f1)
        added=$(grep -E '"bytes_added"' "$WORK/snap.json" | tr -dc 0-9)
        echo "run $run $(basename "$BIN"): peak RSS ${rss} kB, elapsed $el, load $load, dump $shape, catalogue $cat_bytes B, bytes_added $added"
        if [ "${SECOND:-0}" = 1 ]; then
            SITESNAP_REPO="$R" /usr/bin/time -v "$BIN" snapshot big.example --json >"$WORK/snap.json" 2>"$WORK/snap.time"
            rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/snap.time")
            added=$(grep -E '"bytes_added"' "$WORK/snap.json" | tr -dc 0-9)
            echo "run $run $(basename "$BIN") second snapshot (unchanged): peak RSS ${rss} kB, bytes_added $added"
        fi
    done
done
