/**
 * The commented site file `ovn-deploy init` writes. The default values are interpolated from
 * defaults.ts so the example always shows what leaving a field out means; a test checks that the
 * example itself validates.
 */
import {
  DEFAULT_CERTIFICATE_POLICY as cert,
  DEFAULT_LOOPBACK_PORTS as lo,
  DEFAULT_METADATA_WORKERS,
  DEFAULT_NOVA_METADATA_PORT,
  DEFAULT_PORTS as tlsPorts,
  DEFAULT_SB_ADMIN_PORT,
  KEY_BITS,
} from './defaults.js';

export function exampleSiteYaml(): string {
  return `# ovn-deploy site inventory: the machines of one OVN site and their roles.
# Check it with:    ovn-deploy validate site.yaml
# Editor help:      ovn-deploy schema > site.schema.json   (the next line points editors at it)
# yaml-language-server: $schema=./site.schema.json
#
# Every section except "hosts" is optional; the values shown are the defaults.

# Site name (lowercase letters, digits, "-"): goes into certificate subjects and the header of
# every generated file.
site: lab1

# How OVSDB connections are secured (mutually authenticated TLS 1.2 either way; chosen when the
# site is created):
#   stunnel: ovsdb-server listens in plaintext only on root-only unix sockets and stunnel
#            terminates TLS on the hosts' addresses (admission by certificate name, CRL check);
#   native:  ovsdb-server's own TLS, with Southbound RBAC (a chassis cannot change or delete
#            another chassis' rows; any chassis may still claim a port), but no CRL check;
#            the firewall is then what keeps workers off the NB.
tls:
  mode: stunnel
  sbAdminPort: ${DEFAULT_SB_ADMIN_PORT}   # native only: the Southbound port without RBAC, for ovn-northd and cms hosts

# TLS ports on the centrals' addresses (stunnel's, or ovsdb-server's own in native mode).
ports:
  nb: ${tlsPorts.nb}        # Northbound DB: CMS clients (neutron, ovn-nbctl), ovn-northd
  sb: ${tlsPorts.sb}        # Southbound DB: ovn-controller on every worker, ovn-northd
  nbRaft: ${tlsPorts.nbRaft}    # RAFT traffic between centrals, Northbound cluster
  sbRaft: ${tlsPorts.sbRaft}    # RAFT traffic between centrals, Southbound cluster

# RAFT ports on each central's own loopback address 127.x.y.z (the other centrals' stunnel
# clients offer it there too; only root may connect). NB and SB plaintext are root-only unix
# sockets (/var/run/ovn-deploy/ovsdb/<central>.nb|.sb): nb and sb here are not bound any more.
# They must differ from the ports above (a host may be both central and worker).
loopbackPorts:
  nb: ${lo.nb}
  sb: ${lo.sb}
  nbRaft: ${lo.nbRaft}
  sbRaft: ${lo.sbRaft}

# Certificate lifetimes (days) and RSA key sizes (${KEY_BITS.join(', ')} bits).
certificates:
  caValidityDays: ${cert.caValidityDays}      # the site CA
  leafValidityDays: ${cert.leafValidityDays}     # server and client certificates; at most caValidityDays
  renewalWindowDays: ${cert.renewalWindowDays}    # renew once fewer days are left; less than leafValidityDays
  caKeyBits: ${cert.caKeyBits}
  leafKeyBits: ${cert.leafKeyBits}

# Every machine of the site. Roles:
#   central         NB/SB ovsdb-server (one RAFT cluster each: use 1, 3 or 5 centrals) + ovn-northd
#   worker          ovs-vswitchd + ovn-controller, i.e. a chassis; needs "encap"
#   metadata-agent  neutron-ovn-metadata-agent; runs next to ovn-controller, so only on workers
#   cms             a Northbound client (neutron-server, an operator's machine): NB and SB through
#                   its stunnel client; the centrals admit no other host but a central to the NB
# Names, addresses, system-ids and encap IPs must be unique across the site; a dnsName may not be
# another host's name (the centrals admit clients by the names in their certificates).
hosts:
  - name: central1                  # host name: lowercase letters, digits, "-"
    addresses: [192.0.2.11]         # IPv4 or IPv6; the first is the primary
    dnsNames: [central1.example.org]   # optional: extra names for the server certificate
    roles: [central]
  - name: central2
    addresses: [192.0.2.12]
    dnsNames: [central2.example.org]
    roles: [central]
  - name: central3
    addresses: [192.0.2.13, "2001:db8::13"]
    dnsNames: [central3.example.org]
    roles: [central]

  - name: worker1
    addresses: [192.0.2.21]
    roles: [worker, metadata-agent]
    encap:                          # required for workers: the tunnel endpoint
      type: geneve                  # geneve (default) or vxlan
      ip: 192.0.2.21
    systemId: worker1               # optional: OVS system-id / chassis name, default: the name
    ssh:                            # optional: how "deploy" reaches it, default root@<first address>:22
      user: root
      port: 22
  - name: worker2
    addresses: [192.0.2.22]
    roles: [worker]
    encap: { type: geneve, ip: 192.0.2.22 }

  # - name: neutron1                # e.g. neutron-server's host: ovn-nbctl/neutron reach the NB
  #   addresses: [192.0.2.31]       # through unix:/var/run/ovn-deploy/ovsdb/<central>.nb
  #   roles: [cms]

# Settings of neutron-ovn-metadata-agent on the hosts with the metadata-agent role (required as
# soon as one host has that role). The shared secret is not written here: give it to
# "ovn-deploy render --metadata-secret-file FILE"; it only goes into a 0600 file on those hosts.
metadataAgent:
  novaMetadataHost: 192.0.2.5       # nova-api's metadata service
  novaMetadataPort: ${DEFAULT_NOVA_METADATA_PORT}            # default ${DEFAULT_NOVA_METADATA_PORT}
  workers: ${DEFAULT_METADATA_WORKERS}                       # metadata_workers, default ${DEFAULT_METADATA_WORKERS}
  # image: registry.example.com/ovn-deploy/ovn-metadata-agent:24.03   # run the agent in podman (deploy ships it)
`;
}
