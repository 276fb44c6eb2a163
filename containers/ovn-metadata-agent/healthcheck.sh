#!/bin/bash
# Healthy only when the agent really works, not when a port is open:
#  1. its process is alive, and
#  2. it is registered in the Southbound: Chassis_Private <this chassis> has
#     external_ids:neutron:ovn-metadata-id (ovn-controller deletes the row on a clean exit, and
#     the agent writes it again only when it sees the new row: a live agent can be unregistered).
# The chassis is the local Open vSwitch's system-id; both databases are taken from the agent's
# own config files (the same ones it was started with), or OVSDB_CONNECTION / OVN_SB_CONNECTION.
set -euo pipefail

conf_dir=${OVN_METADATA_CONF_DIR:-/etc/neutron}
ini_get() { # KEY: last "KEY = value" in the agent's ini files (the secret fragment is not read)
    sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$conf_dir"/neutron_ovn_metadata_agent.ini 2>/dev/null | tail -n 1
}
ovsdb=${OVSDB_CONNECTION:-$(ini_get ovsdb_connection)}
ovsdb=${ovsdb:-unix:/run/openvswitch/db.sock}
sb=${OVN_SB_CONNECTION:-$(ini_get ovn_sb_connection)}
[ -n "$sb" ] || { echo "unhealthy: no ovn_sb_connection configured"; exit 1; }

pgrep -f 'neutron-ovn-metadata-agent' >/dev/null || { echo "unhealthy: agent process not running"; exit 1; }
# ovsdb-client (openvswitch-common), not ovs-vsctl: the image need not carry the switch package.
row=$(ovsdb-client --timeout=5 transact "$ovsdb" \
    '["Open_vSwitch",{"op":"select","table":"Open_vSwitch","where":[],"columns":["external_ids"]}]' 2>/dev/null) \
    || { echo "unhealthy: local Open vSwitch database $ovsdb not readable"; exit 1; }
chassis=$(printf '%s' "$row" | grep -o '\["system-id","[^"]*"\]' | cut -d'"' -f4)
[ -n "$chassis" ] || { echo "unhealthy: no external_ids:system-id in $ovsdb"; exit 1; }
id=$(ovn-sbctl --timeout=5 --db="$sb" get Chassis_Private "$chassis" 'external_ids:"neutron:ovn-metadata-id"' 2>/dev/null | tr -d '"') \
    || { echo "unhealthy: chassis $chassis not registered by the metadata agent in the Southbound ($sb)"; exit 1; }
[ -n "$id" ] || { echo "unhealthy: empty metadata agent id for $chassis"; exit 1; }
echo "healthy: agent $id registered for chassis $chassis"
