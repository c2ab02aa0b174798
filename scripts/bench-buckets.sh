#!/usr/bin/env bash
# Bucket benchmark (issue 11): a synthetic bucket of NFILES index rows (no
# file bytes: the rows are written as journal lines, the daemon serves them
# from its index), then in one run:
#   - in-process load of the journal + compaction into Parquet + root CID
#   - `bucket files --prefix` (one directory of 1,000 rows), `find-cid`,
#     `bucket snapshots` against the running daemon (each a CLI process:
#     the figure includes process start and the socket round trip)
#   - `ls -f` of the BIGDIR-entry directory under .buckets/ (cold inode table)
#   - the daemon's resident memory with the index loaded vs without it
#   - SMALL small files written through a bucket mount vs a plain fs mount
# Prints a table; timings never fail anything.
#
#   bash scripts/bench-buckets.sh                                   # 1,000,000 rows, 100,000-entry dir, 10,000 files
#   NFILES=100000 BIGDIR=10000 SMALL=2000 bash scripts/bench-buckets.sh   # short form
#   IKF_PROFILE=debug bash scripts/bench-buckets.sh                 # the debug build (not representative)
#   SMALL_ONLY=1 ROUNDS=5 SMALL=2000 bash scripts/bench-buckets.sh  # only the small-file part
# ROUNDS (default 1): the small-file part runs that many times, plain and
# bucket alternating, each in a fresh directory; the medians are printed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NFILES="${NFILES:-1000000}"
BIGDIR="${BIGDIR:-100000}"
SMALL="${SMALL:-10000}"
ROUNDS="${ROUNDS:-1}"
SMALL_ONLY="${SMALL_ONLY:-0}"
PROFILE="${IKF_PROFILE:-release}"
WORK="${BENCH_DIR:-/var/tmp/ikf-bench-buckets}"
# IKF_BIN: another binary to measure (e.g. an older build, for a before/after).
BIN="${IKF_BIN:-$ROOT/target/$PROFILE/ipfs-kit-fuse}"
((BIGDIR <= NFILES)) || { echo "BIGDIR must not exceed NFILES" >&2; exit 1; }

if [[ -n ${IKF_BIN:-} ]]; then
  :
elif [[ $PROFILE == release ]]; then
  (cd "$ROOT" && cargo build --release --quiet --bin ipfs-kit-fuse)
else
  (cd "$ROOT" && cargo build --quiet --bin ipfs-kit-fuse)
fi

rm -rf "$WORK"; mkdir -p "$WORK"/{mnt,home/vfs/buckets,bench,small,plain}
MNT="$WORK/mnt"
export IPFS_KIT_HOME="$WORK/home"
CFG="$WORK/config.toml"
cat > "$CFG" <<EOF
[[mount]]
path = "/buckets/bench"
scheme = "fs"
bucket = "bench"
[mount.options]
root = "$WORK/bench"

[[mount]]
path = "/buckets/small"
scheme = "fs"
bucket = "small"
[mount.options]
root = "$WORK/small"

[[mount]]
path = "/plain"
scheme = "fs"
[mount.options]
root = "$WORK/plain"
EOF
cleanup() { "$BIN" unmount "$MNT" --timeout 60 >/dev/null 2>&1 || umount -l "$MNT" 2>/dev/null || true; }
trap cleanup EXIT

source "$ROOT/scripts/bench-lib.sh"
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (b - a) * 1000}'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
daemon_pid() { "$BIN" status -m "$MNT" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }

# SMALL small files written by a shell loop into DIR (1,000 per directory).
write_small() { # DIR
  local d=$1 i
  for ((i = 0; i < SMALL; i++)); do
    [[ $((i % 1000)) == 0 ]] && mkdir -p "$d/s$((i / 1000))"
    printf 'small file %d\n' "$i" > "$d/s$((i / 1000))/f$i.txt"
  done
}
# The daemon's total time in FUSE flush so far, in ms (from `stats`).
flush_ms() {
  "$BIN" stats -m "$MNT" --json | python3 -c '
import json, sys
def find(o):
    if isinstance(o, dict):
        if o.get("op") == "flush":
            return o.get("total_us", 0)
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            r = find(v)
            if r is not None:
                return r
    return None
print(round((find(json.load(sys.stdin)) or 0) / 1000))'
}
# Sets PLAIN and BUCKET (median ms over ROUNDS) and N_SMALL (rows indexed);
# each round also prints the daemon's time in flush (the closes) per mount.
small_part() {
  echo "==> $SMALL small files: bucket mount vs plain mount, $ROUNDS round(s)"
  local r t0 t1 f0 f1 f2 p=() b=()
  for ((r = 0; r < ROUNDS; r++)); do
    f0=$(flush_ms)
    t0=$(now); write_small "$MNT/plain/r$r"; t1=$(now); p+=("$(ms "$t0" "$t1")")
    f1=$(flush_ms)
    t0=$(now); write_small "$MNT/buckets/small/r$r"; t1=$(now); b+=("$(ms "$t0" "$t1")")
    f2=$(flush_ms)
    echo "    round $r: plain ${p[-1]} ms (flush $((f1 - f0)) ms), bucket ${b[-1]} ms (flush $((f2 - f1)) ms)"
  done
  PLAIN=$(printf '%s\n' "${p[@]}" | median)
  BUCKET=$(printf '%s\n' "${b[@]}" | median)
  N_SMALL=$("$BIN" bucket files small --json -m "$MNT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')
}
small_figures() {
  printf '%-62s %8s ms\n' "$SMALL small files into a plain fs mount (median of $ROUNDS)" "$PLAIN"
  printf '%-62s %8s ms\n' "$SMALL small files into a bucket mount ($N_SMALL indexed)" "$BUCKET"
  awk -v a="$PLAIN" -v b="$BUCKET" 'BEGIN {printf "%-62s %8.2f x\n", "bucket / plain", b / a}'
}

if [[ $SMALL_ONLY == 1 ]]; then
  "$BIN" mount "$MNT" --config "$CFG"
  small_part
  cleanup
  echo
  echo "build: $PROFILE; load average: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)"
  small_figures
  exit 0
fi

echo "==> $NFILES synthetic rows (journal lines): big/ holds $BIGDIR, the rest d0000/... (1,000 per directory)"
python3 - "$WORK/home/vfs/buckets/bench_vfs.journal" "$NFILES" "$BIGDIR" <<'PY'
import base64, hashlib, json, sys
out, n, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cid(i):  # a CIDv1 raw leaf (what a small file is under unixfs-v1-2025)
    d = hashlib.sha256(b"file %d" % i).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + d).decode().lower().rstrip("=")
with open(out, "w") as f:
    for i in range(n):
        path = f"big/f{i:07d}" if i < big else f"d{(i - big) // 1000:04d}/f{i:07d}"
        size = 100 + i % 900
        row = {"path": path, "cid": cid(i), "size": size, "dag_size": size,
               "mtime_ms": 1700000000000 + i, "indexed_ms": 1700000000000 + i}
        f.write(json.dumps({"seq": i + 1, "put": row}, separators=(",", ":")) + "\n")
print(cid(n // 2), file=open(out + ".probe", "w"))
PY
PROBE=$(cat "$WORK/home/vfs/buckets/bench_vfs.journal.probe"); rm "$WORK/home/vfs/buckets/bench_vfs.journal.probe"

echo "==> in-process: load the journal, compact into Parquet, compute the root CID"
t0=$(now); "$BIN" bucket list --config "$CFG" > "$WORK/list.txt"; t1=$(now)
COMPACT=$(ms "$t0" "$t1")
[[ -f "$WORK/home/vfs/buckets/bench_vfs.parquet" ]] || { echo "no index written" >&2; exit 1; }
INDEX_MB=$(du -m "$WORK/home/vfs/buckets/bench_vfs.parquet" | cut -f1)

echo "==> mount"
"$BIN" mount "$MNT" --config "$CFG"
PID=$(daemon_pid)
sleep 2
RSS_LOADED=$(rss_kib "$PID")

best() { # best of 5 runs of CMD..., in ms
  local b=999999 t0 t1 t
  for _ in 1 2 3 4 5; do
    t0=$(now); "$@" > /dev/null; t1=$(now); t=$(ms "$t0" "$t1")
    ((t < b)) && b=$t
  done
  echo "$b"
}
FILES_PREFIX=$(best "$BIN" bucket files bench --prefix d0003/ --json -m "$MNT")
N_PREFIX=$("$BIN" bucket files bench --prefix d0003/ --json -m "$MNT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))')
FIND=$(best "$BIN" bucket find-cid "$PROBE" --json -m "$MNT")
# One change, then a snapshot: it compacts all rows first, and the daemon
# logs how long that took.
echo new > "$MNT/buckets/bench/compaction-probe.txt"
t0=$(now); "$BIN" bucket snapshot bench -m "$MNT" > /dev/null; t1=$(now)
SNAP_AFTER_CHANGE=$(ms "$t0" "$t1")
COMPACT_ONLY=$(grep -h "compacted the journal into the index" "$WORK"/home/logs/* 2>/dev/null | grep -o 'ms=[0-9]*' | tail -1 | cut -d= -f2 || true)
SNAPS=$(best "$BIN" bucket snapshots --json -m "$MNT")
VERSION=$(best "$BIN" --version)
t0=$(now); N_LS=$(ls -f "$MNT/.buckets/bench/files/big" | wc -l); t1=$(now)
LS=$(ms "$t0" "$t1")

small_part
cleanup

echo "==> memory without the big index"
rm -rf "$WORK/home2"; mkdir -p "$WORK/home2"
IPFS_KIT_HOME="$WORK/home2" "$BIN" mount "$MNT" --config "$CFG"
PID=$(IPFS_KIT_HOME="$WORK/home2" daemon_pid)
sleep 2
RSS_EMPTY=$(rss_kib "$PID")
IPFS_KIT_HOME="$WORK/home2" "$BIN" unmount "$MNT" --timeout 60 > /dev/null

echo
echo "build: $PROFILE; rows: $NFILES; load average: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc)"
printf '%-62s %10s\n' "what" "figure"
printf '%-62s %8s ms\n' "load $NFILES journal lines + compact + root CID (in-process CLI)" "$COMPACT"
printf '%-62s %8s ms\n' "compaction of all rows after one change (daemon log)" "${COMPACT_ONLY:--}"
printf '%-62s %8s ms\n' "bucket snapshot after one change (compaction + index copy)" "$SNAP_AFTER_CHANGE"
printf '%-62s %8s MB\n' "index file size" "$INDEX_MB"
printf '%-62s %8s ms\n' "bucket files --prefix ($N_PREFIX rows), CLI process, best of 5" "$FILES_PREFIX"
printf '%-62s %8s ms\n' "bucket find-cid, CLI process, best of 5" "$FIND"
printf '%-62s %8s ms\n' "bucket snapshots, CLI process, best of 5" "$SNAPS"
printf '%-62s %8s ms\n' "(CLI process start alone: ipfs-kit-fuse --version, best of 5)" "$VERSION"
printf '%-62s %8s ms\n' "ls -f of a $N_LS-entry directory under .buckets/, cold" "$LS"
printf '%-62s %8s MiB\n' "daemon RSS with the index loaded" "$((RSS_LOADED / 1024))"
printf '%-62s %8s MiB\n' "daemon RSS without it" "$((RSS_EMPTY / 1024))"
small_figures
