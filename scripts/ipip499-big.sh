#!/usr/bin/env bash
# The two 1 GiB IPIP-0499 vectors (v1-2025: 1024 x 1 MiB and 1024 x 1 MiB + 1).
# Inputs are streamed from the ChaCha20 generator, nothing is written to disk.
# Kept out of `cargo test` for time; takes well under a minute in release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo test --release --test car_ipip499 -- --ignored --nocapture
