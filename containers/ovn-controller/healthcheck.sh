#!/bin/bash
# Healthy when ovn-controller is connected to the Southbound database, the remote it uses is
# still TLS only (external_ids:ovn-remote can be changed at run time), and OVS answers. A
# broken TLS setup never connects, so it is unhealthy.
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh
. /usr/local/lib/ovn-deploy/tls.sh
[ "$(ovn-appctl --timeout=5 -t ovn-controller connection-status)" = connected ]
remote=$(ovs-vsctl --timeout=5 get Open_vSwitch . external_ids:ovn-remote)
require_tls_remotes external_ids:ovn-remote "${remote//\"/}"
ovs-vsctl --timeout=5 show >/dev/null
