#!/bin/bash
# OVN central: clustered NB and SB databases and ovn-northd, in the foreground.
# Environment (defaults in brackets):
#   OVN_CENTRAL_COMPONENTS   which of "nb sb northd" to run here [all three]
#   OVN_CENTRAL_ADDRESS      this member's address for RAFT and the client listeners [127.0.0.1]
#   OVN_NB_PORT, OVN_SB_PORT [6641, 6642]; OVN_NB_RAFT_PORT, OVN_SB_RAFT_PORT [6643, 6644]
#   OVN_NB_CLUSTER_REMOTES, OVN_SB_CLUSTER_REMOTES  RAFT addresses of existing members to join
#                            (e.g. "tcp:192.0.2.11:6643"); unset: create a new cluster
#   OVN_SSL_KEY, OVN_SSL_CERT, OVN_SSL_CA  files (a mounted PKI volume): listeners and RAFT use SSL
#   OVN_NB_DB, OVN_SB_DB     databases for a northd-only container [the local unix sockets]
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh

: "${OVN_CENTRAL_ADDRESS:=127.0.0.1}"
: "${OVN_NB_PORT:=6641}" "${OVN_SB_PORT:=6642}" "${OVN_NB_RAFT_PORT:=6643}" "${OVN_SB_RAFT_PORT:=6644}"
mkdir -p "$OVN_RUNDIR" "$OVN_LOGDIR" "$OVN_DBDIR"

proto=tcp
ssl=()
if [ -n "${OVN_SSL_KEY:-}" ]; then
    for f in "$OVN_SSL_KEY" "${OVN_SSL_CERT:?OVN_SSL_CERT must be set with OVN_SSL_KEY}" "${OVN_SSL_CA:?OVN_SSL_CA must be set with OVN_SSL_KEY}"; do
        [ -r "$f" ] || die "cannot read $f (mount the PKI directory)"
    done
    proto=ssl
    ssl=(--private-key="$OVN_SSL_KEY" --certificate="$OVN_SSL_CERT" --ca-cert="$OVN_SSL_CA" --ssl-protocols=TLSv1.2)
fi

# start_db nb|sb DBNAME SCHEMA CLIENT_PORT RAFT_PORT "REMOTES"
start_db() {
    local name=$1 dbname=$2 schema=$3 port=$4 raft=$5 remotes=$6
    local db=$OVN_DBDIR/ovn${name}_db.db created=no
    if [ ! -f "$db" ]; then
        if [ -n "$remotes" ]; then
            # shellcheck disable=SC2086 # REMOTES is a space-separated list
            ovsdb-tool join-cluster "$db" "$dbname" "$proto:$OVN_CENTRAL_ADDRESS:$raft" $remotes
        else
            ovsdb-tool create-cluster "$db" "$schema" "$proto:$OVN_CENTRAL_ADDRESS:$raft"
            created=yes
        fi
    fi
    spawn "ovsdb-server ($dbname)" ovsdb-server "$db" \
        --remote="punix:$OVN_RUNDIR/ovn${name}_db.sock" --remote="p$proto:$port:$OVN_CENTRAL_ADDRESS" \
        "${ssl[@]}" --pidfile="$OVN_RUNDIR/ovn${name}_db.pid" --unixctl="$OVN_RUNDIR/ovn${name}_db.ctl" \
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
            spawn ovn-northd ovn-northd \
                --ovnnb-db="${OVN_NB_DB:-unix:$OVN_RUNDIR/ovnnb_db.sock}" --ovnsb-db="${OVN_SB_DB:-unix:$OVN_RUNDIR/ovnsb_db.sock}" \
                "${ssl[@]}" --pidfile="$OVN_RUNDIR/ovn-northd.pid" --unixctl="$OVN_RUNDIR/ovn-northd.ctl" \
                --log-file="$OVN_LOGDIR/ovn-northd.log" -vconsole:info -vsyslog:off
            ;;
        *) die "unknown component '$c' in OVN_CENTRAL_COMPONENTS (expected nb, sb, northd)" ;;
    esac
done
supervise
