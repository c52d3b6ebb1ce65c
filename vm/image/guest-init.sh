#!/bin/sh
# PID 1 of a Lia guest (after the initramfs, which puts this file and the sidecar on a tmpfs at
# /run/lia): mounts, then the agent sidecar under tini, which reaps orphans. No systemd: boot
# time is what a task waits for. The guest has no network card: only loopback, where the
# sidecar offers the agent its way out (127.0.0.1:3128, carried to the host's egress proxy).
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
# hidepid: the agent (an unprivileged user) sees only its own processes, not the sidecar's.
mount -t proc -o hidepid=2 proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname lia-vm
# The disk may be larger than the image's file system: grow it (online) in the background.
resize2fs /dev/vda >/dev/null 2>&1 &
ip link set lo up
say() { echo "lia-init: $*" >/dev/console; }

# The host channel: two virtio-serial ports (QEMU), or vsock (Firecracker, which has no
# virtio-serial), joined to the sidecar's Unix sockets by socat.
session= egress=
for p in /sys/class/virtio-ports/*; do
  case "$(cat "$p/name" 2>/dev/null)" in
    lia.sidecar) session=/dev/$(basename "$p") ;;
    lia.egress) egress=/dev/$(basename "$p") ;;
  esac
done
if [ -n "$session" ] && [ -n "$egress" ]; then
  say "host channel: virtio-serial ($session, $egress)"
  # socat reads the egress port a virtio buffer (4 KiB) at a time, in C; a read of 0 means the
  # host is gone (worker restart, suspend), which ends the sidecar's session: open it again.
  (while :; do socat -b 65536 UNIX-CONNECT:/run/lia/egress.sock "OPEN:$egress" 2>/dev/null; sleep 0.2; done) &
  channel="--serial $session --egress-listen unix:/run/lia/egress.sock"
elif ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ 2>/dev/null | grep -q virtio; then
  say "host channel: vsock (ports 1024, 1025)"
  socat VSOCK-LISTEN:1024,reuseaddr,fork UNIX-CONNECT:/run/lia/session.sock &
  socat VSOCK-LISTEN:1025,reuseaddr,fork UNIX-CONNECT:/run/lia/egress.sock &
  channel="--listen unix:/run/lia/session.sock --egress-listen unix:/run/lia/egress.sock"
else
  say "no host channel: neither virtio-serial ports lia.sidecar and lia.egress nor a vsock device"
  echo o >/proc/sysrq-trigger
fi
mkdir -p /work
# shellcheck disable=SC2086 # $channel is a list of arguments
exec /usr/bin/tini -s -- /usr/local/bin/node /run/lia/sidecar.mjs $channel \
  --workdir /work --proxy-listen 127.0.0.1:3128 --agent-user agent --apply-identity
