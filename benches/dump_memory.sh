#!/bin/sh
# Peak memory of a snapshot whose database dump is over 1 GB (issue 4; goal: under 150 MB).
#
# Generates a MariaDB database (a 4.2M-row table of ~240-byte rows and a table of 1,000
# 64 KB blobs: about 1.15 GB of dump), snapshots it with the release binary under
# `/usr/bin/time -v`, and prints the peak RSS. /usr/bin/time reports the largest of sitesnap
# and the children it waited for (mariadb-dump, the connection check), so mariadb-dump is also
# measured alone.
#
# Needs a MariaDB server reachable with the `mariadb` client's defaults plus MYSQL_ARGS; sitesnap
# reaches it at "$URL_PREFIX/<database>$URL_QUERY" (default mysql://root@localhost and
# ?socket=/run/mysqld/mysqld.sock).
# ROWS sets the size of the big table (default 4200000). LOAD=1 (default) also loads the
# snapshot's dump into a new database through `examples/load_snapshot.rs` (Database::load fed
# by capture::blob_reader, as a restore does) and reports that peak RSS too.
set -eu
cd "$(dirname "$0")/.."
. benches/common/big_table.sh
MYSQL_ARGS=${MYSQL_ARGS:-}
ROWS=${ROWS:-4200000}
DB=ssnap_bench_memory_$$
URL_PREFIX=${URL_PREFIX:-mysql://root@localhost}
URL_QUERY=${URL_QUERY-?socket=/run/mysqld/mysqld.sock}
URL="$URL_PREFIX/$DB$URL_QUERY"
WORK=$(pwd)/bench-data/dump_memory
sql() { mariadb $MYSQL_ARGS --batch --skip-column-names "$@"; }
cleanup() {
    sql -e "DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS ${DB}_restored" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --quiet --release --bin sitesnap --example load_snapshot
BIN=$(pwd)/target/release/sitesnap

echo "generating $DB ..."
sql -e "CREATE DATABASE $DB"
{ big_table_sql "$ROWS"; cat <<EOF
CREATE TABLE cache_page (cid INT PRIMARY KEY, data LONGBLOB NOT NULL) ENGINE=InnoDB;
INSERT INTO cache_page
  SELECT c.n, (SELECT UNHEX(GROUP_CONCAT(SHA2(CONCAT(c.n, '-', r.n), 512) SEPARATOR '')) FROM k r)
  FROM k c;
DROP TABLE k;
EOF
} | sql "$DB"

mkdir -p "$WORK/platform/sites/big.example"
echo '<?php' >"$WORK/platform/index.php"
export SITESNAP_REPO="$WORK/repo"
"$BIN" init >/dev/null
"$BIN" site add big.example --platform "$WORK/platform" --db "$URL"

echo "mariadb-dump alone:"
/usr/bin/time -v mariadb-dump $MYSQL_ARGS --single-transaction --quick --routines --triggers \
    --events --hex-blob --default-character-set=utf8mb4 --no-tablespaces --skip-dump-date "$DB" \
    2>"$WORK/dump.time" | wc -c | awk '{printf "  dump size: %.0f MB\n", $1 / 1e6}'
grep -E "Maximum resident|Elapsed" "$WORK/dump.time" | sed 's/^\s*/  /'

echo "sitesnap snapshot:"
/usr/bin/time -v "$BIN" snapshot big.example --json >"$WORK/snap.json" 2>"$WORK/snap.time"
grep -E "Maximum resident|Elapsed" "$WORK/snap.time" | sed 's/^\s*/  /'
grep -E '"(db_bytes|bytes_added|duration_ms)"' "$WORK/snap.json" | sed 's/^\s*/  /'

[ "${LOAD:-1}" = 1 ] || exit 0
echo "load of that snapshot's dump into a new database (examples/load_snapshot.rs):"
ID=$(grep -E '"id"' "$WORK/snap.json" | head -1 | sed 's/.*"id": "\([0-9a-f]*\)".*/\1/')
LOAD_URL="$URL_PREFIX/${DB}_restored$URL_QUERY"
/usr/bin/time -v target/release/examples/load_snapshot "$WORK/repo" "$ID" "$LOAD_URL" 2>"$WORK/load.time" ||
    { cat "$WORK/load.time"; exit 1; }
grep -E "Maximum resident|Elapsed" "$WORK/load.time" | sed 's/^\s*/  /'
echo "  rows: $(sql "${DB}_restored" -e 'SELECT COUNT(*) FROM big') of $ROWS, checksums equal: $(
    a=$(sql "$DB" -e 'CHECKSUM TABLE big, cache_page' | cut -f2 | tr '\n' ' ')
    b=$(sql "${DB}_restored" -e 'CHECKSUM TABLE big, cache_page' | cut -f2 | tr '\n' ' ')
    [ "$a" = "$b" ] && echo yes || echo "NO ($a / $b)")"
