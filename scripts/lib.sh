# Shared helpers for scripts/*.sh (sourced, not run): mounting the built
# binary in a temp dir for the external suites, and cached tool installs.

# Where tools installed with `cargo install` are kept between runs.
IKF_CACHE="${IKF_CACHE:-$HOME/.cache/ipfs-kit-fuse}"

# Installs APT packages that are missing (root only; Debian/Ubuntu).
ikf_apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "==> apt-get install ${missing[*]}"
  if [[ "${IKF_APT_UPDATED:-}" != 1 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export IKF_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ikf_cargo_tool NAME VERSION: installs a crates.io binary once into the cache
# and prints the path of its bin/NAME.
ikf_cargo_tool() {
  local name=$1 version=$2 root="$IKF_CACHE/$1-$2"
  if [[ ! -x "$root/bin/$name" ]]; then
    echo "==> cargo install $name $version (cached in $root)" >&2
    cargo install "$name" --version "$version" --locked --root "$root" >&2
  fi
  echo "$root/bin/$name"
}

# The binary under test (debug unless IKF_PROFILE=release), built if needed.
# Debug builds take --all-targets, as `cargo test` does: the dev-dependencies
# change the features of shared crates, so a bin-only build would compile
# parquet, arrow and the rest a second time (minutes on 2 cores in CI).
ikf_binary() {
  local profile=${IKF_PROFILE:-debug} flag=(--all-targets)
  [[ $profile == release ]] && flag=(--release --bin ipfs-kit-fuse)
  cargo build -q "${flag[@]}" >&2
  echo "$PWD/target/$profile/ipfs-kit-fuse"
}

# ikf_mount BIN [OPTS] [CONFIG]: mounts CONFIG (default: the built-in default
# config) in a fresh temp dir; sets IKF_TMP and IKF_MNT and arranges unmount +
# cleanup at exit.
ikf_mount() {
  local bin=$1 opts=${2:-} config=${3:-}
  IKF_TMP=$(mktemp -d /tmp/ikf-suite.XXXXXX)
  chmod 755 "$IKF_TMP" # other users (pjdfstest switches uid) must reach the mount
  IKF_MNT=$IKF_TMP/mnt
  mkdir -p "$IKF_MNT" "$IKF_TMP/home"
  export IPFS_KIT_HOME=$IKF_TMP/home
  IKF_BIN=$bin
  trap ikf_unmount EXIT
  "$bin" mount "$IKF_MNT" ${opts:+-o "$opts"} ${config:+--config "$config"}
}

ikf_unmount() {
  [[ -n "${IKF_MNT:-}" ]] || return 0
  if grep -q " $IKF_MNT " /proc/self/mountinfo; then
    "$IKF_BIN" unmount "$IKF_MNT" --timeout 60 || umount -l "$IKF_MNT" || true
  fi
  rm -rf "$IKF_TMP"
  IKF_MNT=
}
