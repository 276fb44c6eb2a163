#!/bin/bash
# Healthy when ovn-controller is connected to the Southbound database and OVS answers.
set -euo pipefail
[ "$(ovn-appctl --timeout=5 -t ovn-controller connection-status)" = connected ]
ovs-vsctl --timeout=5 show >/dev/null
