#!/usr/bin/env bash
# IPFS read benchmark (issue 9): a sequential read of a file through an
# `ipfs` mount (cold: empty block cache; warm: blocks cached, page cache
# dropped) against the node's own `cat` of it, in the same run, and `ls -l`
# of a HAMT-sharded directory. The node is js-ipfs 0.66.1 (scripts/kubo-rpc.sh)
# on 127.0.0.1. Also the node's side of a cold read alone (the requests our
# cat spans make, read by a client that only counts the bytes), the CPU
# the whole machine spends on each read, and cold reads in a daemon that was
# already running (block cache dropped through the control socket), and
# cold reads from a stand-in node that answers at once (our side alone), and
# the same file added in the node's default shape (CIDv0, dag-pb leaves of
# 256 KiB) read cold against the node's cat of it. Prints a table; timings
# never fail anything.
#
#   bash scripts/bench-ipfs.sh                        # 256 MiB file, 10,000-entry directory
#   SIZE_MB=64 NFILES=2000 RUNS=1 bash scripts/bench-ipfs.sh  # short form
#   RUNS=5 bash scripts/bench-ipfs.sh                 # cat and cold read alternate 5 times (default 3; medians)
#   IKF_PROFILE=debug bash scripts/bench-ipfs.sh       # use the debug build (figures not representative)
#   IKF_BIN=path bash scripts/bench-ipfs.sh            # measure that binary, build nothing
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SIZE_MB="${SIZE_MB:-256}"
NFILES="${NFILES:-10000}"
RUNS="${RUNS:-3}"
PROFILE="${IKF_PROFILE:-release}"
WORK="${BENCH_DIR:-/var/tmp/ikf-bench-ipfs}"
BIN="${IKF_BIN:-$ROOT/target/$PROFILE/ipfs-kit-fuse}"
# Settings that give the same CIDs as our default profile (and 1 MiB leaves,
# aligned with the block cache's 1 MiB blocks).
V1="cid-version=1&raw-leaves=true&chunker=size-1048576&cid-base=base32"

if [[ -n ${IKF_BIN:-} ]]; then
  :
elif [[ $PROFILE == release ]]; then
  (cd "$ROOT" && cargo build --release --quiet --bin ipfs-kit-fuse)
else
  (cd "$ROOT" && cargo build --quiet --bin ipfs-kit-fuse)
fi
bash "$ROOT/scripts/kubo-rpc.sh" install >/dev/null

rm -rf "$WORK"; mkdir -p "$WORK"/{mnt,home,many}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API="http://127.0.0.1:$PORT"
MNT="$WORK/mnt"
cleanup() {
  "$BIN" unmount "$MNT" --timeout 30 >/dev/null 2>&1 || umount -l "$MNT" 2>/dev/null || true
  if [[ -n ${INSTANT_PID:-} ]]; then kill "$INSTANT_PID" 2>/dev/null || true; fi
  bash "$ROOT/scripts/kubo-rpc.sh" stop "$WORK/repo" || true
}
trap cleanup EXIT
bash "$ROOT/scripts/kubo-rpc.sh" start "$WORK/repo" "$PORT" >/dev/null

source "$ROOT/scripts/bench-lib.sh"
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
add() { curl -sf -X POST -F "file=@$1" "$API/api/v0/add?$V1&progress=false" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["Hash"])'; }

echo "==> $SIZE_MB MiB file and a $NFILES-entry directory into the node"
head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/big.bin"
BIG=$(add "$WORK/big.bin")
# The same bytes in the node's default shape (CIDv0, dag-pb leaves of 256 KiB).
BIG0=$(curl -sf -X POST -F "file=@$WORK/big.bin" "$API/api/v0/add?progress=false" \
  | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["Hash"])')
for i in $(seq 1 "$NFILES"); do printf '%s' "$i" > "$WORK/many/file-$i.txt"; done
MANY=$(IPFS_API="$API" python3 "$ROOT/scripts/oracles/rpc_add_tree.py" "$WORK/many" "$V1" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Hash"])')

# Unmounts and waits until the daemon has exited (it writes its state under
# the data home on the way out, which a following rm -rf must not race).
unmount_ipfs() {
  local daemon
  daemon=$(pgrep -f -- "mount $MNT --config" | head -1 || true)
  "$BIN" unmount "$MNT" --timeout 30 >/dev/null 2>&1 || true
  while [[ -n $daemon ]] && kill -0 "$daemon" 2>/dev/null; do sleep 0.1; done
}
mount_ipfs() { # [API URL, default the node's] a fresh data home: empty block cache
  rm -rf "$WORK/home"; mkdir -p "$WORK/home"
  printf '[[mount]]\npath = "/ipfs"\nscheme = "ipfs"\n[mount.options]\napi = "%s"\n' "${1:-$API}" > "$WORK/ipfs.toml"
  IPFS_KIT_HOME="$WORK/home" "$BIN" mount "$MNT" --config "$WORK/ipfs.toml" --socket "$WORK/ctl.sock"
}

# CPU seconds (user + system) a process has used so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# CPU seconds the whole machine has been busy (all cores: user, nice,
# system, irq and softirq time; not idle, I/O wait or steal), from /proc/stat.
busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8) / hz}' /proc/stat; }
# read_through_mount OUT [CID]: one read of the big file (or CID) through
# the mount, page cache dropped first; appends to OUT its seconds, the
# node's CPU s, our daemon's CPU s and the CPU s of the whole machine.
read_through_mount() {
  local daemon c0 d0 s0 t0 t1 c1 d1 s1
  daemon=$(pgrep -f -- "mount $MNT --config" | head -1)
  drop_caches
  c0=$(cpu "$NODE_PID"); d0=$(cpu "$daemon"); s0=$(busy); t0=$(now)
  cat "$MNT/ipfs/${2:-$BIG}" > /dev/null
  t1=$(now); c1=$(cpu "$NODE_PID"); d1=$(cpu "$daemon"); s1=$(busy)
  echo "$(secs "$t0" "$t1") $(secs "$c0" "$c1") $(secs "$d0" "$d1") $(secs "$s0" "$s1")" >> "$1"
}
NODE_PID=$(cat "$WORK/repo/daemon.pid")
# The node's cat and the cold read alternate, RUNS times (median of each):
# the node's speed drifts with its garbage collector, and a single pair
# was seen to differ by 30% from the next on this 2-core machine.
: > "$WORK/cat.txt"; : > "$WORK/sched.txt"; : > "$WORK/cold.txt"
for run in $(seq 1 "$RUNS"); do
  drop_caches
  # Also the time to the answer's first byte: js-ipfs readies most of a
  # cat before it sends any (docs/BENCHMARKS.md), which no reader can overlap.
  c0=$(cpu "$NODE_PID"); s0=$(busy); t0=$(now)
  ttfb=$(curl -sf -o /dev/null -w '%{time_starttransfer}' -X POST "$API/api/v0/cat?arg=$BIG")
  t1=$(now); c1=$(cpu "$NODE_PID"); s1=$(busy)
  echo "$(secs "$t0" "$t1") $(secs "$c0" "$c1") $(printf '%.2f' "$ttfb") $(secs "$s0" "$s1")" >> "$WORK/cat.txt"
  # The node's side of a cold read through the mount, without our side:
  # the same requests as our cat spans, read by a client that only counts
  # the bytes (scripts/oracles/span_schedule.py).
  drop_caches
  c0=$(cpu "$NODE_PID")
  sched=$(python3 "$ROOT/scripts/oracles/span_schedule.py" "$API" "$BIG" "$((SIZE_MB << 20))" | awk '{print $1}')
  c1=$(cpu "$NODE_PID")
  echo "$sched $(secs "$c0" "$c1")" >> "$WORK/sched.txt"
  unmount_ipfs
  mount_ipfs
  read_through_mount "$WORK/cold.txt"
done
col() { awk -v c="$2" '{print $c}' "$1" | median; }
CAT=$(col "$WORK/cat.txt" 1); CAT_NODE=$(col "$WORK/cat.txt" 2); CAT_TTFB=$(col "$WORK/cat.txt" 3); CAT_BUSY=$(col "$WORK/cat.txt" 4)
SCHED=$(col "$WORK/sched.txt" 1); SCHED_NODE=$(col "$WORK/sched.txt" 2)
COLD=$(col "$WORK/cold.txt" 1); COLD_NODE=$(col "$WORK/cold.txt" 2); COLD_OURS=$(col "$WORK/cold.txt" 3)
COLD_BUSY=$(col "$WORK/cold.txt" 4)
drop_caches
t0=$(now); cat "$MNT/ipfs/$BIG" > /dev/null; t1=$(now)
WARM=$(secs "$t0" "$t1")
# Cold again, in the daemon that is already running: its block cache dropped
# (`cache.drop` on the control socket), the page cache too. Unlike a fresh
# mount, the daemon reuses memory it has touched before, as a daemon that
# has run for a while does (a fresh one pays the kernel for every new page
# its memory tier fills).
: > "$WORK/running.txt"
for run in $(seq 1 "$RUNS"); do
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"cache.drop\"}\n")
reply = s.makefile().readline()
sys.exit(0 if "\"dropped\":true" in reply else "cache.drop: " + reply)' "$WORK/ctl.sock"
  read_through_mount "$WORK/running.txt"
done
RUNNING=$(col "$WORK/running.txt" 1); RUNNING_NODE=$(col "$WORK/running.txt" 2); RUNNING_OURS=$(col "$WORK/running.txt" 3)
# Our side alone: cold reads from a stand-in that answers at once with the
# node's own blocks (scripts/oracles/instant_node.py), so the node's time is
# taken out; the mount checks every block as usual.
curl -sf -X POST "$API/api/v0/dag/export?arg=$BIG" -o "$WORK/big.car"
IPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$ROOT/scripts/oracles/instant_node.py" "$WORK/big.car" "$WORK/big.bin" "$IPORT" > "$WORK/instant.log" 2>&1 &
INSTANT_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$IPORT/api/v0/cat?arg=$BIG&length=1" && break
  sleep 0.1
done
: > "$WORK/instant.txt"
for run in $(seq 1 "$RUNS"); do
  unmount_ipfs
  mount_ipfs "http://127.0.0.1:$IPORT"
  read_through_mount "$WORK/instant.txt"
done
kill "$INSTANT_PID"; INSTANT_PID=
INSTANT=$(col "$WORK/instant.txt" 1); INSTANT_OURS=$(col "$WORK/instant.txt" 3)
# The CIDv0 file: the node's cat and a cold read alternate, RUNS times.
: > "$WORK/cat0.txt"; : > "$WORK/cold0.txt"
for run in $(seq 1 "$RUNS"); do
  drop_caches
  c0=$(cpu "$NODE_PID"); t0=$(now)
  curl -sf -o /dev/null -X POST "$API/api/v0/cat?arg=$BIG0"
  t1=$(now); c1=$(cpu "$NODE_PID")
  echo "$(secs "$t0" "$t1") $(secs "$c0" "$c1")" >> "$WORK/cat0.txt"
  unmount_ipfs
  mount_ipfs
  read_through_mount "$WORK/cold0.txt" "$BIG0"
done
CAT0=$(col "$WORK/cat0.txt" 1); CAT0_NODE=$(col "$WORK/cat0.txt" 2)
COLD0=$(col "$WORK/cold0.txt" 1); COLD0_NODE=$(col "$WORK/cold0.txt" 2); COLD0_OURS=$(col "$WORK/cold0.txt" 3)
# A fresh mount: the directory's blocks are not cached.
unmount_ipfs
mount_ipfs
t0=$(now); n=$(ls -l "$MNT/ipfs/$MANY" | tail -n +2 | wc -l); t1=$(now)
LS=$(secs "$t0" "$t1")
[[ $n == "$NFILES" ]] || echo "warning: ls -l listed $n entries, expected $NFILES" >&2

mibps() { awk -v s="$1" -v m="$SIZE_MB" 'BEGIN {printf "%.0f", (s > 0 ? m / s : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", (b > 0 ? a / b : 0)}'; }
echo
echo "build: $PROFILE; node: js-ipfs 0.66.1 on 127.0.0.1; file: $SIZE_MB MiB ($BIG); medians of $RUNS runs"
echo "each run (seconds, node CPU s, then for cat first byte s and all cores busy s, for cold, running and instant our daemon CPU s and all cores busy s): cat: $(tr '\n' ';' < "$WORK/cat.txt") schedule: $(tr '\n' ';' < "$WORK/sched.txt") cold: $(tr '\n' ';' < "$WORK/cold.txt") running: $(tr '\n' ';' < "$WORK/running.txt") instant: $(tr '\n' ';' < "$WORK/instant.txt") v0 cat: $(tr '\n' ';' < "$WORK/cat0.txt") v0 cold: $(tr '\n' ';' < "$WORK/cold0.txt")"
printf '%-44s %8s %8s %10s\n' "scenario" "seconds" "MiB/s" "vs cat"
printf '%-44s %8s %8s %10s   node CPU %s s; first byte after %s s; all cores busy %s s\n' "node's own cat (HTTP /api/v0/cat)" "$CAT" "$(mibps "$CAT")" "1.00x" "$CAT_NODE" "$CAT_TTFB" "$CAT_BUSY"
printf '%-44s %8s %8s %10s   node CPU %s s\n' "node's cat in our span schedule, bytes unused" "$SCHED" "$(mibps "$SCHED")" "$(ratio "$SCHED" "$CAT")" "$SCHED_NODE"
printf '%-44s %8s %8s %10s   node CPU %s s, ours %s s, all cores busy %s s\n' "cat through the mount, cold (empty cache)" "$COLD" "$(mibps "$COLD")" "$(ratio "$COLD" "$CAT")" "$COLD_NODE" "$COLD_OURS" "$COLD_BUSY"
printf '%-44s %8s %8s %10s   node CPU %s s, ours %s s\n' "cold again in the running daemon (cache.drop)" "$RUNNING" "$(mibps "$RUNNING")" "$(ratio "$RUNNING" "$CAT")" "$RUNNING_NODE" "$RUNNING_OURS"
printf '%-44s %8s %8s %10s   ours %s s (our side alone)\n' "cold, from a node that answers at once" "$INSTANT" "$(mibps "$INSTANT")" "$(ratio "$INSTANT" "$CAT")" "$INSTANT_OURS"
printf '%-44s %8s %8s %10s\n' "cat through the mount, warm (blocks cached)" "$WARM" "$(mibps "$WARM")" "$(ratio "$WARM" "$CAT")"
printf '%-44s %8s %8s %10s   node CPU %s s (%s)\n' "CIDv0 (dag-pb leaves): node's own cat" "$CAT0" "$(mibps "$CAT0")" "1.00x" "$CAT0_NODE" "$BIG0"
printf '%-44s %8s %8s %10s   node CPU %s s, ours %s s\n' "CIDv0: cat through the mount, cold" "$COLD0" "$(mibps "$COLD0")" "$(ratio "$COLD0" "$CAT0")" "$COLD0_NODE" "$COLD0_OURS"
printf '%-44s %8s\n' "ls -l of a $NFILES-entry HAMT directory, cold" "$LS"
