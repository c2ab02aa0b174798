#!/usr/bin/env bash
# RUN on a fresh Debian machine as root (Rust present, nothing else):
# installs fuse3 if missing, builds the release binary, creates the mount
# point and mounts the built-in default config (/local and /memory) there.
# Returns once the mount is live; stop it with
#   target/release/ipfs-kit-fuse unmount /mnt/vfs
#
# Usage: bash scripts/run.sh [MOUNTPOINT] [extra mount args...]   (default /mnt/vfs)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

MNT=${1:-/mnt/vfs}
shift || true
if [[ $(id -u) == 0 ]]; then
  ikf_apt_install fuse3
fi
cargo build --release --bin ipfs-kit-fuse
mkdir -p "$MNT"
target/release/ipfs-kit-fuse mount "$MNT" "$@"
echo "mounted at $MNT:"
ls -la "$MNT"
echo "unmount with: $PWD/target/release/ipfs-kit-fuse unmount $MNT"
