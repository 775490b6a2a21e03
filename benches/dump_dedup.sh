#!/bin/sh
# Dump deduplication of a ~200 MB MariaDB database (issue 4).
#
# 1. Runs the ignored test `mysql_dump_dedup_200mb` (tests/it/db/mariadb.rs): the real sitesnap binary
#    snapshots a generated database, 1% of its rows are changed in one contiguous id range,
#    snapshot, another 1% picked at random, snapshot; it prints each later snapshot's
#    `bytes_added` as a percentage of the first's.
#    SNAPSHOTS=0 skips this step.
# 2. With CHUNKING=1 (default), dumps the same kind of database three times (before, after
#    the clustered change, after the scattered change) into bench-data/ and runs
#    `examples/dump_chunking.rs` on them to compare chunk parameter sets, for mariadb-dump's
#    default extended INSERTs and for --skip-extended-insert (one row per INSERT).
#
# Needs a MariaDB server: SITESNAP_TEST_MYSQL_URL (default root over /run/mysqld/mysqld.sock);
# step 2 reaches it with the `mariadb` client's own defaults plus MYSQL_ARGS (e.g.
# MYSQL_ARGS="-uroot -h127.0.0.1"). SITESNAP_DEDUP_MB sets the size (default 200).
set -eu
cd "$(dirname "$0")/.."
. benches/common/big_table.sh
MB=${SITESNAP_DEDUP_MB:-200}
export SITESNAP_DEDUP_MB=$MB

if [ "${SNAPSHOTS:-1}" = 1 ]; then
    echo "== sitesnap snapshots (tests/it/db/mariadb.rs mysql_dump_dedup_200mb, $MB MB)"
    cargo test --quiet --test it db::mariadb::mysql_dump_dedup_200mb -- --ignored --nocapture 2>&1 |
        grep -E "dump dedup|test result|panicked|FAILED"
fi

[ "${CHUNKING:-1}" = 1 ] || exit 0

echo "== chunk parameter sets (examples/dump_chunking.rs)"
MYSQL_ARGS=${MYSQL_ARGS:-}
DB=ssnap_bench_dedup_$$
OUT=bench-data/dump_dedup
mkdir -p "$OUT"
ROWS=$((MB * 4200))
sql() { mariadb $MYSQL_ARGS --batch --skip-column-names "$@"; }
cleanup() { sql -e "DROP DATABASE IF EXISTS $DB" || true; }
trap cleanup EXIT
sql -e "CREATE DATABASE $DB"
{ big_table_sql "$ROWS"; echo "DROP TABLE k;"; } | sql "$DB"
dump() {
    # The same flags sitesnap uses (src/db/mysql.rs dump_args), plus "$@".
    mariadb-dump $MYSQL_ARGS --single-transaction --quick --routines --triggers --events \
        --hex-blob --default-character-set=utf8mb4 --no-tablespaces --skip-dump-date "$@" "$DB"
}
dump >"$OUT/a.sql"
dump --skip-extended-insert >"$OUT/a1.sql"
CHANGED=$((ROWS / 100))
FROM=$((ROWS / 2))
sql "$DB" -e "UPDATE big SET title = CONCAT(title, ' (edited)'), changed = changed + 86400 WHERE id >= $FROM AND id < $((FROM + CHANGED))"
dump >"$OUT/b-clustered.sql"
dump --skip-extended-insert >"$OUT/b1-clustered.sql"
sql "$DB" -e "UPDATE big SET title = CONCAT(title, ' (edited)'), changed = changed + 86400 WHERE CRC32(id * 7919) % 100 = 42"
dump >"$OUT/c-scattered.sql"
dump --skip-extended-insert >"$OUT/c1-scattered.sql"
ls -l "$OUT"
cargo build --quiet --release --example dump_chunking
echo "-- extended INSERTs (mariadb-dump default, what sitesnap uses)"
target/release/examples/dump_chunking "$OUT/a.sql" "$OUT/b-clustered.sql" "$OUT/c-scattered.sql"
echo "-- one row per INSERT (--skip-extended-insert)"
target/release/examples/dump_chunking "$OUT/a1.sql" "$OUT/b1-clustered.sql" "$OUT/c1-scattered.sql"
rm -f "$OUT"/*.sql
