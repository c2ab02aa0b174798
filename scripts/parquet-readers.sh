#!/usr/bin/env bash
# Installs the outside readers of bucket indexes (pyarrow and DuckDB, the
# Python packages) into a cached venv; tests/bucket_*.rs use them to check
# that our Parquet files read as they are.
# Usage: bash scripts/parquet-readers.sh      -> prints the venv's python path
set -euo pipefail
DIR="${IPFS_KIT_PARQUET_DIR:-$HOME/.cache/ipfs-kit-fuse/parquet-readers}"
if [ ! -f "$DIR/.installed" ]; then
  command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
  python3 -m venv "$DIR" >&2 || {
    # Debian ships venv separately.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$DIR" >&2
  }
  "$DIR/bin/pip" install --quiet --disable-pip-version-check pyarrow duckdb >&2
  touch "$DIR/.installed"
fi
echo "$DIR/bin/python"
