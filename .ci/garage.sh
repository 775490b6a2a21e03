#!/usr/bin/env bash
# .ci/garage.sh - throw-away single-node Garage (S3-compatible object store) on 127.0.0.1 for
# sitesnap's remote-storage tests. Adapted from the team's reference start script.
#
# Usage:
#   .ci/garage.sh install               # `cargo install garage --locked` if no garage binary is found
#   eval "$(.ci/garage.sh start)"       # start; exports AWS_*/S3_* + GARAGE_PID/GARAGE_DIR
#   ... run tests ...
#   .ci/garage.sh stop                  # stop the server started above (uses $GARAGE_PID/$GARAGE_DIR)
#
# Env knobs: GARAGE_BIN (default /tmp/s3lab/garage/bin/garage, else `garage` on PATH),
#   GARAGE_S3_PORT (3900), GARAGE_RPC_PORT (3901), GARAGE_BUCKET (test-bucket),
#   GARAGE_BASE (parent of the temp dir, default ${TMPDIR:-/tmp}), GARAGE_KEEP_DIR=1 (keep data on stop).
# stdout carries only the `export` lines; progress and errors go to stderr.

_garage_bin() {
  if [ -n "${GARAGE_BIN:-}" ]; then echo "$GARAGE_BIN"
  elif [ -x "$HOME/.cargo/bin/garage" ]; then echo "$HOME/.cargo/bin/garage"
  elif [ -x /tmp/s3lab/garage/bin/garage ]; then echo /tmp/s3lab/garage/bin/garage
  else command -v garage || { echo "garage binary not found" >&2; return 1; }
  fi
}

_hex() { # _hex <nbytes>: random lowercase hex
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex "$1"
  else od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; fi
}

garage_start() (
  set -euo pipefail
  local t0 bin s3_port rpc_port bucket dir cfg pid node_id key_id secret endpoint i p code
  t0=$(date +%s%N)
  bin=$(_garage_bin)
  s3_port=${GARAGE_S3_PORT:-3900}
  rpc_port=${GARAGE_RPC_PORT:-3901}
  bucket=${GARAGE_BUCKET:-test-bucket}
  endpoint="http://127.0.0.1:${s3_port}"

  for p in "$s3_port" "$rpc_port"; do   # fail fast if a port is taken
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port 127.0.0.1:$p already in use" >&2; exit 1
    fi
  done

  dir=$(mktemp -d "${GARAGE_BASE:-${TMPDIR:-/tmp}}/garage.XXXXXX")
  cfg="$dir/garage.toml"
  mkdir -p "$dir/meta" "$dir/data"
  umask 077
  cat >"$cfg" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:${rpc_port}"
rpc_public_addr = "127.0.0.1:${rpc_port}"
rpc_secret = "$(_hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:${s3_port}"
root_domain = ".s3.garage.localhost"
EOF
  g() { "$bin" -c "$cfg" "$@"; }

  # stdout/stderr to a file: required so that `eval "$(start-garage.sh)"` does not hang
  "$bin" -c "$cfg" server >"$dir/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/garage.pid"
  echo "garage: pid $pid, dir $dir" >&2

  fail() { echo "garage: $*" >&2; tail -20 "$dir/server.log" >&2; kill "$pid" 2>/dev/null || true; exit 1; }

  # 1. wait until the daemon answers RPC
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || fail "server exited early"
    g status >/dev/null 2>&1 && break
    [ "$i" = 150 ] && fail "no answer after 30 s"
    sleep 0.2
  done

  # 2. layout, bucket, key
  node_id=$(g node id -q 2>/dev/null | cut -d@ -f1)
  [ -n "$node_id" ] || fail "could not read node id"
  {
    g layout assign -z dc1 -c 1G "$node_id"
    g layout apply --version 1
    g bucket create "$bucket"
    key_id="GK$(_hex 12)"; secret=$(_hex 32)
    g key import --yes -n test-key "$key_id" "$secret"
    g bucket allow --read --write --owner "$bucket" --key test-key
  } >>"$dir/setup.log" 2>&1 || fail "setup failed, see $dir/setup.log"

  # 3. wait until a signed S3 ListObjectsV2 on the bucket returns 200
  for i in $(seq 1 150); do
    code=$(curl -s -o /dev/null -w "%{http_code}" --aws-sigv4 "aws:amz:garage:s3" \
             -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
             --user "$key_id:$secret" "$endpoint/$bucket?list-type=2" || true)
    [ "$code" = 200 ] && break
    [ "$i" = 150 ] && fail "S3 not ready (last HTTP code $code)"
    sleep 0.2
  done
  echo "garage: ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2

  cat <<EOF
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=garage
export AWS_DEFAULT_REGION=garage
export S3_ENDPOINT=$endpoint
export S3_BUCKET=$bucket
export GARAGE_PID=$pid
export GARAGE_DIR=$dir
export GARAGE_CONFIG_FILE=$cfg
EOF
)

# garage_stop [dir]: kill only the pid recorded by garage_start, then remove its temp dir.
garage_stop() {
  local dir=${1:-${GARAGE_DIR:-}} pid=${GARAGE_PID:-} i
  [ -n "$dir" ] && [ -f "$dir/garage.pid" ] && pid=$(cat "$dir/garage.pid")
  [ -n "$pid" ] || { echo "garage_stop: no pid (set GARAGE_DIR or GARAGE_PID)" >&2; return 1; }
  # guard against pid reuse: only signal it if it is still our garage server
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "garage.* server"; then
    kill -TERM "$pid"
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "garage: stopped pid $pid" >&2
  else
    echo "garage: pid $pid not running (or not garage); nothing killed" >&2
  fi
  if [ -n "$dir" ] && [ -z "${GARAGE_KEEP_DIR:-}" ] && [ -f "$dir/garage.toml" ]; then rm -rf "$dir"; fi
}

# executed (not sourced)?
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-start}" in
    install)
      if _garage_bin >/dev/null 2>&1; then echo "garage: $(_garage_bin)" >&2
      else echo "garage: building it once with cargo install (about 10 minutes on 2 cores)" >&2
           cargo install garage --locked >&2; fi ;;
    start) garage_start ;;
    stop)  garage_stop "${2:-}" ;;
    *) echo "usage: $0 [install|start|stop [dir]]" >&2; exit 2 ;;
  esac
fi
