#!/usr/bin/env bash
# Install the official MCP Python SDK used by tests/mcp_*.rs as the MCP client
# (idempotent; safe to re-run). Prints the venv's python on stdout.
#
# Installs into ${IPFS_KIT_MCP_VENV:-$HOME/.cache/ipfs-kit-fuse/mcp-client}:
# a Python venv with mcp==2.3.0 (pinned; its dependencies as pip resolves
# them). A marker file records a finished install, so re-runs cost nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"

MCP_VERSION=2.3.0
venv="${IPFS_KIT_MCP_VENV:-$IKF_CACHE/mcp-client}"

if [[ ! -f "$venv/.ok-$MCP_VERSION" ]]; then
    # Fresh Debian has no python3 / venv module: install them (root only).
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        [[ $(id -u) == 0 ]] && ikf_apt_install python3 python3-venv >&2
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION" >&2
    "$venv/bin/python" -c 'import mcp.client.stdio, mcp.client.streamable_http' >&2
    touch "$venv/.ok-$MCP_VERSION"
fi
echo "$venv/bin/python"
