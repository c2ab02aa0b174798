#!/usr/bin/env bash
# Every row of issue 12's goal table in one run, one script after another on
# the same release build: local reads, writes and small files against bindfs,
# rclone and the disk (bench.sh), IPFS reads against the node's cat (bench.sh,
# section ipfs), S3 against a raw GET/PUT, s3fs and rclone on Garage
# (bench-s3.sh), and `cid` / `car pack` against openssl and ipfs-car
# (bench-car.sh). Prints each script's table under a heading, with the load
# average before each, to paste into docs/BENCHMARKS.md. Not a test.
#
#   bash scripts/bench-all.sh                 # full: 1 GiB, 10,000 local / 1,000 S3 files, 3 runs
#   SIZE_MB=256 NFILES=2000 RUNS=1 bash scripts/bench-all.sh   # short form
#   IKF_BIN=path bash scripts/bench-all.sh    # measure that binary, build nothing
#
# Needs Garage (scripts/garage.sh, once) for the S3 rows and the oracles
# (scripts/oracles.sh) for ipfs-car; the scripts install the FUSE peers.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
SIZE_MB="${SIZE_MB:-1024}"
NFILES="${NFILES:-10000}"
# The S3 small-object row uses 1,000 objects at full size (the goal's
# figure); a tenth of NFILES in a short form.
S3_FILES="${S3_FILES:-$(( NFILES >= 10000 ? 1000 : NFILES / 10 ))}"
BIN="${IKF_BIN:-$ROOT/target/release/ipfs-kit-fuse}"
[ -n "${IKF_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet)

heading() { echo; echo "## $1"; echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"; echo; }

heading "local, small files, IPFS (scripts/bench.sh)"
IKF_BIN="$BIN" RUNS="$RUNS" SIZE_MB="$SIZE_MB" NFILES="$NFILES" ONLY=local,write,small,ipfs \
  bash "$ROOT/scripts/bench.sh"

heading "S3 on Garage (scripts/bench-s3.sh)"
IKF_BIN="$BIN" RUNS="$RUNS" SIZE_MB="$SIZE_MB" NFILES="$S3_FILES" bash "$ROOT/scripts/bench-s3.sh"

heading "cid and car pack (scripts/bench-car.sh)"
IKF_BIN="$BIN" BENCH_MB="$SIZE_MB" bash "$ROOT/scripts/bench-car.sh"
