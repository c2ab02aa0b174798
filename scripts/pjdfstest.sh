#!/usr/bin/env bash
# POSIX semantics: the pjdfstest 0.2.2 suite (Rust rewrite, crates.io),
# installed once into ~/.cache/ipfs-kit-fuse (about 3 min on 2 cores), run
# against a subdirectory of /local on a fresh mount made with
# `-o allow_other,default_permissions` (its children switch uid).
# Known differences are listed as expected failures in scripts/pjdfstest-expected.txt
# and explained in docs/SEMANTICS.md; anything else fails this script.
#
# Usage: bash scripts/pjdfstest.sh [TEST_PATTERN...]
#   IKF_PJD_RAW=1   ignore the expected-failures list (to see the raw numbers)
#   IKF_PJD_DIR=memory  run on /memory instead of /local (for the figures in
#                   docs/SEMANTICS.md; the expected-failures list is /local's)
#   IKF_PJD_DIR=s3  run on /s3: a bucket on moto (scripts/moto.sh), started on
#                   127.0.0.1 for the run and stopped after it
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [[ $(id -u) != 0 ]]; then
  echo "pjdfstest needs root (it changes owners and switches users)" >&2
  exit 1
fi
ikf_apt_install libacl1-dev fuse3
id tests >/dev/null 2>&1 || useradd -U -M -d / -s /usr/sbin/nologin tests
PJD=$(ikf_cargo_tool pjdfstest 0.2.2)
BIN=$(ikf_binary)
DIR=${IKF_PJD_DIR:-local}
S3_CONFIG=
if [[ $DIR == s3 ]]; then
  MOTO=$(bash scripts/moto.sh)
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$MOTO" -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
  MOTO_PID=$!
  # The bucket; moto reads the access key from the header and checks no signature.
  python3 -c '
import sys, time, urllib.request
url = "http://127.0.0.1:%s/pjd" % sys.argv[1]
auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
for _ in range(300):
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="PUT", headers={"Authorization": auth}))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("moto did not start")
' "$PORT"
  S3_CONFIG=$(mktemp /tmp/ikf-pjd-s3.XXXXXX)
  printf '%s\n' '[[mount]]' 'path = "/s3"' 'scheme = "s3"' '[mount.options]' 'bucket = "pjd"' \
    "endpoint = \"http://127.0.0.1:$PORT\"" 'region = "us-east-1"' 'access_key_id = "test"' \
    'secret_access_key = "test"' 'disable_config_load = "true"' > "$S3_CONFIG"
fi
ikf_mount "$BIN" allow_other,default_permissions "$S3_CONFIG"
if [[ $DIR == s3 ]]; then
  trap 'ikf_unmount; kill "$MOTO_PID" 2>/dev/null; rm -f "$S3_CONFIG"' EXIT
fi
# The config with the expected failures (one name a line, '#' comments).
CONF=$IKF_TMP/pjdfstest.toml
names=""
if [[ "${IKF_PJD_RAW:-}" != 1 ]]; then
  names=$(sed 's/#.*//; /^[[:space:]]*$/d; s/^[[:space:]]*//; s/[[:space:]]*$//; s/.*/"&"/' \
    scripts/pjdfstest-expected.txt | paste -sd, -)
fi
sed "/^\[settings\]/a expected_failures = [$names]" scripts/pjdfstest.toml > "$CONF"
# The backing root the daemon made is its owner's only (umask 027); the
# suite's other users must be able to enter it. Stored in the backing dir
# (the root of an S3 mount keeps no attributes: 0755 is its default).
[[ $DIR == s3 ]] || chmod 755 "$IKF_MNT/$DIR"
mkdir -p "$IKF_MNT/$DIR/pjdfstest"
chmod 755 "$IKF_MNT/$DIR/pjdfstest"
OUT=$IKF_TMP/pjdfstest.out
rc=0
"$PJD" -c "$CONF" -p "$IKF_MNT/$DIR/pjdfstest" "$@" > "$OUT" 2>&1 || rc=$?
# The per-test lines go to a log kept beside the summary; failures are shown.
LOG=${IKF_PJD_LOG:-/tmp/ipfs-kit-fuse-pjdfstest.log}
sed 's/\x1b\[[0-9;]*m//g' "$OUT" > "$LOG"
grep -E ' (FAILED|PASSED UNEXPECTEDLY)$' "$LOG" || true
echo "full log: $LOG"
grep '^Summary' "$LOG" || { tail -n 30 "$LOG"; rc=1; }
exit $rc
