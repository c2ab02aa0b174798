#!/usr/bin/env bash
# A Kubo-RPC node for tests and benchmarks: js-ipfs 0.66.1 (npm), which
# answers the Kubo RPC API (/api/v0/add, cat, block/get, dag/import,
# dag/export, files/*) without a Go toolchain. Idempotent and cached.
#
# Usage:
#   bash scripts/kubo-rpc.sh install                 installs once (about 9 min), prints the install dir
#   bash scripts/kubo-rpc.sh start REPO API_PORT     inits REPO if new, starts an offline daemon with its
#                                                    API on 127.0.0.1:API_PORT, waits until it answers,
#                                                    prints its pid (also in REPO/daemon.pid)
#   bash scripts/kubo-rpc.sh stop REPO               stops the daemon started with REPO
#
# Install dir: ${IPFS_KIT_KUBO_RPC_DIR:-$HOME/.cache/ipfs-kit-fuse/kubo-rpc}; a
# marker file (.ok-0.66.1) records a finished install. Node 20 lacks
# Promise.withResolvers, which newer dependencies of js-ipfs call, so the
# daemon runs with scripts/oracles/polyfill.mjs preloaded.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${IPFS_KIT_KUBO_RPC_DIR:-$HOME/.cache/ipfs-kit-fuse/kubo-rpc}"
version=0.66.1
marker="$dir/.ok-$version"
jsipfs="$dir/node_modules/.bin/jsipfs"

# True when ipfs@$version is in node_modules with its jsipfs command.
installed() {
    [[ -x "$jsipfs" ]] && grep -q "\"version\": \"$version\"" "$dir/node_modules/ipfs/package.json" 2>/dev/null
}

install() {
    mkdir -p "$dir"
    cp "$here/oracles/polyfill.mjs" "$dir/polyfill.mjs"
    [[ -f "$marker" ]] && { echo "$dir"; return 0; }
    if ! command -v npm >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    command -v npm >/dev/null || {
        echo "kubo-rpc: npm is missing (apt-get install nodejs npm)" >&2
        exit 1
    }
    # An install another process started may still be running in $dir: wait
    # for it instead of racing it (npm keeps a lock only per command).
    local waited=0
    while pgrep -f "npm install.*ipfs@$version" >/dev/null && ((waited < 1200)); do
        sleep 10
        waited=$((waited + 10))
    done
    if ! installed; then
        [[ -f "$dir/package.json" ]] || printf '{"name":"kuborpc","version":"1.0.0","private":true}\n' >"$dir/package.json"
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "ipfs@$version" >&2)
    fi
    installed || {
        echo "kubo-rpc: npm install of ipfs@$version did not give $jsipfs" >&2
        exit 1
    }
    touch "$marker"
    echo "$dir"
}

jsipfs_in() {
    local repo=$1
    shift
    IPFS_PATH="$repo" NODE_OPTIONS="--import $dir/polyfill.mjs" "$jsipfs" "$@"
}

start() {
    local repo=$1 port=$2
    [[ -f "$marker" ]] || install >/dev/null
    repo="$(mkdir -p "$repo" && cd "$repo" && pwd)"
    if [[ ! -f "$repo/config" ]]; then
        jsipfs_in "$repo" init --profile test >/dev/null
        # Gateway and RPC (gRPC) ports are not used; 0 lets the OS pick free ones.
        jsipfs_in "$repo" config Addresses.Gateway /ip4/127.0.0.1/tcp/0
        jsipfs_in "$repo" config Addresses.RPC /ip4/127.0.0.1/tcp/0
        # Without an empty swarm list the offline daemon hangs at start.
        jsipfs_in "$repo" config --json Addresses.Swarm '[]'
    fi
    jsipfs_in "$repo" config Addresses.API "/ip4/127.0.0.1/tcp/$port"
    rm -f "$repo/repo.lock" "$repo/api"
    IPFS_PATH="$repo" NODE_OPTIONS="--import $dir/polyfill.mjs" \
        setsid "$jsipfs" daemon --offline --enable-preload=false >"$repo/daemon.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$repo/daemon.pid"
    # js-ipfs starts in about 20 s on an idle machine; allow for a loaded one.
    for _ in $(seq 1 240); do
        if curl -fs -X POST "http://127.0.0.1:$port/api/v0/version" >/dev/null 2>&1; then
            echo "$pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    echo "kubo-rpc: daemon did not answer on 127.0.0.1:$port; log:" >&2
    tail -20 "$repo/daemon.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    exit 1
}

stop() {
    local repo=$1 pid
    [[ -f "$repo/daemon.pid" ]] || return 0
    pid=$(cat "$repo/daemon.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$repo/daemon.pid"
}

case "${1:-}" in
install) install ;;
start) start "${2:?repo dir}" "${3:?api port}" ;;
stop) stop "${2:?repo dir}" ;;
*)
    echo "usage: $0 install | start REPO API_PORT | stop REPO" >&2
    exit 2
    ;;
esac
