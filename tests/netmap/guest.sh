#!/usr/bin/env bash
# A netmap guest for machines without the netmap module: qemu boots a stock Debian 12 kernel with
# netmap.ko built from netmap's public source, sees this machine's / read-only (so the checkout,
# node_modules and bun are there as they are) and runs one job script with /dev/netmap present.
# Software emulation when there is no KVM: slow, so use it for correctness, never for speed.
#
#   tests/netmap/guest.sh build NETMAP_SRC   once per machine (a few minutes): the kernel, netmap.ko,
#                                            libnetmap.so, netmap's apps, the guest's boot image
#   tests/netmap/guest.sh run JOB [SECONDS]  boot, run JOB (bash) in the current directory, power off;
#                                            prints the job's output, ends with "== job rc=N"
#
# NETMAP_SRC is a copy of netmap's source tree (its public repository, luigirizzo/netmap on GitHub;
# BSD licence). Everything is made under $BUNMAP_GUEST (default /tmp/bunmap-guest); nothing else on
# the machine changes but the Debian packages it installs if missing (qemu-system-x86,
# busybox-static, kmod, gcc, make). Inside a job: BUNMAP_LIBNETMAP points at libnetmap.so,
# NETMAP_APPS at netmap's own tools (pkt-gen/pkt-gen, vale-ctl/vale-ctl, bridge/bridge, lb/lb, ...).
set -euo pipefail
G=${BUNMAP_GUEST:-/tmp/bunmap-guest}
usage() { echo "usage: $0 build NETMAP_SRC | run JOB.sh [SECONDS]" >&2; exit 2; }

need_packages() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v depmod >/dev/null || missing+=(kmod)
  command -v make >/dev/null || missing+=(make)
  command -v gcc >/dev/null || missing+=(gcc)
  [ ${#missing[@]} -eq 0 ] || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

# The Debian 12 kernel the guest boots, unpacked (not installed) with its headers for building modules.
fetch_kernel() {
  local kver
  kver=$(apt-cache depends linux-image-amd64 | grep -o 'linux-image-6\.1\.0-[0-9]*-amd64' | head -1)
  kver=${kver#linux-image-}
  [ -n "$kver" ] || { echo "guest: no Debian 6.1 kernel package found (run apt-get update)"; exit 1; }
  mkdir -p "$G/debs" "$G/kernel"
  (cd "$G/debs" && ls linux-image-"$kver"_*.deb >/dev/null 2>&1 ||
    apt-get download "linux-image-$kver" "linux-headers-$kver" "linux-headers-${kver%-amd64}-common" linux-kbuild-6.1)
  for d in "$G"/debs/*.deb; do dpkg-deb -x "$d" "$G/kernel"; done
  # the arch headers include the common tree by an absolute path: aim it at the unpacked copy
  echo "include $G/kernel/usr/src/linux-headers-${kver%-amd64}-common/Makefile" >"$G/kernel/usr/src/linux-headers-$kver/Makefile"
  depmod -b "$G/kernel" "$kver"
  echo "$kver" >"$G/kver"
}

# netmap.ko (VALE, pipes, the emulated adapter, monitors; no NIC drivers), netmap's apps, and
# libnetmap as a shared object (netmap ships only a static one; bun:ffi needs a .so).
build_netmap() {
  local src=$1 kver
  kver=$(cat "$G/kver")
  rm -rf "$G/src" "$G/build" && mkdir -p "$G/src" "$G/build"
  cp -a "$src"/. "$G/src"
  (cd "$G/build" && "$G/src/configure" --kernel-dir="$G/kernel/usr/src/linux-headers-$kver" --no-drivers \
    --enable-vale --enable-pipe --enable-generic --enable-monitor >configure.log &&
    nice make -j"$(nproc)" >make.log 2>&1) || { tail -30 "$G/build/make.log" 2>/dev/null; exit 1; }
  gcc -shared -fPIC -O2 -I "$G/src/sys" -I "$G/src/libnetmap" "$G"/src/libnetmap/*.c -o "$G/libnetmap.so" -lpthread
}

# The guest's first process: modules for virtio and 9p, this machine's / as a read-only lower layer
# under a tmpfs, $G shared read-write, then the job runner (pid1.sh) on the new root.
boot_image() {
  local kver r
  kver=$(cat "$G/kver")
  r=$G/initramfs && rm -rf "$r" && mkdir -p "$r"/{bin,dev,proc,sys,lower,rw,root,mods}
  cp /bin/busybox "$r/bin/"
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
    f=$(find "$G/kernel/lib/modules/$kver/kernel" -name "$m.ko*" | head -1)
    [ -n "$f" ] && cp "$f" "$r/mods/" && echo "$(basename "$f")" >>"$r/mods/list"
  done
  cat >"$r/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in \$(cat /mods/list); do insmod /mods/\$m 2>/dev/null; done
opt=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o \$opt,ro,cache=loose host /lower || exec sh
mount -t tmpfs -o size=1G tmpfs /rw && mkdir -p /rw/up /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/up,workdir=/rw/work /root || exec sh
mkdir -p /root$G && mount -t 9p -o \$opt guest /root$G
for d in proc sys dev; do mount --move /\$d /root/\$d; done
exec switch_root /root /bin/bash $G/pid1.sh
EOF
  chmod +x "$r/init"
  (cd "$r" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$G/initramfs.gz")
  cat >"$G/pid1.sh" <<EOF
#!/bin/bash
# in the guest: netmap.ko and veth loaded, the job run where it was asked for, its output kept, off
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t tmpfs tmpfs /run; mkdir -p /dev/shm /dev/pts; mount -t tmpfs tmpfs /dev/shm; mount -t devpts devpts /dev/pts
param() { tr ' ' '\n' </proc/cmdline | sed -n "s/^\$1=//p"; }
job=\$(param bmjob); dir=\$(param bmdir)
{
  echo "== guest: kernel \$(uname -r), \$(nproc) cpus, job \$job in \$dir"
  ip link set lo up
  insmod $G/build/netmap.ko || echo "== insmod netmap.ko failed"
  insmod $G/kernel/lib/modules/\$(uname -r)/kernel/drivers/net/veth.ko || echo "== insmod veth failed"
  export BUNMAP_LIBNETMAP=$G/libnetmap.so NETMAP_APPS=$G/build/build-apps PATH=\$dir/node_modules/.bin:\$PATH
  cd "\$dir" && bash "\$job"
  echo "== job rc=\$?"
} >$G/out/job.log 2>&1
sync; echo o >/proc/sysrq-trigger; sleep 5; poweroff -f
EOF
}

case "${1:-}" in
build)
  [ $# -eq 2 ] || usage
  [ -f "$2/configure" ] && [ -d "$2/libnetmap" ] || { echo "guest: $2 is not netmap's source tree (it has no configure and libnetmap/)"; exit 1; }
  need_packages
  fetch_kernel
  build_netmap "$(cd "$2" && pwd)"
  boot_image
  echo "guest: ready in $G (kernel $(cat "$G/kver"), netmap.ko, libnetmap.so)"
  ;;
run)
  [ $# -ge 2 ] && [ $# -le 3 ] || usage
  [ -f "$G/initramfs.gz" ] && [ -f "$G/build/netmap.ko" ] || { echo "guest: not built here yet: run $0 build NETMAP_SRC first"; exit 2; }
  [ -f "$2" ] || { echo "guest: no job file $2"; exit 2; }
  kver=$(cat "$G/kver")
  mkdir -p "$G/out" && rm -f "$G/out/job.log"
  cp "$2" "$G/job.sh"
  # software emulation unless asked (GUEST_ACCEL=kvm): nested KVM is not there on every machine
  accel=tcg,thread=multi cpu=max
  [ "${GUEST_ACCEL:-}" = kvm ] && accel=kvm cpu=host
  timeout "${3:-1800}" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -smp "${GUEST_CPUS:-2}" -m "${GUEST_MEM:-3G}" \
    -kernel "$G/kernel/boot/vmlinuz-$kver" -initrd "$G/initramfs.gz" \
    -append "console=ttyS0 loglevel=4 panic=-1 bmjob=$G/job.sh bmdir=$PWD" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$G",mount_tag=guest,security_model=none,multidevs=remap \
    -display none -monitor none -serial file:"$G/out/console.log" -nic none -no-reboot || echo "== qemu ended: $?"
  cat "$G/out/job.log" 2>/dev/null || { echo "== no job output; the guest's console says:"; tail -30 "$G/out/console.log"; }
  ;;
*) usage ;;
esac
