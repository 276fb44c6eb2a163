#!/bin/bash
# Healthy when every database of this container is a RAFT cluster member and answers over its own
# TLS listener with the mounted certificates (so a broken TLS setup is unhealthy even while the
# daemon runs: OVSDB keeps running without a listener when its key or certificate cannot be
# loaded), and ovn-northd runs (active, or standby behind another northd's lock).
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh
. /usr/local/lib/ovn-deploy/tls.sh
: "${OVN_CENTRAL_ADDRESS:=127.0.0.1}" "${OVN_NB_PORT:=6641}" "${OVN_SB_PORT:=6642}"

# db_healthy nb|sb DBNAME PORT
db_healthy() {
    ovs-appctl --timeout=5 -t "$OVN_RUNDIR/ovn$1_db.ctl" cluster/status "$2" | grep -q '^Status: cluster member'
    ovsdb-client --timeout=5 "${SSL_ARGS[@]}" list-dbs "ssl:$OVN_CENTRAL_ADDRESS:$3" | grep -qx "$2"
}

for c in $OVN_CENTRAL_COMPONENTS; do
    case $c in
        nb) db_healthy nb OVN_Northbound "$OVN_NB_PORT" ;;
        sb) db_healthy sb OVN_Southbound "$OVN_SB_PORT" ;;
        northd) ovn-appctl --timeout=5 -t "$OVN_RUNDIR/ovn-northd.ctl" status | grep -Eq 'Status: (active|standby)' ;;
    esac
done
