#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and run gmemtest. Idempotent: packages
# already installed are not fetched again, and apt-get update runs only when something is missing.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config
  libgtest-dev libgmock-dev googletest libfmt-dev libbenchmark-dev zlib1g-dev
  # harness and VM images
  python3 python3-pytest python3-yaml python3-matplotlib qemu-system-x86 busybox-static cpio zstd xz-utils kmod file e2fsprogs
  # kernels built from source (vm-images, bisect)
  bc flex bison libelf-dev libssl-dev git patch ccache
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all ${#packages[@]} packages present"
