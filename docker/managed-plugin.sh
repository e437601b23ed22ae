#!/usr/bin/env bash
# Build the vale driver as a Docker managed plugin (`docker plugin create`), offline: a root filesystem
# of this machine's busybox-static, bun, ip and iptables (with the libraries they link) and the
# plugin's code, plus config.json. Swarm-scoped networks need a managed plugin: Docker refuses legacy
# (socket-file) plugins in swarm mode (README: "Swarm").
#
#   docker/managed-plugin.sh NAME[:TAG] [DOCKER_HOST_SOCKET]
#   docker plugin set NAME BUNMAP_PLUGIN_SCOPE=global   # swarm managers allocate addresses
#   docker plugin enable NAME
set -euo pipefail
name=${1:?plugin name, e.g. bunmap/vale:latest}
host=${2:-}
repo=$(cd "$(dirname "$0")/.." && pwd)
bun=$(readlink -f "$(command -v bun || echo "$repo/node_modules/.bin/bun")")
dir=$(mktemp -d /tmp/bunmap-plugin-build-XXXXXX)
trap 'rm -rf "$dir"' EXIT
root=$dir/rootfs
mkdir -p "$root"/{bin,usr/sbin,tmp,run/docker/plugins,var/lib/bunmap,etc,bunmap}

# a binary and every library it links, at the same paths
copy_bin() {
  mkdir -p "$root$(dirname "$2")"
  cp -L "$1" "$root$2"
  ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
[ -x /bin/busybox ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
rm -f "$root/bin/ip" # iproute2's, for `ip -j`
copy_bin "$bun" /bin/bun
copy_bin "$(command -v ip)" /bin/ip
ln -s /bin/ip "$root/usr/sbin/ip"
rm -f "$root/bin/bridge" # iproute2's bridge: the VXLAN uplink's peers (fdb entries)
copy_bin "$(command -v bridge)" /bin/bridge
ipt=$(readlink -f "$(command -v iptables)")
copy_bin "$ipt" "/usr/sbin/$(basename "$ipt")"
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf "$(basename "$ipt")" "$root/usr/sbin/$t"
done
xt=""                                   # iptables' compiled-in module directory
for d in /usr/lib/*/xtables /usr/lib/xtables; do [ -d "$d" ] && { xt=$d; break; }; done
[ -n "$xt" ] || { echo "no xtables module directory (is iptables installed?)" >&2; exit 1; }
mkdir -p "$root$xt"
for m in "$xt"/*.so; do copy_bin "$m" "$m"; done
if [ -f /etc/ethertypes ]; then cp /etc/ethertypes "$root/etc/"; fi

# the plugin and the library it uses, with its runtime dependencies only
cp -r "$repo"/{plugin,src,ffi,cni,package.json,tsconfig.json} "$root/bunmap/"
mkdir -p "$root/bunmap/node_modules"
for d in elysia @sinclair; do cp -r "$repo/node_modules/$d" "$root/bunmap/node_modules/"; done
for d in "$repo"/node_modules/*; do
  case $(basename "$d") in bun | bun-types | typescript | mitata | @biomejs | @types | @typescript | elysia | @sinclair) ;;
  *) cp -r "$d" "$root/bunmap/node_modules/" ;;
  esac
done

cat >"$dir/config.json" <<'EOF'
{
  "description": "bunmap's vale network driver: containers switched by bunmap, VXLAN uplinks across hosts",
  "documentation": "README.md of bunmap",
  "entrypoint": ["/bin/bun", "/bunmap/plugin/main.ts"],
  "env": [
    { "name": "BUNMAP_PLUGIN_BACKEND", "value": "packet", "settable": ["value"] },
    { "name": "BUNMAP_PLUGIN_SCOPE", "value": "local", "settable": ["value"] }
  ],
  "interface": { "types": ["docker.networkdriver/1.0"], "socket": "vale.sock" },
  "network": { "type": "host" },
  "linux": { "capabilities": ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_IPC_LOCK"], "allowAllDevices": true }
}
EOF
docker ${host:+-H "unix://$host"} plugin create "$name" "$dir"
