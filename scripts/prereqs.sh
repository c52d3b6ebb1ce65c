#!/usr/bin/env bash
# System packages Lia runs on, installed from Debian's archive where missing (root only;
# otherwise it names what to install). Quiet when everything is there.
set -euo pipefail
want=()
have() { command -v "$1" >/dev/null 2>&1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
have qemu-system-x86_64 || want+=(qemu-system-x86)
have qemu-img || want+=(qemu-utils)
have debootstrap || want+=(debootstrap)
have cpio || want+=(cpio)
have mkfs.ext4 || want+=(e2fsprogs)
have socat || want+=(socat)
have dpkg-deb || want+=(dpkg)
if [ "${1:-}" = test ]; then
  have chromium || want+=(chromium)
fi
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "[setup] missing system packages: ${want[*]} — install them (sudo apt-get install ${want[*]})" >&2
  exit 1
fi
echo "[setup] installing system packages: ${want[*]} (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${want[@]}" >&2
