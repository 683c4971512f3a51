#!/bin/sh
# peerpods pod VM init (PID 1 of the initramfs, busybox sh). Loads the virtio drivers, mounts what
# runc needs (cgroup2, a tmpfs for container bundles), brings up the network (the provider's private
# address from peerpods.ip, or qemu's user-mode network when none is given), and then
# becomes peerpods-agent: it serves the agent port (mutual TLS with the certificate the host put in
# /peerpods/agent-tls), runs the pod's workload when the host supplied
# one, reports "ready" with its boot time on the virtio-serial port "peerpods.status" (a file on the
# host) and then a heartbeat line every peerpods.heartbeat seconds.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run/peerpods/containers /tmp
mount -t tmpfs -o mode=700 bundles /run/peerpods/containers
[ -f /peerpods/user-data ] && cp /peerpods/user-data /run/peerpods/user-data

while read -r module; do
  insmod "/lib/modules/$module" || echo "peerpods-init: cannot load $module"
done < /lib/modules/load-order

# Value of "name=value" on the kernel command line, or $2.
param() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return ;; esac
  done
  echo "$2"
}

# The /dev node of the virtio-serial port named $1, once the driver has made it (up to 2 s).
port() {
  for _ in $(seq 200); do
    for dir in /sys/class/virtio-ports/*; do
      if [ "$(cat "$dir/name" 2>/dev/null)" = "$1" ] && [ -e "/dev/${dir##*/}" ]; then
        echo "/dev/${dir##*/}"
        return 0
      fi
    done
    usleep 10000
  done
  echo "peerpods-init: no virtio-serial port $1" >&2
  return 1
}

ip link set lo up
private_ip=$(param peerpods.ip '')
if [ -n "$private_ip" ]; then
  # The provider's VPC: the VM reaches the host's bridge and its subnet only, so no default route.
  ip link set eth0 mtu "$(param peerpods.mtu 1500)" && ip link set eth0 up && ip addr add "$private_ip" dev eth0
else
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi

exec /peerpods/agent \
  --listen ":$(param peerpods.agent_port 1024)" \
  --status-port "$(port peerpods.status)" \
  --heartbeat "$(param peerpods.heartbeat 5)s" \
  --instance-id "$(param peerpods.id '')" \
  --tls-dir /peerpods/agent-tls \
  --boot-workload /peerpods/workload.sh
