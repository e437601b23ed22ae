#!/usr/bin/env bash
# netmap guest job (tests/netmap/guest.sh run tests/netmap/driver-gateway.job.sh 600):
# the Docker driver's kernel-VALE datapath with a network's gateway port.
set -euo pipefail
ls -l /dev/netmap
bun tests/netmap/driver-gateway.ts
