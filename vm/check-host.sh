#!/usr/bin/env bash
# What this host offers Lia's VMs — KVM, QEMU, Firecracker and its jailer, the guest image's
# artifacts, cgroups, vsock — and each driver's self-check (one VM booted, suspended, restored),
# the one a host worker runs before it takes tasks. Exit 0 when a driver works here.
#   bash vm/check-host.sh          (reads LIA__* like Lia does, and .env if present)
set -euo pipefail
cd "$(dirname "$0")/.."
envfile=()
[ -f .env ] && envfile=(--env-file=.env)
exec node "${envfile[@]}" --import tsx vm/check-host.ts "$@"
