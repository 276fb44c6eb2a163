#!/bin/bash
# OVN chassis: ovsdb-server, ovs-vswitchd and ovn-controller, in the foreground. ovn-controller
# reaches the Southbound only over TLS 1.2 with the project's ciphers and its own certificate.
# Environment (defaults in brackets):
#   OVN_REMOTE          the Southbound database(s), ssl:HOST:PORT[,ssl:...] (required)
#   OVN_SYSTEM_ID       chassis name [the hostname]; the certificate's CN should match it
#   OVN_ENCAP_TYPE      [geneve];  OVN_ENCAP_IP  tunnel endpoint [first global IPv4, else 127.0.0.1]
#   OVN_BRIDGE          integration bridge [br-int]
#   OVS_DATAPATH_TYPE   "netdev" for the userspace datapath [the kernel datapath]
#   OVN_PKI_DIR         read-only mount with key.pem, cert.pem (a worker certificate of the site
#                       CA) and ca.pem [/etc/ovn-deploy/pki]; or OVN_SSL_KEY/CERT/CA
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh
. /usr/local/lib/ovn-deploy/tls.sh

: "${OVN_REMOTE:?set OVN_REMOTE to the Southbound database, e.g. ssl:192.0.2.10:6642}"
require_tls_remotes OVN_REMOTE "$OVN_REMOTE"
require_pki
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

ssl_args_for ovn-controller
spawn ovn-controller ovn-controller "unix:$OVS_RUNDIR/db.sock" "${SSL_ARGS_FOR[@]}" \
    --pidfile="$OVN_RUNDIR/ovn-controller.pid" --log-file="$OVN_LOGDIR/ovn-controller.log" -vconsole:info -vsyslog:off
supervise
