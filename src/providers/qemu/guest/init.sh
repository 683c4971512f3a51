#!/bin/sh
# peerpods pod VM init (PID 1 of the initramfs, busybox sh). Loads the virtio drivers, brings up
# qemu's user-mode network, serves the agent port, runs the pod's workload when the host supplied
# one, reports "ready" with its boot time on the virtio-serial port "peerpods.status" (a file on
# the host) and then a heartbeat line every peerpods.heartbeat seconds.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run/peerpods /tmp
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

# /proc/uptime has two decimals: "1.94" -> 1940.
uptime_ms() {
  read -r up _ < /proc/uptime
  echo "${up%.*}${up#*.}0"
}

ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2

exec 3> "$(port peerpods.status)"
nc -ll -p "$(param peerpods.agent_port 1024)" -e /peerpods/agent-session &

if [ -f /peerpods/workload.sh ]; then
  echo running > /run/peerpods/workload.state
  (
    sh /peerpods/workload.sh > "$(port peerpods.workload)" 2>&1
    code=$?
    echo "exited $code" > /run/peerpods/workload.state
    echo "workload exited code=$code" >&3
  ) &
fi

echo "ready boot_ms=$(uptime_ms) kernel=$(uname -r)" >&3
heartbeat=$(param peerpods.heartbeat 5)
while :; do
  sleep "$heartbeat"
  workload=$(cat /run/peerpods/workload.state 2>/dev/null || echo none)
  echo "heartbeat uptime_ms=$(uptime_ms) workload=$(echo "$workload" | tr ' ' ':')" >&3
done
