#!/usr/bin/env bash
# Peer benchmark (issues 4 and 12): ipfs-kit-fuse against rclone mount
# (vfs-cache-mode off and full), s3fs-fuse, bindfs and the raw source, on the
# same data in one run. Our local mount runs twice: in the DEFAULT
# configuration (no -o options: passthrough on) and with `-o nopassthrough`.
# Prints one table (median of RUNS runs): seconds, MiB/s, peak RSS and CPU
# seconds per GiB of the FUSE daemon (user+system, from /proc/PID/stat),
# and our default mount's ratio to each peer. Not a test: timings never fail.
#
#   bash scripts/bench.sh                 # full: 1 GiB files, 10,000 small files, 3 runs
#   QUICK=1 bash scripts/bench.sh         # short form (~2 min): local rows, 256 MiB, 2,000 files, 1 run
#   BENCH_PROFILE=debug ...               # measure the debug build instead of building release
#   IKF_BIN=path ...                      # measure that binary, build nothing
#   SIZE_MB=64 NFILES=500 RUNS=1 bash scripts/bench.sh   # a quick smoke run
#   ONLY=small bash scripts/bench.sh      # one section: local, write, small, s3 or ipfs
#
# S3 figures need Garage (built once by scripts/garage.sh, ~30 min on 2 cores);
# without it the S3 rows are skipped and say so.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${QUICK:-0}" = 1 ]; then
  : "${RUNS:=1}" "${SIZE_MB:=256}" "${NFILES:=2000}" "${ONLY:=local,write,small}"
fi
RUNS="${RUNS:-3}"
SIZE_MB="${SIZE_MB:-1024}"
NFILES="${NFILES:-10000}"
# Sections to run (comma list of local, write, small, s3, ipfs).
ONLY="${ONLY:-local,write,small,s3,ipfs}"
section() { [[ ",$ONLY," == *",$1,"* ]]; }
WORK="${BENCH_DIR:-/var/tmp/ikf-bench}"
GARAGE="${GARAGE_BIN:-$HOME/.cache/ipfs-kit-fuse/garage/bin/garage}"
# BENCH_PROFILE=debug measures the debug build (no release build needed).
PROFILE="${BENCH_PROFILE:-release}"
BIN="${IKF_BIN:-$ROOT/target/$PROFILE/ipfs-kit-fuse}"
KEY_ID=GK000000000000000000000001
KEY_SECRET=0000000000000000000000000000000000000000000000000000000000000001
S3PORT=3900

need() { command -v "$1" >/dev/null 2>&1; }
if ! need rclone || ! need bindfs || ! need s3fs || ! need fusermount3; then
  apt-get update -qq && apt-get install -y -qq rclone s3fs bindfs fuse3 curl >/dev/null
fi
if [ -n "${IKF_BIN:-}" ]; then :
elif [ "$PROFILE" = release ]; then (cd "$ROOT" && cargo build --release --quiet); else (cd "$ROOT" && cargo build --quiet); fi

rm -rf "$WORK"; mkdir -p "$WORK"/{src,mnt,home,rc}
export IPFS_KIT_HOME="$WORK/home"
RESULTS="$WORK/results.tsv"; : > "$RESULTS"
MNT="$WORK/mnt"

source "$ROOT/scripts/bench-lib.sh"
peak_rss_mib() { # pid -> VmHWM in MiB
  awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "-"; }
fuse_pid() { # mount point -> pid of the daemon serving it
  pgrep -n -f -- "$1" || echo ""; }

cpu_ticks() { # pid -> user+system clock ticks so far ("" without a pid)
  [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo ""; }
TICKS=$(getconf CLK_TCK)
cpu_secs() { # ticks-before ticks-after -> CPU seconds ("-" if unknown)
  if [ -n "$1" ] && [ -n "$2" ]; then echo "($2 - $1) / $TICKS" | bc -l; else echo "-"; fi; }

# record SCENARIO TOOL SECONDS MIB RSS [DAEMON-CPU-SECONDS]
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:--}" >> "$RESULTS"; }

unmount_all() { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; sleep 0.5; }

mount_tool() { # tool -> mounts the source (local or s3) at $MNT; echoes the data dir inside it
  local tool="$1"
  case "$tool" in
    ours-local|ours-local-nopt)
      # The default configuration: an fs mount, direct writes, no -o options.
      printf '[[mount]]\npath = "/l"\nscheme = "fs"\n[mount.options]\nroot = "%s"\n' "$WORK/src" > "$WORK/ours.toml"
      if [ "$tool" = ours-local ]; then "$BIN" mount "$MNT" --config "$WORK/ours.toml"
      else "$BIN" mount "$MNT" --config "$WORK/ours.toml" -o nopassthrough; fi
      echo "$MNT/l" ;;
    ours-s3)
      printf '[[mount]]\npath = "/s"\nscheme = "s3"\n[mount.options]\nbucket = "bench"\nendpoint = "http://127.0.0.1:%s"\nregion = "us-east-1"\naccess_key_id = "%s"\nsecret_access_key = "%s"\ndisable_config_load = "true"\n' \
        "$S3PORT" "$KEY_ID" "$KEY_SECRET" > "$WORK/ours.toml"
      "$BIN" mount "$MNT" --config "$WORK/ours.toml"; echo "$MNT/s" ;;
    rclone-off-local|rclone-full-local)
      local mode=${tool#rclone-}; mode=${mode%-local}
      rclone mount ":local:$WORK/src" "$MNT" --vfs-cache-mode "$mode" --cache-dir "$WORK/rc" --daemon; sleep 1; echo "$MNT" ;;
    rclone-off-s3|rclone-full-s3)
      local mode=${tool#rclone-}; mode=${mode%-s3}
      ( unset AWS_CA_BUNDLE
        RCLONE_S3_PROVIDER=Other RCLONE_S3_ENDPOINT="http://127.0.0.1:$S3PORT" RCLONE_S3_ACCESS_KEY_ID="$KEY_ID" \
        RCLONE_S3_SECRET_ACCESS_KEY="$KEY_SECRET" RCLONE_S3_REGION=us-east-1 RCLONE_S3_FORCE_PATH_STYLE=true \
        rclone mount ":s3:bench" "$MNT" --vfs-cache-mode "$mode" --cache-dir "$WORK/rc" --daemon ); sleep 1; echo "$MNT" ;;
    s3fs)
      echo "$KEY_ID:$KEY_SECRET" > "$WORK/pw"; chmod 600 "$WORK/pw"
      s3fs bench "$MNT" -o url="http://127.0.0.1:$S3PORT" -o use_path_request_style -o passwd_file="$WORK/pw" -o endpoint=us-east-1
      sleep 1; echo "$MNT" ;;
    bindfs) bindfs "$WORK/src" "$MNT"; echo "$MNT" ;;
    raw) echo "$WORK/src" ;;
  esac
}

daemon_pid() { # tool -> pid of the FUSE daemon serving $MNT ("" for raw)
  if [ "$1" = raw ]; then echo ""; else fuse_pid "$MNT"; fi; }

seq_read() { # scenario tool file cold|hot
  local scen="$1" tool="$2" rel="$3" temp="$4" times=() cpus=() dir pid rss c0 c1
  for _ in $(seq "$RUNS"); do
    dir=$(mount_tool "$tool")
    if [ "$temp" = hot ]; then cat "$dir/$rel" > /dev/null; fi
    if [ "$temp" = cold ]; then drop_caches; fi
    pid=$(daemon_pid "$tool"); c0=$(cpu_ticks "$pid")
    local t0 t1; t0=$(now); cat "$dir/$rel" > /dev/null; t1=$(now)
    c1=$(cpu_ticks "$pid")
    times+=("$(echo "$t1 - $t0" | bc -l)"); cpus+=("$(cpu_secs "$c0" "$c1")")
    rss=$([ -n "$pid" ] && peak_rss_mib "$pid" || echo "-")
    if [ "$tool" != raw ]; then unmount_all; fi
  done
  local med; med=$(printf '%s\n' "${times[@]}" | median)
  record "$scen" "$tool" "$med" "$SIZE_MB" "$rss" "$(printf '%s\n' "${cpus[@]}" | median_or_dash)"
}

median_or_dash() { local v; v=$(grep -v '^-$' || true); if [ -n "$v" ]; then echo "$v" | median; else echo "-"; fi; }

seq_write() { # scenario tool: SIZE_MB from a page-cached file with dd, fsync included
  local scen="$1" tool="$2" times=() cpus=() dir pid rss c0 c1
  for _ in $(seq "$RUNS"); do
    dir=$(mount_tool "$tool")
    cat "$WORK/big.local" > /dev/null
    pid=$(daemon_pid "$tool"); c0=$(cpu_ticks "$pid")
    local t0 t1; t0=$(now)
    dd if="$WORK/big.local" of="$dir/big.w" bs=1M conv=fsync status=none
    t1=$(now); c1=$(cpu_ticks "$pid")
    times+=("$(echo "$t1 - $t0" | bc -l)"); cpus+=("$(cpu_secs "$c0" "$c1")")
    rss=$([ -n "$pid" ] && peak_rss_mib "$pid" || echo "-")
    rm -f "$dir/big.w"
    if [ "$tool" != raw ]; then unmount_all; fi
  done
  record "$scen" "$tool" "$(printf '%s\n' "${times[@]}" | median)" "$SIZE_MB" "$rss" "$(printf '%s\n' "${cpus[@]}" | median_or_dash)"
}

# Each run creates into a new directory and nothing is deleted until every
# tool has run: ext4 makes file creation slow for a while after many
# deletions (it skips recently freed inodes), which would charge one tool
# for the clean-up of the tool before it.
small_files() { # tool: create NFILES x 4 KiB, ls -lR, cold cat of each
  local tool="$1" dir run=0 pid c0 c1
  local tc=() tl=() tr=() cr=()
  for _ in $(seq "$RUNS"); do
    run=$((run + 1)); local sub="small-$tool-$run"
    dir=$(mount_tool "$tool"); mkdir "$dir/$sub"
    local t0 t1
    t0=$(now); python3 - "$dir/$sub" "$NFILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2]); blob = os.urandom(4096)
for i in range(n):
    with open(os.path.join(d, f"f{i:05d}"), "wb") as f: f.write(blob)
PY
    t1=$(now); tc+=("$(echo "$t1 - $t0" | bc -l)")
    if [ "$tool" != raw ]; then unmount_all; fi
    dir=$(mount_tool "$tool"); drop_caches
    t0=$(now); ls -lR "$dir/$sub" > /dev/null; t1=$(now); tl+=("$(echo "$t1 - $t0" | bc -l)")
    # Cold: a fresh mount and an empty page cache, then one `cat` per file.
    if [ "$tool" != raw ]; then unmount_all; fi
    dir=$(mount_tool "$tool"); drop_caches
    pid=$(daemon_pid "$tool"); c0=$(cpu_ticks "$pid")
    t0=$(now); (cd "$dir/$sub" && find . -type f -print0 | xargs -0 -n 1 cat > /dev/null); t1=$(now)
    c1=$(cpu_ticks "$pid")
    tr+=("$(echo "$t1 - $t0" | bc -l)"); cr+=("$(cpu_secs "$c0" "$c1")")
    if [ "$tool" = ours-local ] && [ "$run" = 1 ]; then
      "$BIN" stats --mount "$MNT" > "$WORK/small-ops.txt" 2>&1 || true
    fi
    if [ "$tool" != raw ]; then unmount_all; fi
  done
  record "small-create" "$tool" "$(printf '%s\n' "${tc[@]}" | median)" "-" "-"
  record "small-ls-lR" "$tool" "$(printf '%s\n' "${tl[@]}" | median)" "-" "-"
  record "small-cat-cold" "$tool" "$(printf '%s\n' "${tr[@]}" | median)" "-" "-" "$(printf '%s\n' "${cr[@]}" | median_or_dash)"
}

start_garage() {
  [ -x "$GARAGE" ] || return 1
  garage_start "$WORK/garage" "$S3PORT" 3901 3903
}
stop_garage() { [ -f "$WORK/garage/pid" ] && kill "$(cat "$WORK/garage/pid")" 2>/dev/null || true; }
trap 'unmount_all; stop_garage' EXIT

S3CURL=(--aws-sigv4 aws:amz:us-east-1:s3 --user "$KEY_ID:$KEY_SECRET" -H x-amz-content-sha256:UNSIGNED-PAYLOAD -s -o /dev/null)

echo "preparing ${SIZE_MB} MiB of random data in $WORK ..." >&2
if section local || section s3; then head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/src/big.bin"; fi
if section s3 || section write; then head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/big.local"; fi

section local && for tool in raw ours-local ours-local-nopt bindfs rclone-off-local rclone-full-local; do
  echo "local sequential read: $tool" >&2
  seq_read "local-read-cold" "$tool" big.bin cold
  seq_read "local-read-hot" "$tool" big.bin hot
done
section write && for tool in raw ours-local ours-local-nopt bindfs; do
  echo "local sequential write: $tool" >&2
  seq_write "local-write" "$tool"
done
if section small; then
  for tool in raw ours-local ours-local-nopt bindfs rclone-off-local; do
    echo "small files: $tool" >&2
    small_files "$tool"
  done
  rm -rf "$WORK"/src/small-*
fi

if section s3 && start_garage; then
  echo "S3 (Garage) ..." >&2
  times=(); for _ in $(seq "$RUNS"); do t0=$(now); curl "${S3CURL[@]}" -T "$WORK/big.local" "http://127.0.0.1:$S3PORT/bench/big.bin"; t1=$(now); times+=("$(echo "$t1 - $t0" | bc -l)"); done
  record "s3-write" "raw-curl" "$(printf '%s\n' "${times[@]}" | median)" "$SIZE_MB" "-"
  times=(); for _ in $(seq "$RUNS"); do t0=$(now); curl "${S3CURL[@]}" "http://127.0.0.1:$S3PORT/bench/big.bin"; t1=$(now); times+=("$(echo "$t1 - $t0" | bc -l)"); done
  record "s3-read" "raw-curl" "$(printf '%s\n' "${times[@]}" | median)" "$SIZE_MB" "-"
  for tool in ours-s3 rclone-off-s3 rclone-full-s3 s3fs; do
    echo "S3 read/write: $tool" >&2
    rm -rf "$IPFS_KIT_HOME/cache" "$WORK/rc"; mkdir -p "$WORK/rc"
    seq_read "s3-read" "$tool" big.bin cold
    seq_write "s3-write" "$tool"
  done
elif section s3; then
  echo "S3 rows skipped: Garage not built ($GARAGE); run scripts/garage.sh once" >&2
fi

# IPFS reads against the node's own cat (its own table; scripts/bench-ipfs.sh).
if section ipfs; then
  IKF_BIN="$BIN" BENCH_DIR="$WORK/ipfs" SIZE_MB="$(( SIZE_MB < 256 ? SIZE_MB : 256 ))" bash "$ROOT/scripts/bench-ipfs.sh" >&2 \
    || echo "IPFS rows skipped: scripts/bench-ipfs.sh failed" >&2
fi

python3 - "$RESULTS" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(dict)
for scen, tool, secs, mib, rss, cpu in rows:
    by[scen][tool] = (float(secs), mib, rss, cpu)
print(f"{'scenario':<18} {'tool':<18} {'seconds':>9} {'MiB/s':>9} {'peak RSS':>9} {'CPU s/GiB':>9} {'ours/peer':>10}")
for scen, tools in by.items():
    # Ratios against our default configuration where it ran.
    ours = tools.get("ours-local") or next((v for k, v in tools.items() if k.startswith("ours")), None)
    for tool, (secs, mib, rss, cpu) in tools.items():
        rate = f"{float(mib)/secs:9.1f}" if mib != "-" and secs > 0 else f"{'-':>9}"
        if cpu != "-" and mib != "-":
            cpu = f"{float(cpu) / (float(mib) / 1024):9.2f}"
        elif cpu != "-":
            cpu = f"{float(cpu):8.2f}s"
        ratio = "" if ours is None or tool == "ours-local" else f"{secs/ours[0]:9.2f}x"
        print(f"{scen:<18} {tool:<18} {secs:9.3f} {rate} {rss:>9} {cpu:>9} {ratio:>10}")
print("\nours/peer = peer seconds / our seconds (default configuration, ours-local): above 1 means we are faster.")
print("CPU s/GiB: the FUSE daemon's user+system CPU per GiB moved (small-cat-cold: CPU seconds for all files).")
print("ours-local: no -o options (passthrough on); ours-local-nopt: -o nopassthrough.")
PY
if [ -s "$WORK/small-ops.txt" ]; then
  echo; echo "FUSE requests of the default mount for one cold cat of $NFILES small files:"; cat "$WORK/small-ops.txt"
fi
