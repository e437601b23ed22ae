#!/usr/bin/env bash
# netmap guest job (tests/netmap/guest.sh run tests/netmap/lb-compare.job.sh 900): bunmap's lb against
# netmap's own on the same input, pipe by pipe (tests/netmap/lb-compare.ts).
set -euo pipefail
ls -l /dev/netmap "$NETMAP_APPS/lb/lb"
bun tests/netmap/lb-compare.ts
