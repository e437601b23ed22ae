#!/usr/bin/env bash
# netmap guest job, what `npm run test:netmap` runs: the device test suite, then the switch engine
# and the Docker driver's kernel-VALE datapath over real VALE ports, then bunmap's lb against netmap's
# own, containers' zero-copy ports and CNI attachments on VALE. Fails when any of them fails.
set -euo pipefail
ls -l /dev/netmap
bun test tests/device/
bun tests/netmap/engine-vale.ts
bun tests/netmap/driver-gateway.ts
bun tests/netmap/lb-compare.ts
bun tests/netmap/cnf-vale.ts
bun tests/netmap/cni-vale.ts
echo "test:netmap: all passed"
