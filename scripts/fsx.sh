#!/usr/bin/env bash
# Data-integrity run: fsx (the Rust rewrite of the classic file exerciser,
# fsx 0.3.2 from crates.io, installed once into ~/.cache/ipfs-kit-fuse)
# does N random reads, writes, mmap reads/writes and truncates on one file
# and checks every byte against its model. Runs against /local and /memory
# of a fresh mount of the built-in default config.
#
# Usage: bash scripts/fsx.sh [OPS] [SEED]   (OPS default 20000, SEED default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OPS=${1:-20000}
SEED=${2:-1}
FSX=$(ikf_cargo_tool fsx 0.3.2)
BIN=$(ikf_binary)
ikf_mount "$BIN"

status=0
for m in local memory; do
  dir=$IKF_MNT/$m/fsx
  mkdir -p "$dir" "$IKF_TMP/fsx-log-$m"
  start=$SECONDS
  if "$FSX" -N "$OPS" -S "$SEED" -P "$IKF_TMP/fsx-log-$m" "$dir/testfile" > "$IKF_TMP/fsx-$m.out" 2>&1; then
    echo "fsx /$m: $OPS ops OK in $((SECONDS - start))s ($(tail -n 1 "$IKF_TMP/fsx-$m.out"))"
  else
    status=1
    echo "fsx /$m: FAILED after $((SECONDS - start))s; last lines:"
    tail -n 40 "$IKF_TMP/fsx-$m.out"
    ls "$IKF_TMP/fsx-log-$m" >/dev/null 2>&1 && tail -n 20 "$IKF_TMP"/fsx-log-$m/* 2>/dev/null || true
  fi
done
exit $status
