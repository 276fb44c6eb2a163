#!/usr/bin/env bash
# A minimal hand-written equivalent of `ovn-deploy up` / `down`: the baseline bench/up compares
# against. Same steps, no checks, no idempotency, no supervisor: CA + 3 certificates (openssl),
# namespaces and an MTU-1600 underlay bridge, central NB/SB ovsdb-servers + ovn-northd behind a
# stunnel server, per worker ovsdb-server + ovs-vswitchd (userspace datapath) + stunnel client +
# ovn-controller, the seed's topology, two bound VMs, ports up, ping across router and tunnel.
#
# Its namespaces are PREFIX-*, its files under DIR; `down` removes exactly those.
# Usage: handwritten.sh up DIR PREFIX     (PREFIX: <= 6 chars, unique on this machine)
#        handwritten.sh down DIR PREFIX
set -euo pipefail
action=$1 D=$2 P=$3
NET=10.254.0
SCHEMA_NB=/usr/share/ovn/ovn-nb.ovsschema SCHEMA_SB=/usr/share/ovn/ovn-sb.ovsschema
SCHEMA_VS=/usr/share/openvswitch/vswitch.ovsschema

up() {
  mkdir -p "$D/pki" "$D/c" "$D/w1" "$D/w2"
  # PKI: CA, central server cert (SAN = its underlay IP), one client cert per worker; keys in parallel.
  (cd "$D/pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=hw-ca 2>/dev/null
    for n in central w1 w2; do
      ( openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
        openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" -days 30 \
          -extfile <(printf 'subjectAltName=DNS:central,IP:%s.1' $NET) -out $n.crt 2>/dev/null ) &
    done; wait)

  # Underlay: a bridge in its own namespace; one veth per node (MTU 1600 so Geneve carries 1500).
  ip netns add $P-ul; ip -n $P-ul link add name ul type bridge; ip -n $P-ul link set ul mtu 1600 up
  for n in c w1 w2; do
    ip netns add $P-$n; ip -n $P-$n link set lo up
    ip link add eth0 netns $P-$n mtu 1600 type veth peer name $n netns $P-ul mtu 1600
    ip -n $P-ul link set $n master ul up; ip -n $P-$n link set eth0 up
  done
  ip -n $P-c addr add $NET.1/24 dev eth0
  # The central's TCP leaves with partial checksums (veth offload); the workers' userspace datapath
  # reads frames raw from the veth and would pass them on unfixed: checksum in software instead.
  ip netns exec $P-c ethtool -K eth0 tx off >/dev/null

  # Central.
  ovsdb-tool create "$D/c/nb.db" $SCHEMA_NB; ovsdb-tool create "$D/c/sb.db" $SCHEMA_SB
  for db in nb:16641 sb:16642; do n=${db%:*} port=${db#*:}
    ip netns exec $P-c ovsdb-server "$D/c/$n.db" --remote=punix:"$D/c/$n.sock" --remote=ptcp:$port:127.0.0.1 \
      --pidfile="$D/c/$n.pid" --unixctl="$D/c/$n.ctl" --log-file="$D/c/$n.log" --detach --no-chdir -vconsole:off
  done
  ovn-nbctl --db=unix:"$D/c/nb.sock" init; ovn-sbctl --db=unix:"$D/c/sb.sock" init
  ip netns exec $P-c ovn-northd --ovnnb-db=unix:"$D/c/nb.sock" --ovnsb-db=unix:"$D/c/sb.sock" \
    --pidfile="$D/c/northd.pid" --unixctl="$D/c/northd.ctl" --log-file="$D/c/northd.log" --detach --no-chdir -vconsole:off
  tls() { printf 'cert = %s/pki/%s.crt\nkey = %s/pki/%s.key\nCAfile = %s/pki/ca.crt\nverifyChain = yes\nsslVersionMin = TLSv1.2\nsslVersionMax = TLSv1.2\n' "$D" $1 "$D" $1 "$D"; }
  { printf 'pid = %s/c/stunnel.pid\noutput = %s/c/stunnel.log\n' "$D" "$D"; tls central
    printf 'requireCert = yes\n[nb]\naccept = %s.1:6641\nconnect = 127.0.0.1:16641\n[sb]\naccept = %s.1:6642\nconnect = 127.0.0.1:16642\n' $NET $NET
  } > "$D/c/stunnel.conf"
  ip netns exec $P-c stunnel "$D/c/stunnel.conf"

  # Workers.
  for i in 1 2; do w=w$i ns=$P-w$i ip=$NET.1$i
    { printf 'pid = %s/%s/stunnel.pid\noutput = %s/%s/stunnel.log\nclient = yes\ncheckHost = central\n' "$D" $w "$D" $w; tls $w
      printf '[sb]\naccept = 127.0.0.1:6642\nconnect = %s.1:6642\n' $NET; } > "$D/$w/stunnel.conf"
    ip netns exec $ns stunnel "$D/$w/stunnel.conf"
    ovsdb-tool create "$D/$w/conf.db" $SCHEMA_VS
    ip netns exec $ns ovsdb-server "$D/$w/conf.db" --remote=punix:"$D/$w/db.sock" --pidfile="$D/$w/ovsdb.pid" \
      --unixctl="$D/$w/ovsdb.ctl" --log-file="$D/$w/ovsdb.log" --detach --no-chdir -vconsole:off
    ovs-vsctl --db=unix:"$D/$w/db.sock" --no-wait -- init -- set open . external_ids:system-id=$w \
      external_ids:ovn-remote=tcp:127.0.0.1:6642 external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=$ip \
      external_ids:ovn-bridge-datapath-type=netdev \
      -- add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure \
      -- add-br br-phy -- set bridge br-phy datapath_type=netdev other-config:hwaddr=\"02:00:00:00:00:1$i\" \
      -- set interface br-phy mtu_request=1600 \
      -- add-port br-phy eth0
    ip netns exec $ns env OVS_RUNDIR="$D/$w" ovs-vswitchd unix:"$D/$w/db.sock" --pidfile="$D/$w/vswitchd.pid" \
      --unixctl="$D/$w/vswitchd.ctl" --log-file="$D/$w/vswitchd.log" --detach --no-chdir -vconsole:off
    ovs-vsctl --db=unix:"$D/$w/db.sock" --timeout=10 wait-until interface br-phy ofport!=-1 >/dev/null
    ip -n $ns addr add $ip/24 dev br-phy; ip -n $ns link set br-phy up
    # Tell vswitchd the other worker's underlay MAC: no first packet lost to neighbour resolution.
    o=$((3 - i)); ovs-appctl -t "$D/$w/vswitchd.ctl" tnl/neigh/set br-phy $NET.1$o 02:00:00:00:00:1$o >/dev/null
    ip netns exec $ns env OVS_RUNDIR="$D/$w" OVN_RUNDIR="$D/$w" ovn-controller unix:"$D/$w/db.sock" \
      --pidfile="$D/$w/controller.pid" --log-file="$D/$w/controller.log" --detach --no-chdir -vconsole:off
  done

  # The seed's topology.
  ovn-nbctl --db=unix:"$D/c/nb.sock" -- ls-add network1 -- ls-add network2 \
    -- lsp-add network1 vm1 -- lsp-set-addresses vm1 "40:44:00:00:00:01 192.168.0.11" \
    -- lsp-add network2 vm2 -- lsp-set-addresses vm2 "40:44:00:00:00:02 192.168.1.11" \
    -- lr-add router1 -- lrp-add router1 router1-net1 40:44:00:00:00:03 192.168.0.1/24 \
    -- lsp-add network1 net1-router1 -- lsp-set-addresses net1-router1 40:44:00:00:00:03 \
    -- lsp-set-type net1-router1 router -- lsp-set-options net1-router1 router-port=router1-net1 \
    -- lrp-add router1 router1-net2 40:44:00:00:00:04 192.168.1.1/24 \
    -- lsp-add network2 net2-router1 -- lsp-set-addresses net2-router1 40:44:00:00:00:04 \
    -- lsp-set-type net2-router1 router -- lsp-set-options net2-router1 router-port=router1-net2

  # VMs: an internal port (a tap) moved into its own namespace.
  for i in 1 2; do w=w$i vm=vm$i
    ovs-vsctl --db=unix:"$D/$w/db.sock" -- add-port br-int $vm -- set interface $vm type=internal external_ids:iface-id=$vm
    ip netns add $P-$vm; ip -n $P-$w link set $vm netns $P-$vm
    ip -n $P-$vm link set $vm address 40:44:00:00:00:0$i; ip -n $P-$vm addr add 192.168.$((i-1)).11/24 dev $vm
    ip -n $P-$vm link set $vm up; ip -n $P-$vm route add default via 192.168.$((i-1)).1
  done
  ovn-nbctl --db=unix:"$D/c/nb.sock" --timeout=30 wait-until logical_switch_port vm1 up=true -- \
    wait-until logical_switch_port vm2 up=true
  # The first packet over a new tunnel is lost while its neighbour resolves: warm up, then assert.
  for _ in $(seq 20); do ip netns exec $P-vm1 ping -c1 -W0.3 192.168.1.11 >/dev/null && break; done
  ip netns exec $P-vm1 ping -c3 -i0.05 -W1 192.168.1.11 >/dev/null
  ovn-trace --db=unix:"$D/c/sb.sock" --summary network1 'inport == "vm1" && eth.src == 40:44:00:00:00:01 && eth.dst == 40:44:00:00:00:03 && ip4.src == 192.168.0.11 && ip4.dst == 192.168.1.11 && ip.ttl == 64' >/dev/null
}

down() {
  for f in "$D"/*/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  for ns in vm1 vm2 w1 w2 c ul; do ip netns del $P-$ns 2>/dev/null || true; done
  # Daemons exit asynchronously: wait until none holds its pidfile before removing the files.
  for f in "$D"/*/*.pid; do while [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; do sleep 0.02; done; done
  rm -rf "$D"
}

"$action"
