#!/usr/bin/env bash
# npm run test:netmap: run tests/netmap/device.job.sh in the netmap guest (../shared/tools/netmap-guest,
# built once per machine, see its README); exit 0 only if every device test and job passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
guest=../shared/tools/netmap-guest/run-guest.sh
[ -x "$guest" ] || { echo "test:netmap: $guest not found: the netmap guest tool runs these tests (no /dev/netmap here)"; exit 2; }
out=$("$guest" tests/netmap/device.job.sh "${1:-1500}")
printf '%s\n' "$out"
grep -qx "== job rc=0" <<<"$out"
