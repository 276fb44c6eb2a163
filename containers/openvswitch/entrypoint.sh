#!/bin/bash
# Open vSwitch node: ovsdb-server + ovs-vswitchd in the foreground.
# Environment: OVS_SYSTEM_ID (default: the hostname), OVSDB_REMOTE (e.g. ptcp:6640:127.0.0.1),
# OVS_NO_VSWITCHD=1 to run the database server only.
set -euo pipefail
. /usr/local/lib/ovn-deploy/lib.sh

ovs_start
supervise
