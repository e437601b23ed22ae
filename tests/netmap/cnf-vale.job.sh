#!/usr/bin/env bash
# netmap guest job (tests/netmap/guest.sh run tests/netmap/cnf-vale.job.sh 900): apps in namespaces
# standing in for containers on the kernel-VALE datapath (tests/netmap/cnf-vale.ts).
set -euo pipefail
ls -l /dev/netmap
bun tests/netmap/cnf-vale.ts
