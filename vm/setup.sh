#!/usr/bin/env bash
# Prepares a real KVM host for Lia's firecracker driver, and says what it did. Run as root, once
# per host; running it again changes only what is missing. It downloads nothing: the operator
# brings Firecracker — a release's two binaries, or a distribution package.
#
#   bash vm/setup.sh --firecracker /path/to/firecracker --jailer /path/to/jailer
#   bash vm/setup.sh --package /path/to/firecracker_1.16.1_amd64.deb
#   bash vm/setup.sh --dry-run ...      say what it would do, change nothing
#
# What it does, in order (each step reported as done, already there, or would do):
#   1. checks root, KVM (a probe that a vCPU really runs), cgroups
#   2. installs firecracker and jailer into $PREFIX (default /usr/local/bin), or the package
#   3. creates the state folder and the jailer's chroot base on the same file system (the
#      driver hard-links each VM's disk and snapshot into its jail) and /run/lia
#   4. cgroups: v2 — enables cpu, memory and pids for /sys/fs/cgroup/lia; v1 — makes lia/ in
#      the cpu, memory and pids hierarchies
#   5. checks that the VMs' uid range (LIA__VM__UID_BASE, 10000 uids) belongs to no account
#      and to no /etc/subuid range (the VMs need no accounts: the jailer takes numbers)
#   6. builds the guest image (cached), then runs vm/check-host.sh: every driver's self-check
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${PREFIX:-/usr/local/bin}"
STATE_DIR="${LIA__STATE__DIR:-$PWD/.lia-state}"
HOST_ID="${LIA__HOST__ID:-local}"
JAIL_DIR="${LIA__VM__FIRECRACKER_JAIL_DIR:-$STATE_DIR/hosts/$HOST_ID/jail}"
UID_BASE="${LIA__VM__UID_BASE:-900000}"
fc_bin= jailer_bin= package= dry=
while [ $# -gt 0 ]; do
  case "$1" in
    --firecracker) fc_bin="$2"; shift 2 ;;
    --jailer) jailer_bin="$2"; shift 2 ;;
    --package) package="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) echo "usage: vm/setup.sh (--firecracker FILE --jailer FILE | --package FILE.deb) [--dry-run]" >&2; exit 2 ;;
  esac
done

done_=() ;
say() { printf '[setup] %s\n' "$*" >&2; }
did() { done_+=("$*"); say "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; summary; exit 1; }
# Same probe, same verdict as Lia's host worker (a vCPU that runs within 1.5 s).
summary() {
  [ ${#done_[@]} -eq 0 ] && return
  if [ -n "$dry" ]; then printf '[setup] would do:\n' >&2; else printf '[setup] what it did:\n' >&2; fi
  for d in "${done_[@]}"; do printf '  - %s\n' "$d" >&2; done
}
# Runs a change, or only says it under --dry-run.
act() { local what="$1"; shift; if [ -n "$dry" ]; then did "(dry run) $what"; else "$@"; did "$what"; fi; }

# 1. The host.
[ "$(id -u)" = 0 ] || die "run as root (the jailer, cgroups and the VMs' uids need it)"
[ -c /dev/kvm ] || die "/dev/kvm is missing: enable virtualization (VT-x/AMD-V), or nested virtualization for this machine"
say "checking that KVM really runs a vCPU…"
kvm="$(node --import tsx -e "import('./vm/kvm-probe.ts').then(async m => { const r = await m.probeKvm(); console.log((r.usable ? 'ok ' : 'no ') + r.reason) })")"
case "$kvm" in
  ok*) say "KVM: ${kvm#ok }" ;;
  *) [ -n "$dry" ] && say "KVM: ${kvm#no } — Firecracker could not run here" || die "KVM does not run a vCPU here (${kvm#no }): Firecracker cannot run on this host; Lia would use QEMU with software emulation" ;;
esac
cgroup=none
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers && grep -qw pids /sys/fs/cgroup/cgroup.controllers; then
  cgroup=v2
elif grep -q ' cgroup .*pids' /proc/mounts && grep -q ' cgroup .*memory' /proc/mounts && grep -qE ' cgroup .*cpu[,[:space:]]' /proc/mounts; then
  cgroup=v1
else
  die "no cgroup hierarchy with the cpu, memory and pids controllers (mount cgroup2 at /sys/fs/cgroup)"
fi
say "cgroups: $cgroup"

# 2. Firecracker and its jailer.
if [ -n "$package" ]; then
  [ -f "$package" ] || die "no package at $package"
  if dpkg-deb -c "$package" | grep -q '/firecracker$' && dpkg-deb -c "$package" | grep -q '/jailer$'; then
    act "installed the package $(dpkg-deb -f "$package" Package) $(dpkg-deb -f "$package" Version)" dpkg -i "$package"
  else
    die "$package holds no firecracker and jailer binaries"
  fi
  fc_bin="$(command -v firecracker || true)"; jailer_bin="$(command -v jailer || true)"
  [ -n "$dry" ] || { [ -n "$fc_bin" ] && [ -n "$jailer_bin" ] || die "the package installed no firecracker/jailer on PATH"; }
elif [ -n "$fc_bin" ] || [ -n "$jailer_bin" ]; then
  for f in "$fc_bin" "$jailer_bin"; do [ -x "$f" ] || die "not an executable file: ${f:-(missing --firecracker or --jailer)}"; done
  v_fc="$("$fc_bin" --version 2>&1 | head -1)"; v_j="$("$jailer_bin" --version 2>&1 | head -1)"
  case "$v_fc" in *irecracker*) ;; *) die "$fc_bin --version says '$v_fc', not Firecracker" ;; esac
  for pair in "firecracker:$fc_bin" "jailer:$jailer_bin"; do
    name="${pair%%:*}"; src="${pair#*:}"
    if [ -x "$PREFIX/$name" ] && cmp -s "$src" "$PREFIX/$name"; then
      say "$PREFIX/$name is already this binary"
    else
      act "installed $name ($( [ "$name" = firecracker ] && echo "$v_fc" || echo "$v_j")) as $PREFIX/$name" install -m 0755 "$src" "$PREFIX/$name"
    fi
  done
else
  fc_bin="$(command -v firecracker || true)"; jailer_bin="$(command -v jailer || true)"
  [ -n "$fc_bin" ] && [ -n "$jailer_bin" ] || die "no Firecracker given and none installed: pass --firecracker and --jailer (a release's binaries) or --package (a distribution package)"
  say "using the installed $fc_bin and $jailer_bin"
fi

# 3. Folders, on one file system.
for d in "$STATE_DIR" "$JAIL_DIR" /run/lia; do
  if [ -d "$d" ]; then say "$d exists"; else act "created $d (0700)" install -d -m 0700 "$d"; fi
done
if [ -z "$dry" ] && [ "$(stat -c %d "$STATE_DIR")" != "$(stat -c %d "$JAIL_DIR")" ]; then
  die "$JAIL_DIR is not on the file system of $STATE_DIR: the driver hard-links each VM's disk into its jail (set LIA__VM__FIRECRACKER_JAIL_DIR)"
fi

# 4. cgroups for the VMs.
if [ "$cgroup" = v2 ]; then
  for c in cpu memory pids; do
    if grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control; then :; else
      act "enabled the $c controller for child cgroups (/sys/fs/cgroup/cgroup.subtree_control)" sh -c "echo +$c > /sys/fs/cgroup/cgroup.subtree_control"
    fi
  done
  [ -d /sys/fs/cgroup/lia ] && say "/sys/fs/cgroup/lia exists" || act "created the cgroup /sys/fs/cgroup/lia" mkdir /sys/fs/cgroup/lia
  if [ -d /sys/fs/cgroup/lia ] && ! grep -qw pids /sys/fs/cgroup/lia/cgroup.subtree_control; then
    act "enabled cpu, memory and pids below /sys/fs/cgroup/lia" sh -c 'echo "+cpu +memory +pids" > /sys/fs/cgroup/lia/cgroup.subtree_control'
  fi
else
  for c in cpu memory pids; do
    m="$(awk -v c="$c" '$3 == "cgroup" && ("," $4 ",") ~ ("," c ",") { print $2; exit }' /proc/mounts)"
    [ -d "$m/lia" ] && say "$m/lia exists" || act "created the cgroup $m/lia" mkdir "$m/lia"
  done
fi

# 5. The VMs' uids: numbers only, but nobody else's.
last=$((UID_BASE + 9999))
if getent passwd | awk -F: -v a="$UID_BASE" -v b="$last" '$3 >= a && $3 <= b { found=1 } END { exit !found }'; then
  die "an account has a uid in $UID_BASE–$last (the VMs' range): set LIA__VM__UID_BASE elsewhere"
fi
if [ -f /etc/subuid ] && awk -F: -v a="$UID_BASE" -v b="$last" '$2 <= b && $2 + $3 - 1 >= a { found=1 } END { exit !found }' /etc/subuid; then
  die "/etc/subuid gives part of $UID_BASE–$last (the VMs' range) to a user: set LIA__VM__UID_BASE elsewhere"
fi
say "the VMs' uids $UID_BASE–$last belong to no account and no subordinate range"

# 6. The image and the proof.
if [ -n "$dry" ]; then
  did "(dry run) build the guest image and run vm/check-host.sh"
  summary
  exit 0
fi
say "building the guest image (cached)…"
node --import tsx vm/image/ensure.ts >/dev/null
did "built (or found) the guest image"
summary
say "checking the host (each driver boots, suspends and restores one VM):"
LIA__VM__FIRECRACKER_BIN="${LIA__VM__FIRECRACKER_BIN:-$PREFIX/firecracker}" \
LIA__VM__JAILER_BIN="${LIA__VM__JAILER_BIN:-$PREFIX/jailer}" \
  bash vm/check-host.sh
cat >&2 <<EOT
[setup] done. Start this host's worker with:
  LIA__VM__DRIVER=firecracker LIA__HOST__ID=$HOST_ID LIA__STATE__DIR=$STATE_DIR \\
  LIA__DATABASE__URL=... LIA__TEMPORAL__ADDRESS=... node --import tsx workers/main.ts host
EOT
