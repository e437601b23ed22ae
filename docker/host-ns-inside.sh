#!/usr/bin/env bash
# Run by host-ns.sh inside the host's network namespace and a private mount namespace: the cgroup
# hierarchies again (`ip netns exec` mounts a fresh /sys without them), this host's plugin directory
# over /run/docker/plugins, then its plugin and its dockerd.
set -euo pipefail
dir=$1 repo=$2 bun=$3
mount -t tmpfs cgroup /sys/fs/cgroup
if grep -q ' /sys/fs/cgroup cgroup2 ' /proc/1/mounts; then
  umount /sys/fs/cgroup
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  # cgroup v1: each hierarchy the host mounts, with the same options (the same hierarchy)
  while read -r _ path type opts _; do
    case $path in /sys/fs/cgroup/*) ;; *) continue ;; esac
    case $type in cgroup | cgroup2) ;; *) continue ;; esac
    mkdir -p "$path"
    mount -t "$type" -o "$opts" cgroup "$path"
  done </proc/1/mounts
fi
mount --bind "$dir/plugins" /run/docker/plugins
BUNMAP_PORTS_SOCK="$dir/ports.sock" BUNMAP_PLUGIN_DB="$dir/vale.db" BUNMAP_PLUGIN_BACKEND=packet "$bun" "$repo/plugin/main.ts" >"$dir/plugin.log" 2>&1 &
echo $! >"$dir/plugin.pid"
exec dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$dir/docker.sock" \
  --pidfile "$dir/dockerd.pid" --bridge none --iptables=false --ip6tables=false \
  --default-address-pool base=198.19.64.0/18,size=24 >"$dir/dockerd.log" 2>&1
