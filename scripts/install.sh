#!/bin/sh
# Installs ipfs-kit-fuse: the binary, the systemd units, the fstab helper,
# a default config (never overwriting one) and the operations guide.
#
#   scripts/install.sh                 # build (release) and install under /usr/local
#   PREFIX=/usr DESTDIR=/tmp/pkg scripts/install.sh   # packaging
#   BIN=target/release/ipfs-kit-fuse scripts/install.sh   # use a built binary
#
# Then:  systemctl daemon-reload
#        systemctl enable --now "ipfs-kit-fuse@$(systemd-escape --path /mnt/vfs).service"
set -eu

cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-/etc/systemd/system}
SBINDIR=${SBINDIR:-/sbin}
CONFDIR=${CONFDIR:-/etc/ipfs-kit-fuse}
BIN=${BIN:-}

if [ -z "$BIN" ]; then
    cargo build --release --locked
    BIN=target/release/ipfs-kit-fuse
fi
[ -x "$BIN" ] || { echo "install.sh: $BIN is not an executable" >&2; exit 1; }

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR$SBINDIR" \
    "$DESTDIR$CONFDIR" "$DESTDIR$PREFIX/share/doc/ipfs-kit-fuse"
install -m 0755 "$BIN" "$DESTDIR$PREFIX/bin/ipfs-kit-fuse"

# Units name /usr/local (binary, docs); point them at PREFIX.
for unit in ipfs-kit-fuse.service ipfs-kit-fuse@.service; do
    sed "s|/usr/local/|$PREFIX/|g" "systemd/$unit" \
        > "$DESTDIR$UNITDIR/$unit"
    chmod 0644 "$DESTDIR$UNITDIR/$unit"
done

sed "s|^BIN=.*|BIN=\${IPFS_KIT_FUSE_BIN:-$PREFIX/bin/ipfs-kit-fuse}|" scripts/mount.fuse.ipfs-kit-fuse \
    > "$DESTDIR$SBINDIR/mount.fuse.ipfs-kit-fuse"
chmod 0755 "$DESTDIR$SBINDIR/mount.fuse.ipfs-kit-fuse"

if [ ! -e "$DESTDIR$CONFDIR/config.toml" ]; then
    umask 077
    cat > "$DESTDIR$CONFDIR/config.toml" <<'TOML'
# ipfs-kit-fuse mount table. Reload a running mount with SIGHUP
# (systemctl reload ipfs-kit-fuse@...), or change it live with
# `ipfs-kit-fuse backend add|remove ... --save`.
[vfs]
drain_timeout_secs = 120

[[mount]]
path = "/local"
uri = "fs:///var/lib/ipfs-kit-fuse/local"

[[mount]]
path = "/memory"
scheme = "memory"
TOML
fi

for doc in docs/OPERATIONS.md docs/CONTROL.md; do
    [ -f "$doc" ] && install -m 0644 "$doc" "$DESTDIR$PREFIX/share/doc/ipfs-kit-fuse/"
done

if [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
echo "installed ipfs-kit-fuse to $DESTDIR$PREFIX/bin, units to $DESTDIR$UNITDIR, helper to $DESTDIR$SBINDIR"
