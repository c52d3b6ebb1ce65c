#!/bin/busybox sh
# PID 1 of Lia's initramfs: load the virtio drivers, mount the task's disk, hand Lia's own
# files (the guest's init, the sidecar, node-pty) to it on a tmpfs, and switch to that init.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The virtio-mmio devices are described in ACPI tables (QEMU's microvm; Firecracker since 1.8).
while read -r m; do insmod "/modules/$m" 2>/dev/null; done < /modules/order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -o rw /dev/vda /newroot; then
  echo "lia-initramfs: cannot mount the root disk /dev/vda" >/dev/console
  poweroff -f
fi
mount -t tmpfs -o mode=0755,size=64m tmpfs /newroot/run
cp -a /lia /newroot/run/lia
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /run/lia/init
