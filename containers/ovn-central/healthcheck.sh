#!/bin/bash
# Healthy when every database of this container is a RAFT cluster member and ovn-northd runs
# (active, or standby behind another northd's lock).
set -euo pipefail
for c in $OVN_CENTRAL_COMPONENTS; do
    case $c in
        nb) ovs-appctl --timeout=5 -t "$OVN_RUNDIR/ovnnb_db.ctl" cluster/status OVN_Northbound | grep -q '^Status: cluster member' ;;
        sb) ovs-appctl --timeout=5 -t "$OVN_RUNDIR/ovnsb_db.ctl" cluster/status OVN_Southbound | grep -q '^Status: cluster member' ;;
        northd) ovn-appctl --timeout=5 -t "$OVN_RUNDIR/ovn-northd.ctl" status | grep -Eq 'Status: (active|standby)' ;;
    esac
done
