#!/bin/bash
# Healthy when ovsdb-server answers a transaction and ovs-vswitchd its control socket.
set -euo pipefail
ovs-vsctl --timeout=5 show >/dev/null
[ -n "${OVS_NO_VSWITCHD:-}" ] || ovs-appctl --timeout=5 -t ovs-vswitchd version >/dev/null
