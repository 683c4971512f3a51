#!/bin/sh
# One connection to the pod VM's agent port (stdin/stdout are the socket): a line protocol the host
# uses to check the VM and to hand it data after boot.
#   ping              -> pong
#   echo TEXT         -> TEXT
#   health            -> {"ready":true,"uptimeSeconds":N,"workload":"none|running|exited N"}
#   user-data BASE64  -> ok   (replaces /run/peerpods/user-data)
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
    quit) exit 0 ;;
    "") ;;
    *) echo "error: unknown command $command" ;;
  esac
done
