#!/usr/bin/env bash
# Tools the metadata and permission tests (tests/mount_meta.rs) run: git (a
# checkout copied in with `cp -a` must stay clean), rsync, and setpriv
# (util-linux: runs commands as `nobody`). Installed with apt where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
[[ $(id -u) == 0 ]] || { echo "posix-tools: not root, nothing installed" >&2; exit 0; }
ikf_apt_install git rsync util-linux
