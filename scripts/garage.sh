#!/usr/bin/env bash
# Builds Garage 2.5.0 (a real S3 store, for benchmarks) once into a cache dir.
# About 20-45 minutes on 2 cores; later runs return at once.
set -euo pipefail
DIR="${GARAGE_DIR:-$HOME/.cache/ipfs-kit-fuse/garage}"
if [ ! -x "$DIR/bin/garage" ]; then
  cargo install garage --version 2.5.0 --locked --root "$DIR"
fi
echo "$DIR/bin/garage"
