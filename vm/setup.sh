#!/usr/bin/env bash
# Sets up a real KVM host for Lia's firecracker driver: checks KVM, installs Firecracker and its
# jailer, creates the unprivileged user the VMs run as and the jailer's chroot base, and builds
# the guest image. Run as root on the host, once; safe to run again.
#   FIRECRACKER_VERSION=v1.16.1 bash vm/setup.sh
set -euo pipefail
VERSION="${FIRECRACKER_VERSION:-v1.16.1}"
ARCH="$(uname -m)"
PREFIX="${LIA_FC_PREFIX:-/usr/local/bin}"
CHROOT_BASE="${LIA_FC_CHROOT_BASE:-/srv/lia/jailer}"
VM_USER="${LIA_FC_USER:-lia-vm}"
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -c /dev/kvm ] || die "/dev/kvm is missing: enable virtualization (VT-x/AMD-V) or nested virtualization for this machine"
say "checking that KVM really runs a vCPU…"
cd "$(dirname "$0")/.."
node --import tsx -e "import('./vm/kvm-probe.ts').then(async m => { const r = await m.probeKvm(5000); console.error('[setup] KVM:', r.reason); process.exit(r.usable ? 0 : 1) })" \
  || die "KVM does not run a vCPU here; Lia would fall back to QEMU with software emulation"

if [ ! -x "$PREFIX/firecracker" ] || ! "$PREFIX/firecracker" --version 2>/dev/null | grep -q "${VERSION#v}"; then
  say "installing Firecracker $VERSION ($ARCH) into $PREFIX…"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  url="https://github.com/firecracker-microvm/firecracker/releases/download/$VERSION/firecracker-$VERSION-$ARCH.tgz"
  curl -fsSL "$url" -o "$tmp/fc.tgz" || die "could not download $url (no internet? copy firecracker and jailer into $PREFIX by hand)"
  tar -xzf "$tmp/fc.tgz" -C "$tmp"
  install -m 0755 "$tmp/release-$VERSION-$ARCH/firecracker-$VERSION-$ARCH" "$PREFIX/firecracker"
  install -m 0755 "$tmp/release-$VERSION-$ARCH/jailer-$VERSION-$ARCH" "$PREFIX/jailer"
fi
say "$("$PREFIX/firecracker" --version | head -1)"

id "$VM_USER" >/dev/null 2>&1 || { say "creating user $VM_USER"; useradd --system --no-create-home --shell /usr/sbin/nologin "$VM_USER"; }
install -d -m 0750 "$CHROOT_BASE"
[ -d /sys/fs/cgroup/cgroup.controllers ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || say "warning: cgroup v2 not mounted at /sys/fs/cgroup; the jailer's limits need it"
modprobe vhost_vsock 2>/dev/null || true

say "building the guest image (cached)…"
node --import tsx -e "import('./vm/image/ensure.ts').then(m => m.ensureGuestImage(s => console.error(s))).then(i => console.error('[setup] guest image:', JSON.stringify(i)))"

cat >&2 <<EOT
[setup] done. Start this host's worker with:
  LIA__VM__DRIVER=firecracker LIA__HOST__ID=$(hostname -s | tr 'A-Z_' 'a-z-') \\
  LIA__DATABASE__URL=... LIA__TEMPORAL__ADDRESS=... node --import tsx workers/main.ts host
EOT
