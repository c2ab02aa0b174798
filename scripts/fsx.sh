#!/usr/bin/env bash
# Data-integrity run: fsx (the Rust rewrite of the classic file exerciser,
# fsx 0.3.2 from crates.io, installed once into ~/.cache/ipfs-kit-fuse)
# does N random reads, writes, mmap reads/writes and truncates on one file
# and checks every byte against its model. Runs against /local and /memory
# of a fresh mount of the built-in default config, then against an S3 mount
# (moto from scripts/moto.sh, started on 127.0.0.1 and stopped here) with
# close/reopen and fsync added (scripts/fsx-s3.toml), so every reopen reads
# back what the last close uploaded.
#
# Usage: bash scripts/fsx.sh [OPS] [SEED]   (OPS default 20000, SEED default 1)
# IKF_FSX_S3=0 skips the S3 run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OPS=${1:-20000}
SEED=${2:-1}
FSX=$(ikf_cargo_tool fsx 0.3.2)
BIN=$(ikf_binary)
ikf_mount "$BIN"

status=0
# run_fsx MOUNT [FSX ARGS...]: one fsx run on $IKF_MNT/MOUNT.
run_fsx() {
  local m=$1
  shift
  local dir=$IKF_MNT/$m/fsx
  mkdir -p "$dir" "$IKF_TMP/fsx-log-$m"
  local start=$SECONDS
  if "$FSX" -N "$OPS" -S "$SEED" -P "$IKF_TMP/fsx-log-$m" "$@" "$dir/testfile" > "$IKF_TMP/fsx-$m.out" 2>&1; then
    echo "fsx /$m: $OPS ops OK in $((SECONDS - start))s ($(tail -n 1 "$IKF_TMP/fsx-$m.out"))"
  else
    status=1
    echo "fsx /$m: FAILED after $((SECONDS - start))s; last lines:"
    tail -n 40 "$IKF_TMP/fsx-$m.out"
    ls "$IKF_TMP/fsx-log-$m" >/dev/null 2>&1 && tail -n 20 "$IKF_TMP"/fsx-log-$m/* 2>/dev/null || true
  fi
}
for m in local memory; do
  run_fsx "$m"
done
ikf_unmount

if [[ "${IKF_FSX_S3:-1}" != 0 ]]; then
  MOTO=$(bash scripts/moto.sh)
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
  MOTO_PID=$!
  stop_moto() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
  trap 'ikf_unmount; stop_moto' EXIT
  python3 - "$PORT" <<'PY'
import sys, time, urllib.request
port = sys.argv[1]
for _ in range(300):
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/fsx-bucket", method="PUT", headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"})
        urllib.request.urlopen(req, timeout=5)
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("moto did not start")
PY
  CONFIG=$(mktemp /tmp/ikf-fsx-s3.XXXXXX.toml)
  cat > "$CONFIG" <<TOML
[[mount]]
path = "/s3"
scheme = "s3"
[mount.options]
bucket = "fsx-bucket"
endpoint = "http://127.0.0.1:$PORT"
region = "us-east-1"
access_key_id = "test"
secret_access_key = "test"
disable_config_load = "true"
TOML
  ikf_mount "$BIN" "" "$CONFIG"
  # ikf_mount sets its own EXIT trap: stop moto too, however the run ends.
  trap 'ikf_unmount; stop_moto' EXIT
  run_fsx s3 -f scripts/fsx-s3.toml
  ikf_unmount
  stop_moto
  rm -f "$CONFIG"
fi
exit $status
