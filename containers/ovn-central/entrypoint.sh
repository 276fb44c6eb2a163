#!/bin/bash
# OVN central: clustered NB and SB databases and ovn-northd, in the foreground. NB, SB and RAFT
# are served only over TLS 1.2 with the project's ciphers and a client certificate required;
# plaintext only on the unix sockets in $OVN_RUNDIR (ovn-northd, ovn-nbctl/sbctl in the container).
# Environment (defaults in brackets):
#   OVN_CENTRAL_COMPONENTS   which of "nb sb northd" to run here [all three]
#   OVN_CENTRAL_ADDRESS      this member's address for RAFT and the TLS listeners [127.0.0.1]
#   OVN_NB_PORT, OVN_SB_PORT [6641, 6642]; OVN_NB_RAFT_PORT, OVN_SB_RAFT_PORT [6643, 6644]
#   OVN_NB_CLUSTER_REMOTES, OVN_SB_CLUSTER_REMOTES  RAFT addresses of existing members to join
#                            (e.g. "ssl:192.0.2.11:6643"); unset: create a new cluster
#   OVN_PKI_DIR              read-only mount with key.pem, cert.pem (a central certificate of the
#                            site CA) and ca.pem [/etc/ovn-deploy/pki]; or OVN_SSL_KEY/CERT/CA
#   OVN_NB_DB, OVN_SB_DB     databases for a northd-only container: ssl: or unix: [the local sockets]
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh
. /usr/local/lib/ovn-deploy/tls.sh

: "${OVN_CENTRAL_ADDRESS:=127.0.0.1}"
: "${OVN_NB_PORT:=6641}" "${OVN_SB_PORT:=6642}" "${OVN_NB_RAFT_PORT:=6643}" "${OVN_SB_RAFT_PORT:=6644}"
require_pki
mkdir -p "$OVN_RUNDIR" "$OVN_LOGDIR" "$OVN_DBDIR"

# start_db nb|sb DBNAME SCHEMA CLIENT_PORT RAFT_PORT "REMOTES"
start_db() {
    local name=$1 dbname=$2 schema=$3 port=$4 raft=$5 remotes=$6
    local db=$OVN_DBDIR/ovn${name}_db.db created=no
    if [ ! -f "$db" ]; then
        if [ -n "$remotes" ]; then
            require_tls_remotes "OVN_${name^^}_CLUSTER_REMOTES" "$remotes"
            # shellcheck disable=SC2086 # REMOTES is a space-separated list
            ovsdb-tool join-cluster "$db" "$dbname" "ssl:$OVN_CENTRAL_ADDRESS:$raft" ${remotes//,/ }
        else
            ovsdb-tool create-cluster "$db" "$schema" "ssl:$OVN_CENTRAL_ADDRESS:$raft"
            created=yes
        fi
    fi
    # A database from an older, plaintext image would keep RAFT on tcp: (the address is in the file).
    local raft_address
    raft_address=$(ovsdb-tool db-local-address "$db")
    case $raft_address in
        ssl:*) ;;
        *) die "$db serves RAFT on $raft_address, not over TLS: this image runs RAFT only on ssl: (re-create the member with ssl: addresses)" ;;
    esac
    spawn "ovsdb-server ($dbname)" ovsdb-server "$db" \
        --remote="punix:$OVN_RUNDIR/ovn${name}_db.sock" --remote="pssl:$port:$OVN_CENTRAL_ADDRESS" \
        "${SSL_ARGS[@]}" --pidfile="$OVN_RUNDIR/ovn${name}_db.pid" --unixctl="$OVN_RUNDIR/ovn${name}_db.ctl" \
        --log-file="$OVN_LOGDIR/ovsdb-server-${name}.log" -vconsole:info -vsyslog:off
    wait_for_socket "$OVN_RUNDIR/ovn${name}_db.sock"
    if [ "$created" = yes ]; then
        "ovn-${name}ctl" --db="unix:$OVN_RUNDIR/ovn${name}_db.sock" --timeout=30 init
    fi
}

for c in $OVN_CENTRAL_COMPONENTS; do
    case $c in
        nb) start_db nb OVN_Northbound /usr/share/ovn/ovn-nb.ovsschema "$OVN_NB_PORT" "$OVN_NB_RAFT_PORT" "${OVN_NB_CLUSTER_REMOTES:-}" ;;
        sb) start_db sb OVN_Southbound /usr/share/ovn/ovn-sb.ovsschema "$OVN_SB_PORT" "$OVN_SB_RAFT_PORT" "${OVN_SB_CLUSTER_REMOTES:-}" ;;
        northd)
            nb_db=${OVN_NB_DB:-unix:$OVN_RUNDIR/ovnnb_db.sock}
            sb_db=${OVN_SB_DB:-unix:$OVN_RUNDIR/ovnsb_db.sock}
            require_tls_remotes OVN_NB_DB "$nb_db" unix
            require_tls_remotes OVN_SB_DB "$sb_db" unix
            spawn ovn-northd ovn-northd --ovnnb-db="$nb_db" --ovnsb-db="$sb_db" \
                "${SSL_ARGS[@]}" --pidfile="$OVN_RUNDIR/ovn-northd.pid" --unixctl="$OVN_RUNDIR/ovn-northd.ctl" \
                --log-file="$OVN_LOGDIR/ovn-northd.log" -vconsole:info -vsyslog:off
            ;;
        *) die "unknown component '$c' in OVN_CENTRAL_COMPONENTS (expected nb, sb, northd)" ;;
    esac
done
supervise
