#!/usr/bin/env bash
# A "host" for multi-host vale networks on one machine: a network namespace with its own Docker engine
# (data root, exec root, API socket) and its own vale plugin, whose plugin directory is private to a
# mount namespace, so each engine finds its own plugin. Two of these joined by an underlay veth are
# two hosts (README: "Spanning hosts").
#
#   docker/host-ns.sh up NAME UNDERLAY_IF ADDR/LEN    start it (the namespace and interface must exist)
#   docker/host-ns.sh down NAME                       stop what `up` started, remove its files
#
# Everything lives in /tmp/bunmap-host-NAME: docker.sock, dockerd.pid, plugin.pid, logs, state.
# Then: docker -H unix:///tmp/bunmap-host-NAME/docker.sock ...
set -euo pipefail
cmd=${1:?up|down}
name=${2:?host name}
dir=/tmp/bunmap-host-$name
repo=$(cd "$(dirname "$0")/.." && pwd)
bun=${BUN:-$(command -v bun || echo "$repo/node_modules/.bin/bun")}

case $cmd in
up)
  dev=${3:?underlay interface}
  addr=${4:?address/len}
  mkdir -p "$dir/plugins" /run/docker/plugins
  ip -n "$name" addr add "$addr" dev "$dev"
  ip -n "$name" link set "$dev" up
  ip -n "$name" link set lo up
  ip netns exec "$name" sysctl -qw net.ipv4.ip_forward=1
  # one mount namespace for plugin and engine: the plugin's socket dir replaces /run/docker/plugins there only
  ip netns exec "$name" unshare -m --propagation private "$repo/docker/host-ns-inside.sh" "$dir" "$repo" "$bun" &
  for _ in $(seq 1 60); do
    docker -H "unix://$dir/docker.sock" info >/dev/null 2>&1 && [ -S "$dir/plugins/vale.sock" ] && exit 0
    sleep 1
  done
  echo "host $name did not start: $(tail -5 "$dir/dockerd.log" "$dir/plugin.log" 2>/dev/null)" >&2
  exit 1
  ;;
down)
  for p in dockerd plugin; do
    if [ -f "$dir/$p.pid" ]; then
      pid=$(cat "$dir/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  done
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 up NAME UNDERLAY_IF ADDR/LEN | down NAME" >&2
  exit 2
  ;;
esac
