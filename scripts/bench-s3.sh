#!/usr/bin/env bash
# S3 benchmark (issue 12, part 2): ipfs-kit-fuse against a raw GET/PUT (curl),
# s3fs-fuse and rclone mount (vfs-cache-mode off) on one S3 server in one run.
# Rows: a SIZE_MB file read cold (page cache dropped, our block cache emptied,
# fresh mount), the same file written, and NFILES x 4 KiB objects read cold
# (`cat` of each). Beside each wall time: CPU seconds per GiB of the FUSE
# daemon (or curl) and of the S3 server, so figures taken on a loaded machine
# can be read. Not a test: timings never fail.
#
#   bash scripts/bench-s3.sh                                  # 1 GiB, 1,000 objects, 3 runs
#   SIZE_MB=64 NFILES=100 RUNS=1 bash scripts/bench-s3.sh     # short form
#
# Server: Garage 2.5.0 when built (scripts/garage.sh, ~30 min once), else moto
# (scripts/moto.sh; a Python server, so every tool runs at moto's pace and the
# table says so). S3_SERVER=moto forces moto.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
SIZE_MB="${SIZE_MB:-1024}"
NFILES="${NFILES:-1000}"
WORK="${BENCH_DIR:-/var/tmp/ikf-bench-s3}"
GARAGE="${GARAGE_BIN:-$HOME/.cache/ipfs-kit-fuse/garage/bin/garage}"
# IKF_BIN=path measures another build (e.g. target/debug) without building release.
BIN="${IKF_BIN:-$ROOT/target/release/ipfs-kit-fuse}"
KEY_ID=GK000000000000000000000001
KEY_SECRET=0000000000000000000000000000000000000000000000000000000000000001
# Port of the S3 server: away from the tests' moto ports and bench.sh's 3900.
S3PORT="${S3PORT:-3910}"
SERVER="${S3_SERVER:-}"
if [ -z "$SERVER" ]; then if [ -x "$GARAGE" ]; then SERVER=garage; else SERVER=moto; fi; fi
HZ="$(getconf CLK_TCK)"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need rclone || ! need s3fs || ! need fusermount3 || ! need bc; then
  apt-get update -qq && apt-get install -y -qq rclone s3fs fuse3 curl bc >/dev/null
fi
[ -n "${IKF_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet)

rm -rf "$WORK"; mkdir -p "$WORK"/{mnt,home,rc}
export IPFS_KIT_HOME="$WORK/home"
RESULTS="$WORK/results.tsv"; : > "$RESULTS"
MNT="$WORK/mnt"

source "$ROOT/scripts/bench-lib.sh"
cpu_s() { # pid -> user+system CPU seconds so far (0 if gone)
  awk -v hz="$HZ" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
fuse_pid() { pgrep -n -f -- "$MNT" || echo ""; }
# record SCENARIO TOOL SECONDS MIB TOOL_CPU SERVER_CPU (CPU seconds for the whole run)
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }
unmount_all() { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; sleep 0.5; }

SERVER_PID=""
start_server() {
  local G="$WORK/server"; mkdir -p "$G"
  if [ "$SERVER" = garage ]; then
    garage_start "$G" "$S3PORT" 3911 3913; SERVER_PID=$(cat "$G/pid")
  else
    local moto; moto="$(bash "$ROOT/scripts/moto.sh")"
    "$moto" -H 127.0.0.1 -p "$S3PORT" > "$G/log" 2>&1 & SERVER_PID=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.2; done
    curl "${S3CURL[@]}" -X PUT "http://127.0.0.1:$S3PORT/bench"
  fi
}
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap 'unmount_all; stop_server' EXIT
S3CURL=(--aws-sigv4 aws:amz:us-east-1:s3 --user "$KEY_ID:$KEY_SECRET" -H x-amz-content-sha256:UNSIGNED-PAYLOAD -s -f -o /dev/null)

mount_tool() { # tool -> mounts the bucket at $MNT
  case "$1" in
    ours)
      rm -rf "$IPFS_KIT_HOME/cache"
      printf '[[mount]]\npath = "/s"\nscheme = "s3"\n[mount.options]\nbucket = "bench"\nendpoint = "http://127.0.0.1:%s"\nregion = "us-east-1"\naccess_key_id = "%s"\nsecret_access_key = "%s"\ndisable_config_load = "true"\n' \
        "$S3PORT" "$KEY_ID" "$KEY_SECRET" > "$WORK/ours.toml"
      "$BIN" mount "$MNT" --config "$WORK/ours.toml"; echo "$MNT/s" ;;
    rclone)
      rm -rf "$WORK/rc"; mkdir -p "$WORK/rc"
      ( export RCLONE_S3_PROVIDER=Other RCLONE_S3_ENDPOINT="http://127.0.0.1:$S3PORT" RCLONE_S3_ACCESS_KEY_ID="$KEY_ID" \
          RCLONE_S3_SECRET_ACCESS_KEY="$KEY_SECRET" RCLONE_S3_REGION=us-east-1 RCLONE_S3_FORCE_PATH_STYLE=true
        unset AWS_CA_BUNDLE  # rclone refuses a custom CA bundle with its own transport; plain HTTP here
        rclone mount ":s3:bench" "$MNT" --vfs-cache-mode off --cache-dir "$WORK/rc" --daemon ); sleep 1; echo "$MNT" ;;
    s3fs)
      echo "$KEY_ID:$KEY_SECRET" > "$WORK/pw"; chmod 600 "$WORK/pw"
      s3fs bench "$MNT" -o url="http://127.0.0.1:$S3PORT" -o use_path_request_style -o passwd_file="$WORK/pw" -o endpoint=us-east-1
      sleep 1; echo "$MNT" ;;
  esac
}

# timed SCENARIO TOOL MIB CMD...: runs CMD RUNS times (cold each time), records
# the median wall time and the median CPU of the tool's daemon and the server.
timed() {
  local scen="$1" tool="$2" mib="$3"; shift 3
  local tw=() tc=() ts=() failed=0
  for _ in $(seq "$RUNS"); do
    local dir="" pid="" c0=0 s0 t0 t1 c1 s1
    if [ "$tool" != raw ]; then dir=$(mount_tool "$tool"); pid=$(fuse_pid); fi
    drop_caches
    s0=$(cpu_s "$SERVER_PID"); [ -n "$pid" ] && c0=$(cpu_s "$pid")
    t0=$(now); if ! DIR="$dir" bash -c "$*"; then echo "$scen $tool: FAILED (no row)" >&2; failed=1; fi; t1=$(now)
    s1=$(cpu_s "$SERVER_PID"); c1=$([ -n "$pid" ] && cpu_s "$pid" || cat "$WORK/curl.cpu" 2>/dev/null || echo 0)
    tw+=("$(echo "$t1 - $t0" | bc -l)"); tc+=("$(echo "$c1 - $c0" | bc -l)"); ts+=("$(echo "$s1 - $s0" | bc -l)")
    if [ "$tool" != raw ]; then unmount_all; fi
  done
  [ "$failed" = 0 ] || return 0
  record "$scen" "$tool" "$(printf '%s\n' "${tw[@]}" | median)" "$mib" \
    "$(printf '%s\n' "${tc[@]}" | median)" "$(printf '%s\n' "${ts[@]}" | median)"
}
# curl under /usr/bin/time, its CPU seconds left in $WORK/curl.cpu
export WORK
curl_timed() { /usr/bin/time -f '%U %S' -o "$WORK/curl.time" curl "$@" && awk '{print $1 + $2}' "$WORK/curl.time" > "$WORK/curl.cpu"; }
export -f curl_timed

start_server
echo "server: $SERVER on 127.0.0.1:$S3PORT; preparing ${SIZE_MB} MiB and ${NFILES} x 4 KiB objects ..." >&2
head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/big.bin"
URL="http://127.0.0.1:$S3PORT/bench"
curl "${S3CURL[@]}" -T "$WORK/big.bin" "$URL/big.bin"
python3 - "$WORK/small" "$NFILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2]); os.makedirs(d)
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f: f.write(os.urandom(4096))
PY
for f in "$WORK"/small/*; do curl "${S3CURL[@]}" -T "$f" "$URL/small/$(basename "$f")"; done

C="${S3CURL[*]}"
echo "S3 read, cold ..." >&2
timed s3-read raw "$SIZE_MB" "curl_timed $C '$URL/big.bin'"
for tool in ours s3fs rclone; do timed s3-read "$tool" "$SIZE_MB" 'cat "$DIR/big.bin" > /dev/null'; done
echo "S3 write ..." >&2
rm -f "$WORK/curl.cpu"
timed s3-write raw "$SIZE_MB" "curl_timed $C -T '$WORK/big.bin' '$URL/big.w'"
rm -f "$WORK/curl.cpu"
for tool in ours s3fs rclone; do
  # Each tool uploads by the time `close` returns (ours and s3fs at close,
  # rclone without a VFS cache while writing).
  timed s3-write "$tool" "$SIZE_MB" 'cp "$WORK/big.bin" "$DIR/big.w"'
done
echo "small objects, cold cat ..." >&2
for tool in ours s3fs rclone; do timed s3-small-cat "$tool" - 'find "$DIR/small" -type f -print0 | xargs -0 cat > /dev/null'; done

python3 - "$RESULTS" "$SERVER" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(dict)
for scen, tool, secs, mib, cpu, srv in rows:
    by[scen][tool] = (float(secs), mib, float(cpu), float(srv))
print(f"server: {sys.argv[2]}; medians; CPU = user+system seconds (per GiB where sized)")
print(f"{'scenario':<14} {'tool':<8} {'seconds':>8} {'MiB/s':>8} {'tool CPU':>9} {'server CPU':>10} {'ours/peer':>10}")
for scen, tools in by.items():
    ours = tools.get("ours")
    for tool, (secs, mib, cpu, srv) in tools.items():
        gib = float(mib) / 1024 if mib != "-" else 1
        rate = f"{float(mib)/secs:8.1f}" if mib != "-" and secs > 0 else f"{'-':>8}"
        ratio = "" if ours is None or tool == "ours" else f"{secs/ours[0]:9.2f}x"
        print(f"{scen:<14} {tool:<8} {secs:8.2f} {rate} {cpu/gib:9.2f} {srv/gib:10.2f} {ratio:>10}")
print("\nours/peer = peer seconds / our seconds: above 1 means we are faster.")
PY
