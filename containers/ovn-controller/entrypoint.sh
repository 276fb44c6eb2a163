#!/bin/bash
# OVN chassis: ovsdb-server, ovs-vswitchd and ovn-controller, in the foreground.
# Environment (defaults in brackets):
#   OVN_REMOTE          the Southbound database, e.g. tcp:192.0.2.10:6642 or ssl:... (required)
#   OVN_SYSTEM_ID       chassis name [the hostname]
#   OVN_ENCAP_TYPE      [geneve];  OVN_ENCAP_IP  tunnel endpoint [first global IPv4, else 127.0.0.1]
#   OVN_BRIDGE          integration bridge [br-int]
#   OVS_DATAPATH_TYPE   "netdev" for the userspace datapath [the kernel datapath]
#   OVN_SSL_KEY, OVN_SSL_CERT, OVN_SSL_CA  files of a mounted PKI volume, for an ssl: remote
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh

: "${OVN_REMOTE:?set OVN_REMOTE to the Southbound database, e.g. tcp:192.0.2.10:6642}"
: "${OVN_SYSTEM_ID:=$HOSTNAME}" "${OVN_ENCAP_TYPE:=geneve}" "${OVN_BRIDGE:=br-int}"
: "${OVN_ENCAP_IP:=$(first_ipv4)}"
mkdir -p "$OVN_RUNDIR" "$OVN_LOGDIR"

OVS_SYSTEM_ID=$OVN_SYSTEM_ID ovs_start
settings=(
    "external_ids:ovn-remote=\"$OVN_REMOTE\""
    "external_ids:ovn-encap-type=$OVN_ENCAP_TYPE"
    "external_ids:ovn-encap-ip=$OVN_ENCAP_IP"
    "external_ids:ovn-bridge=$OVN_BRIDGE"
)
[ -n "${OVS_DATAPATH_TYPE:-}" ] && settings+=("external_ids:ovn-bridge-datapath-type=$OVS_DATAPATH_TYPE")
ovs-vsctl --no-wait set Open_vSwitch . "${settings[@]}"

ssl=()
if [ -n "${OVN_SSL_KEY:-}" ]; then
    ssl=(--private-key="$OVN_SSL_KEY" --certificate="${OVN_SSL_CERT:?}" --ca-cert="${OVN_SSL_CA:?}")
fi
spawn ovn-controller ovn-controller "unix:$OVS_RUNDIR/db.sock" "${ssl[@]}" \
    --pidfile="$OVN_RUNDIR/ovn-controller.pid" --log-file="$OVN_LOGDIR/ovn-controller.log" -vconsole:info -vsyslog:off
supervise
