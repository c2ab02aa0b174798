#!/usr/bin/env bash
# Installs moto (an S3-compatible server, in memory) into a cached venv.
# Tests start it themselves on 127.0.0.1 (tests/common_s3) and stop it.
# Usage: bash scripts/moto.sh            -> prints the moto_server path
set -euo pipefail
DIR="${IPFS_KIT_MOTO_DIR:-$HOME/.cache/ipfs-kit-fuse/moto}"
if [ ! -x "$DIR/bin/moto_server" ]; then
  python3 -m venv "$DIR" >&2
  "$DIR/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' >&2 \
    || "$DIR/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' >&2
fi
echo "$DIR/bin/moto_server"
