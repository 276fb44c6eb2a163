/**
 * The zod schema of `site.yaml`. Field-specific messages live next to the field; everything
 * generic (required, wrong type, enums) is worded by `genericIssueMessage`. Relations between
 * fields (duplicates, ports used twice, role combinations) are in `rules.ts`, because they must
 * run even when some fields are broken.
 */
import { z } from 'zod';
import { HOST_NAME_PATTERN, addressHint, isDnsName, isIpAddress, unusableAddressReason } from './addresses.js';
import {
  DEFAULT_CERTIFICATE_POLICY,
  DEFAULT_LOOPBACK_PORTS,
  DEFAULT_METADATA_WORKERS,
  DEFAULT_NOVA_METADATA_PORT,
  DEFAULT_PORTS,
  DEFAULT_SB_ADMIN_PORT,
  DEFAULT_SITE,
  DEFAULT_SSH_PORT,
  DEFAULT_SSH_USER,
  KEY_BITS,
  MAX_VALIDITY_DAYS,
} from './defaults.js';
import { expected, notA } from './messages.js';
import { ROLES, TLS_MODES, type Inventory, type Role } from './types.js';

const NAME_RULE = 'lowercase letters, digits and "-", at most 63 characters, no "-" at either end';

const notAPort = expected('a port number 1-65535');
const port = z.number({ error: notAPort }).int({ error: notAPort }).min(1, { error: notAPort }).max(65535, { error: notAPort });

const notDays = expected(`a whole number of days 1-${MAX_VALIDITY_DAYS}`);
const days = z.number({ error: notDays }).int({ error: notDays }).min(1, { error: notDays }).max(MAX_VALIDITY_DAYS, { error: notDays });

const KEY_BITS_TEXT = `one of ${KEY_BITS.join(', ')}`;
// A number checked against the list (not z.literal) so the output type stays `number` like
// CertificatePolicy; the JSON Schema still offers the choices.
const keyBits = z
  .number({ error: expected(KEY_BITS_TEXT) })
  .refine((v) => (KEY_BITS as readonly number[]).includes(v), { error: expected(KEY_BITS_TEXT) })
  .meta({ enum: [...KEY_BITS] });

const ipAddress = z
  .string({ error: notA('an IPv4 or IPv6 address') })
  .refine(isIpAddress, { error: notA('an IPv4 or IPv6 address', addressHint) })
  .superRefine((v, ctx) => {
    const why = unusableAddressReason(v);
    if (why !== undefined) ctx.addIssue({ code: 'custom', input: v, message: `${JSON.stringify(v)} cannot be a host's address: ${why}` });
  })
  .meta({ anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] });

const hostName = z
  .string({ error: expected(`a host name (${NAME_RULE})`) })
  .regex(HOST_NAME_PATTERN, { error: expected(`a host name (${NAME_RULE})`) });

const siteName = z
  .string({ error: expected(`a site name (${NAME_RULE})`) })
  .regex(HOST_NAME_PATTERN, { error: expected(`a site name (${NAME_RULE})`) });

/**
 * A container image reference as podman takes it: [registry[:port]/]path[:tag][@sha256:digest].
 * No leading "-" (it would be an option) and no blanks (it is one argv word and one unit word).
 */
const IMAGE_RULE = 'a container image reference such as registry.example.com/ovn-deploy/ovn-metadata-agent:24.03 (at most 255 characters)';
const containerImage = z
  .string({ error: expected(IMAGE_RULE) })
  .max(255, { error: expected(IMAGE_RULE) })
  .regex(/^[a-z0-9][a-z0-9._-]*(?::[0-9]{1,5})?(?:\/[a-z0-9][a-z0-9._-]*)*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/, { error: expected(IMAGE_RULE) });

const dnsName = z
  .string({ error: notA('a DNS name') })
  .refine(isDnsName, { error: notA('a DNS name') })
  .meta({ format: 'hostname' });

// Becomes the OVS system-id, the chassis name and a certificate file name: keep it path-safe.
const SYSTEM_ID_RULE = 'letters, digits, ".", "_" and "-", at most 64 characters';
const systemId = z
  .string({ error: expected(`a system-id (${SYSTEM_ID_RULE})`) })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: expected(`a system-id (${SYSTEM_ID_RULE})`) });

// Linux IFNAMSIZ is 16 including the NUL; "/" and whitespace are never valid.
const interfaceName = z
  .string({ error: expected('a network interface name (1-15 characters, no "/", ":" or spaces)') })
  .regex(/^[A-Za-z0-9_.-]{1,15}$/, { error: expected('a network interface name (1-15 characters, no "/", ":" or spaces)') });

const sshUser = z
  .string({ error: expected('a user name') })
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/, { error: expected('a user name') });

const sshHost = z
  .string({ error: notA('a host name or address') })
  .refine((v) => isIpAddress(v) || isDnsName(v), { error: notA('a host name or address') });

function portsSchema(defaults: Readonly<Record<'nb' | 'sb' | 'nbRaft' | 'sbRaft', number>>, where: string) {
  return z.strictObject({
    nb: port.default(defaults.nb).meta({ description: `Northbound OVSDB port ${where}.` }),
    sb: port.default(defaults.sb).meta({ description: `Southbound OVSDB port ${where}.` }),
    nbRaft: port.default(defaults.nbRaft).meta({ description: `Northbound RAFT cluster port ${where}.` }),
    sbRaft: port.default(defaults.sbRaft).meta({ description: `Southbound RAFT cluster port ${where}.` }),
  });
}

const roleList = z
  .array(z.enum(['central', 'worker', 'metadata-agent', 'cms'] as const satisfies readonly Role[]))
  .min(1, { error: `expected at least one role (${ROLES.join(', ')})` });

const hostSchema = z
  .strictObject({
    name: hostName.meta({ description: 'Host name (lowercase RFC 1123 label); unique in the site.' }),
    addresses: z
      .array(ipAddress)
      .min(1, { error: 'expected at least one address' })
      .meta({ description: 'IPv4/IPv6 addresses the host is reached by; the first is the primary. Unique in the site.' }),
    dnsNames: z
      .array(dnsName)
      .default([])
      .meta({ description: "Extra DNS names of the host; they go into a central's server certificate (SAN)." }),
    roles: roleList.meta({
      description:
        'central: NB/SB ovsdb-server (RAFT) and ovn-northd. worker: ovs-vswitchd + ovn-controller (a chassis). ' +
        'metadata-agent: neutron-ovn-metadata-agent, only on workers. ' +
        'cms: a Northbound client (neutron-server, an operator): NB and SB through its stunnel client; only centrals and cms hosts reach the NB.',
    }),
    encap: z
      .strictObject({
        type: z.enum(['geneve', 'vxlan']).default('geneve').meta({ description: 'Tunnel type.' }),
        ip: ipAddress.meta({ description: 'Local tunnel endpoint address (ovn-encap-ip).' }),
        interface: interfaceName
          .optional()
          .meta({ description: 'NIC carrying the tunnels; with datapath netdev, apply moves it into br-phy and puts the encap IP there.' }),
      })
      .optional()
      .meta({ description: 'Tunnel endpoint of a worker (required for workers).' }),
    datapath: z
      .enum(['system', 'netdev'])
      .default('system')
      .meta({ description: 'OVS datapath: system (kernel module, production) or netdev (userspace; containers and hosts without the module).' }),
    systemId: systemId.optional().meta({ description: 'OVS system-id / chassis name; defaults to the host name.' }),
    ssh: z
      .strictObject({
        user: sshUser.default(DEFAULT_SSH_USER).meta({ description: 'SSH user.' }),
        port: port.default(DEFAULT_SSH_PORT).meta({ description: 'SSH port.' }),
        host: sshHost.optional().meta({ description: 'SSH target; defaults to the first address.' }),
      })
      .optional()
      .meta({ description: 'How `deploy` reaches the host; defaults to root@<first address>:22.' }),
  })
  .meta({ description: 'One machine of the site.' })
  .transform(({ systemId: id, ...host }) => ({ ...host, systemId: id ?? host.name }));

export const inventorySchema = z
  .strictObject({
    site: siteName
      .default(DEFAULT_SITE)
      .meta({ description: 'Site name; used in certificate subjects and in the header of generated files.' }),
    tls: z
      .strictObject({
        mode: z
          .enum(TLS_MODES)
          .default('stunnel')
          .meta({
            description:
              'stunnel: TLS 1.2 terminated by stunnel (per-port name checks, CRL). native: ovsdb-server\'s own TLS 1.2, ' +
              'with Southbound RBAC (role ovn-controller) but no CRL check. Chosen when the site is created.',
          }),
        sbAdminPort: port
          .default(DEFAULT_SB_ADMIN_PORT)
          .meta({ description: 'Native mode: Southbound port without RBAC, for ovn-northd and cms hosts (firewalled to them).' }),
      })
      .prefault({})
      .meta({ description: 'How OVSDB connections are secured.' }),
    ports: portsSchema(DEFAULT_PORTS, "(TLS, on the hosts' addresses)")
      .prefault({})
      .meta({ description: 'TLS ports stunnel listens on.' }),
    loopbackPorts: portsSchema(DEFAULT_LOOPBACK_PORTS, '(plaintext, loopback addresses only)')
      .prefault({})
      .meta({
        description:
          "RAFT cluster ports on each central's own loopback address 127.x.y.z (derived from the site and host name), " +
          "where the stunnel clients of the other centrals offer that central's RAFT ports too; only root may connect " +
          '(local-access.nft). nb and sb are no longer bound: NB and SB plaintext are root-only unix sockets; they are ' +
          'kept so that older site files validate, and must still differ from the other ports.',
      }),
    certificates: z
      .strictObject({
        caValidityDays: days.default(DEFAULT_CERTIFICATE_POLICY.caValidityDays).meta({ description: 'Lifetime of the site CA.' }),
        leafValidityDays: days
          .default(DEFAULT_CERTIFICATE_POLICY.leafValidityDays)
          .meta({ description: 'Lifetime of server and client certificates; at most caValidityDays.' }),
        renewalWindowDays: days
          .default(DEFAULT_CERTIFICATE_POLICY.renewalWindowDays)
          .meta({ description: 'Renew a certificate once fewer days than this are left; less than leafValidityDays.' }),
        caKeyBits: keyBits.default(DEFAULT_CERTIFICATE_POLICY.caKeyBits).meta({ description: 'RSA key size of the CA.' }),
        leafKeyBits: keyBits.default(DEFAULT_CERTIFICATE_POLICY.leafKeyBits).meta({ description: 'RSA key size of server and client certificates.' }),
      })
      .prefault({})
      .meta({ description: 'Certificate lifetimes and key sizes.' }),
    hosts: z
      .array(hostSchema)
      .min(1, { error: 'expected at least one host' })
      .meta({ description: 'Every machine of the site with its roles.' }),
    metadataAgent: z
      .strictObject({
        novaMetadataHost: sshHost.meta({ description: "Host name or address of nova-api's metadata service (nova_metadata_host)." }),
        novaMetadataPort: port.default(DEFAULT_NOVA_METADATA_PORT).meta({ description: 'Port of the metadata service (nova_metadata_port).' }),
        workers: z
          .number({ error: expected('a whole number of workers 0-64') })
          .int({ error: expected('a whole number of workers 0-64') })
          .min(0, { error: expected('a whole number of workers 0-64') })
          .max(64, { error: expected('a whole number of workers 0-64') })
          .default(DEFAULT_METADATA_WORKERS)
          .meta({ description: 'Metadata API worker processes of each agent (metadata_workers).' }),
        image: containerImage
          .optional()
          .meta({
            description:
              'Run each agent in a podman container of this image (built from containers/ovn-metadata-agent) instead of the ' +
              "distribution's neutron-ovn-metadata-agent; deploy copies it from the admin's podman store to a host that lacks it.",
          }),
      })
      .optional()
      .meta({
        description:
          'neutron-ovn-metadata-agent settings; required when a host has the metadata-agent role. ' +
          'The shared secret is not here: `render --metadata-secret-file FILE` reads it.',
      }),
  })
  .meta({
    title: 'ovn-deploy site inventory (site.yaml)',
    description: 'The hosts of an OVN site, their roles, ports and certificate policy.',
  });

// The schema is the source of truth at runtime and `Inventory` at compile time; fail the build
// if they ever disagree.
type SchemaOutput = z.output<typeof inventorySchema>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesInventory: Same<SchemaOutput, Inventory> = true;
void schemaMatchesInventory;
