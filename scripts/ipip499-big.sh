#!/usr/bin/env bash
# The two 1 GiB IPIP-0499 vectors (v1-2025: 1024 x 1 MiB and 1024 x 1 MiB + 1).
# Inputs are streamed from the ChaCha20 generator, nothing is written to disk.
# Kept out of `cargo test` for time; takes well under a minute in release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --release --test car_ipip499 -- --ignored --nocapture

# Past 1 GiB (more than 1024 leaves) the block order has a subtlety: the node
# closing a full group is written after the next leaf. Check CAR bytes against
# ipfs-car on a 1 GiB + 2 MiB file, if the oracle is installed.
ipfscar="${IPFS_KIT_ORACLE_DIR:-$HOME/.cache/ipfs-kit-fuse/oracles}/ipfs-car/node_modules/.bin/ipfs-car"
if [[ -x "$ipfscar" ]]; then
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/ipip-big.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    head -c $(((1024 + 2) * 1048576 + 77)) /dev/urandom >"$tmp/in.bin"
    cargo build --release --quiet
    "$ipfscar" pack "$tmp/in.bin" --no-wrap --output "$tmp/theirs.car" >/dev/null
    target/release/ipfs-kit-fuse car pack "$tmp/in.bin" --profile ipfs-car -o "$tmp/ours.car" >/dev/null
    cmp "$tmp/theirs.car" "$tmp/ours.car"
    echo "ok: CAR of a 1 GiB + 2 MiB file is byte-identical to ipfs-car's"
else
    echo "skipped: ipfs-car oracle missing (run scripts/oracles.sh)"
fi
