#!/usr/bin/env bash
# netmap guest job (tests/netmap/guest.sh run tests/netmap/cni-vale.job.sh 900): CNI attachments on
# the kernel-VALE datapath.
set -euo pipefail
ls -l /dev/netmap
bun tests/netmap/cni-vale.ts
