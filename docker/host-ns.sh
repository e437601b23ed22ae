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
usage() {
  cat >&2 <<'EOF2'
usage: docker/host-ns.sh up NAME UNDERLAY_IF ADDR/LEN | down NAME
  up    makes network namespace NAME a host: its own dockerd and vale plugin. The namespace and the
        underlay interface in it must exist first, e.g.
          ip netns add A && ip netns add B
          ip link add ua netns A type veth peer name ub netns B
          docker/host-ns.sh up A ua 198.18.140.1/24 && docker/host-ns.sh up B ub 198.18.140.2/24
        Its engine: docker -H unix:///tmp/bunmap-host-NAME/docker.sock ... (images are per engine:
        docker save IMAGE | docker -H unix:///tmp/bunmap-host-NAME/docker.sock load)
  down  stops that dockerd and plugin and removes /tmp/bunmap-host-NAME
EOF2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
name=$2
dir=/tmp/bunmap-host-$name
repo=$(cd "$(dirname "$0")/.." && pwd)
bun=${BUN:-$(command -v bun || echo "$repo/node_modules/.bin/bun")}

case $cmd in
up)
  [ $# -eq 4 ] || usage
  dev=$3
  addr=$4
  ip netns list | grep -qw "$name" || { echo "host-ns: no network namespace $name (ip netns add $name first)" >&2; exit 1; }
  ip -n "$name" link show "$dev" >/dev/null 2>&1 || { echo "host-ns: no interface $dev in namespace $name (make the underlay veth first)" >&2; exit 1; }
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
*) usage ;;
esac
