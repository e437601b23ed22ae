#!/usr/bin/env bash
# netmap guest job (tests/netmap/guest.sh run tests/netmap/engine-vale.job.sh 600):
# the switch engine over real VALE ports.
set -euo pipefail
ls -l /dev/netmap
bun tests/netmap/engine-vale.ts
