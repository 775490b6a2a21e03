#!/bin/bash
# Helper of scripts/cli-compare.sh: one world, one binary. usage: cli-compare-world.sh BINARY ROOT old|new
# Runs the same ~70 commands against one sitesnap binary in a fresh world under $2.
# usage: cmpcli.sh BINARY ROOT
B=$1; R=$2
rm -rf "$R"; mkdir -p "$R/out"
export SITESNAP_REPO="$R/repo" TZ=UTC
P="$R/plat"; mkdir -p "$P/sites/a.example.com/files" "$P/sites/b.example.com" "$P/core"
echo "<?php // core" > "$P/index.php"; echo core > "$P/core/lib.php"
echo "settings a" > "$P/sites/a.example.com/settings.php"
echo "settings b" > "$P/sites/b.example.com/settings.php"
python3 -c "import sqlite3;c=sqlite3.connect('$R/a.sqlite');c.execute('create table t(x)');c.execute('insert into t values (1)');c.commit()"
echo "vhost a" > "$R/vhost-a.conf"
N=0
fix() { find "$R/plat" "$R/vhost-a.conf" -exec touch -h -d 2026-01-01T00:00:00Z {} + ; }
fix
run() { # run NAME [ENV=..] -- args
  local name=$1; shift; N=$((N+1))
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" "$B" "$@" > "$R/out/$(printf %02d $N)-$name.out" 2> "$R/out/$(printf %02d $N)-$name.err" < /dev/null
  echo "rc=$?" >> "$R/out/$(printf %02d $N)-$name.err"
}
ids() { "$B" list --json | python3 -c "import json,sys;print(' '.join(s['id'] for s in json.load(sys.stdin)))"; }
T=SITESNAP_TEST_NOW
run help -- --help
run help-prune -- prune --help
run help-list -- list --help
run version -- --version
run list-noinit -- list
run init -- init
run init-again -- init
run add-a -- site add a.example.com --platform "$P" --db "sqlite://$R/a.sqlite" --bind "$R/vhost-a.conf" -v
run add-b -- site add b.example.com --platform "$P" --keep-daily 3 --keep-last 1 -v
run add-baduri -- site add "bad uri" --platform "$P"
run add-noplat -- site add c.example.com
run add-keep0 -- site add c.example.com --platform "$P" --keep-last 0
run add-dup -- site add a.example.com --platform "$P"
run site-list -- site list
run site-list-json -- site list --json
run site-show -- site show a.example.com
run site-show-json -- site show b.example.com --json
run site-show-missing -- site show nope.example.com
run snap-none -- snapshot
run snap-unknown -- snapshot nope.example.com
run snap-badkind -- snapshot a.example.com --kind weird
for t in 2026-01-01T10:00:00Z 2026-01-01T15:00:00Z 2026-01-02T09:00:00Z 2026-01-09T09:00:00Z 2026-02-03T09:00:00Z; do
  echo "change $t" >> "$P/sites/a.example.com/files/log.txt"
  fix; run snap-a $T=$t -- snapshot a.example.com -v --label "at $t"
done
run snap-all-json $T=2026-02-04T09:00:00Z -- snapshot --all --json
run snap-b-sched $T=2026-02-05T09:00:00Z -- snapshot b.example.com --kind scheduled --metrics "$R/metrics.prom"
run checkpoint $T=2026-02-06T09:00:00Z -- checkpoint a.example.com --label before-upgrade
run checkpoint-json $T=2026-02-06T10:00:00Z -- checkpoint b.example.com --label x --json
cp "$R/metrics.prom" "$R/out/metrics.prom.txt"
I=($(ids))
run list -- list
run list-a -- list a.example.com
run list-json -- list --json
run list-json-b -- list b.example.com --json
run list-missing -- list nope.example.com
run show -- show "${I[0]}"
run show-prefix -- show "${I[1]:0:6}"
run show-json -- show "${I[2]}" --json
run show-bad -- show zzzzzz
run pin -- pin "${I[1]}"
run pin-again -- pin "${I[1]}"
run unpin -- unpin "${I[1]}"
run pin3 -- pin "${I[2]}"
run prune-dry-stored $T=2026-02-10T00:00:00Z -- prune --dry-run
run prune-dry-last2 $T=2026-02-10T00:00:00Z -- prune --dry-run --keep-last 2
run prune-dry-daily $T=2026-02-10T00:00:00Z -- prune --dry-run --keep-daily 2
run prune-dry-mix $T=2026-02-10T00:00:00Z -- prune --dry-run --keep-hourly 3 --keep-weekly 1 --keep-monthly 1 --keep-yearly 1
run prune-dry-within $T=2026-02-10T00:00:00Z -- prune --dry-run --keep-within 1w2d
run prune-within-bad -- prune --dry-run --keep-within 3x
run prune-keep0 -- prune --dry-run --keep-last 0
run prune-json-dry $T=2026-02-10T00:00:00Z -- prune --dry-run --json --keep-last 1
run prune-json-site $T=2026-02-10T00:00:00Z -- prune --json --dry-run --site a.example.com --keep-daily 1
run prune-site-missing -- prune --dry-run --site nope.example.com --keep-last 1
run prune-site-nopolicy $T=2026-02-10T00:00:00Z -- prune --dry-run --site a.example.com
run set-policy -- site set a.example.com --keep-last 3 -v
run set-nothing -- site set a.example.com
run set-conflict -- site set a.example.com --keep-last 2 --clear-policy
run site-show-policy -- site show a.example.com
run prune-dry-both $T=2026-02-10T00:00:00Z -- prune --dry-run
run prune-json-real $T=2026-02-10T00:00:00Z -- prune --json
run list-after -- list
run prune-real-v $T=2026-02-10T00:00:00Z -- prune -v --site b.example.com --keep-monthly 1
run prune-real-quiet $T=2026-02-10T00:00:00Z -- prune --keep-last 5
I=($(ids))
run forget-pinned -- forget "${I[1]}"
run forget-bad -- forget zzzzzz "${I[0]}"
run forget -- forget "${I[0]}"
run forget-force -- forget --force "${I[1]}"
I=($(ids))
run gc-dry -- gc --dry-run
run gc-dry-json -- gc --dry-run --json
run gc-v -- gc -v
run gc-json -- gc --json
run verify -- verify
run verify-v -- verify -v
run verify-json -- verify --json
run verify-read -- verify --read-data -v
run diff-two -- diff "${I[0]}" "${I[1]}"
run diff-json -- diff "${I[0]}" "${I[2]}" --json
echo "live change" >> "$P/sites/a.example.com/files/log.txt"; fix
run diff-live -- diff "${I[0]}"
run diff-conflict -- diff "${I[0]}" "${I[1]}" --live
run export-v -- export "${I[0]}" -o "$R/exp.tar" -v
run export-json -- export "${I[0]}" -o "$R/exp2.tar.gz" --json
run doctor -- doctor
run doctor-json -- doctor --json
run doctor-a -- doctor a.example.com
run restore-dry -- restore "${I[0]}" --dry-run
run restore-dry-json -- restore "${I[0]}" --dry-run --json
run restore-noyes -- restore "${I[0]}"
run restore-yes $T=2026-02-11T00:00:00Z -- restore "${I[0]}" --yes
run recover -- recover
run discover-noarg -- discover
run lockwait -- --lock-wait 5 list
run lockwait-after -- list --lock-wait 5 -v
run q-v-conflict -- -q -v list
run remove-b -- site remove b.example.com
run clear-policy -- site set a.example.com --clear-policy -v
run remove-b-force -- site remove b.example.com --forget-snapshots -v
run list-final -- list --json
if [ "$3" = new ]; then G1=(--json site list); G2=(--json list b.example.com); G3=(-v --repo "$R/repo" --lock-wait 3 gc --dry-run); G4=(--json prune --dry-run --keep-last 2); G5=(--json verify)
else G1=(site list --json); G2=(list b.example.com --json); G3=(gc --dry-run -v --repo "$R/repo" --lock-wait 3); G4=(prune --dry-run --keep-last 2 --json); G5=(verify --json); fi
run g-site-list -- "${G1[@]}"
run g-list -- "${G2[@]}"
run g-gc -- "${G3[@]}"
run g-prune $T=2026-02-10T00:00:00Z -- "${G4[@]}"
run g-verify -- "${G5[@]}"
# ids -> ordinal names, for masking
( ids; "$B" list --json >/dev/null ) > "$R/ids.txt" 2>/dev/null
echo "$N commands"
