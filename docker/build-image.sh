#!/bin/sh
# Build bunmap:local without pulling anything: busybox-static, the host's bun and the libraries it
# links, and this repository at /bunmap. Usage: sh docker/build-image.sh [tag]
set -eu
tag=${1:-bunmap:local}
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/bunmap"
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
bun=$(readlink -f "$(command -v bun || echo "$repo/node_modules/.bin/bun")")
# bun, and for the plugin iproute2's ip (busybox's cannot make veths) and bridge (the VXLAN uplink's
# peers) and ethtool, with their libraries
for bin in "$bun" "$(command -v ip)" "$(command -v bridge)" "$(command -v ethtool || true)"; do
  [ -n "$bin" ] || continue
  name=$(basename "$bin" | sed 's/^bun.*/bun/')
  rm -f "$root/bin/$name" # busybox has an ip applet: replace the link, never write through it
  cp -L "$bin" "$root/bin/$name"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
done
# iptables (nft backend) for the networks' NAT and published ports: the multi-call binary under its
# command names, its libraries and its match/target extensions
xt=$(readlink -f "$(command -v iptables)")
cp -L "$xt" "$root/bin/xtables-nft-multi"
for lib in $(ldd "$xt" | grep -o '/[^ ]*'); do mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; done
for c in iptables iptables-restore iptables-save; do rm -f "$root/bin/$c"; ln -s xtables-nft-multi "$root/bin/$c"; done
# (at the path it was built with: the real one, /lib being a link to /usr/lib on Debian)
xtdir=$(readlink -f "$(dirname "$(ldd "$xt" | grep -o '/[^ ]*libxtables[^ ]*')")/xtables")
mkdir -p "$root$xtdir" && cp -L "$xtdir"/*.so "$root$xtdir/"
# the repository with its node_modules (elysia, typebox), minus git and the bun binaries (one is in /bin)
(cd "$repo" && tar -c --exclude=./.git --exclude=./bench/out --exclude=./dist --exclude=./node_modules/bun --exclude=./node_modules/@oven .) | tar -C "$root/bunmap" -x
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'WORKDIR /bunmap' -c 'CMD ["bun", "plugin/main.ts"]' - "$tag"
echo "built $tag"
