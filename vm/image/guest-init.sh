#!/bin/sh
# PID 1 of a Lia guest (after the initramfs): mounts, the egress-only network, then the agent
# sidecar on its virtio-serial port under tini, which reaps orphans. No systemd: boot time is
# what a task waits for.
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
hostname lia-vm
# The disk may be larger than the image's file system: grow it (online) in the background.
resize2fs /dev/vda >/dev/null 2>&1 &
# One address, no default route: the only peer is the host's egress proxy at 10.0.2.100.
ip link set lo up
ip link set eth0 up 2>/dev/null && ip addr add 10.0.2.15/24 dev eth0
port=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat "$p/name" 2>/dev/null)" = lia.sidecar ] && port=/dev/$(basename "$p")
done
if [ -z "$port" ]; then
  echo "lia-init: no virtio-serial port named lia.sidecar" >/dev/console
  echo o >/proc/sysrq-trigger
fi
mkdir -p /work
echo "lia-init: starting the sidecar on $port" >/dev/console
exec /usr/bin/tini -s -- /usr/local/bin/node /run/lia/sidecar.mjs --serial "$port" --workdir /work
