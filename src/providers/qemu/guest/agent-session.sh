#!/bin/sh
# One connection to the pod VM's agent port (stdin/stdout are the socket): a line protocol the host
# uses to check the VM and to hand it data after boot.
#   ping              -> pong
#   echo TEXT         -> TEXT
#   health            -> {"ready":true,"uptimeSeconds":N,"workload":"none|running|exited N"}
#   user-data BASE64  -> ok   (replaces /run/peerpods/user-data)
#   workload BASE64   -> ok   (starts this script as the workload, once: how a warm-pool VM, booted
#                              without one, gets the workload of the pod that claims it)
#   quit              -> closes the connection
while read -r command rest; do
  case "$command" in
    ping) echo pong ;;
    echo) echo "$rest" ;;
    health)
      read -r up _ < /proc/uptime
      workload=$(cat /run/peerpods/workload.state 2>/dev/null || echo none)
      echo "{\"ready\":true,\"uptimeSeconds\":$up,\"workload\":\"$workload\"}"
      ;;
    user-data)
      if echo "$rest" | base64 -d > /run/peerpods/user-data.new 2>/dev/null; then
        mv /run/peerpods/user-data.new /run/peerpods/user-data
        echo ok
      else
        echo "error: user-data must be base64"
      fi
      ;;
    workload)
      if [ -e /run/peerpods/workload.state ]; then
        echo "error: a workload was already started"
      elif echo "$rest" | base64 -d > /run/peerpods/workload.sh 2>/dev/null; then
        echo running > /run/peerpods/workload.state
        out=/dev/null
        for dir in /sys/class/virtio-ports/*; do
          [ "$(cat "$dir/name" 2>/dev/null)" = peerpods.workload ] && out="/dev/${dir##*/}"
        done
        (
          sh /run/peerpods/workload.sh > "$out" 2>&1
          echo "exited $?" > /run/peerpods/workload.state
        ) < /dev/null > /dev/null 2>&1 &
        echo ok
      else
        echo "error: workload must be base64"
      fi
      ;;
    quit) exit 0 ;;
    "") ;;
    *) echo "error: unknown command $command" ;;
  esac
done
