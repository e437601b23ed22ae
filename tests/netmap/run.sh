#!/usr/bin/env bash
# npm run test:netmap: the device suite and the netmap jobs (tests/netmap/device.job.sh) with a real
# /dev/netmap: here if this machine has one, else in the project's netmap guest (tests/netmap/guest.sh,
# built once per machine). Exit 0 only if every device test and job passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -c /dev/netmap ]; then
  exec bash tests/netmap/device.job.sh
fi
out=$(bash tests/netmap/guest.sh run tests/netmap/device.job.sh "${1:-1800}") || true
printf '%s\n' "$out"
grep -qx "== job rc=0" <<<"$out"
