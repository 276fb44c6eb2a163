/**
 * The contract between `render` (admin machine, pure) and `apply` (the host): a bundle is a
 * directory with `manifest.json` and `files/<dest>`; the manifest says where every file goes,
 * with which mode and checksum, what to reload or restart when it changes, which daemons the
 * host runs, how its OVS is wired, how its RAFT members start, and what proves it healthy.
 * A bundle never holds a private key: the host generates its own (see `certificate`).
 */
import { z } from 'zod';

export const BUNDLE_FORMAT = 1;
export const MANIFEST_FILE = 'manifest.json';

const absolute = z.string().regex(/^\//, { error: 'expected an absolute path' });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a hex SHA-256' });
const serviceName = z.string().regex(/^[a-z][a-z0-9-]{0,47}$/, { error: 'expected a service name (a-z, 0-9, -)' });

export const bundleFileSchema = z.strictObject({
  /** Relative to the bundle directory: `files/<dest without the leading slash>`. */
  source: z.string().regex(/^files\//, { error: 'expected a path under files/' }),
  /** Absolute path on the host (apply prefixes --root). */
  dest: absolute,
  /** Octal permission bits, e.g. 0o644 (420). */
  mode: z.number().int().min(0).max(0o7777),
  owner: z.string().default('root'),
  group: z.string().default('root'),
  sha256,
  /** Services (by name) to SIGHUP / restart when this file's content changed. */
  reload: z.array(serviceName).default([]),
  restart: z.array(serviceName).default([]),
  /** The template under templates/ that made it (absent for the PKI's CA bundle and CRL, copied as they are). */
  template: z.string().regex(/^[a-z0-9_-]+(\/[a-z0-9_-][a-z0-9_.-]*)*\.hbs$/, { error: 'expected a template path such as host/service.hbs' }).optional(),
});
export type BundleFile = z.output<typeof bundleFileSchema>;

/**
 * A long-running daemon in the FOREGROUND. The own supervisor runs exactly this argv; the
 * systemd unit in `unit` (also a bundle file) has the same ExecStart.
 */
export const bundleServiceSchema = z.strictObject({
  name: serviceName,
  argv: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).default({}),
  /** Started after these (by name), stopped before them. */
  after: z.array(serviceName).default([]),
  /** Signal that makes the daemon re-read its files without dropping connections (stunnel: SIGHUP). */
  reloadSignal: z.enum(['SIGHUP']).optional(),
  /** Destination of the daemon's stdout/stderr under the own supervisor. */
  logFile: absolute,
  /** systemd unit file name, e.g. `ovn-deploy-ovn-northd.service`. */
  unit: z.string().regex(/^[A-Za-z0-9@_.-]+\.service$/),
  /** Cannot start before the host holds a signed certificate (stunnel). */
  needsCertificate: z.boolean().default(false),
  /**
   * apply starts stage 0 (databases), then configures what needs them (OVS external_ids and
   * bridges, cluster init), then stage 1 (everything else).
   */
  stage: z.union([z.literal(0), z.literal(1)]).default(1),
  /**
   * Unix sockets the daemon binds (stunnel's `accept = /path`): stunnel neither replaces a socket
   * file that is there nor removes its own when it dies (crash, SIGKILL, a host stop), so each
   * start removes them first (the own supervisor before it spawns; the systemd unit's
   * ExecStartPre does the same by a fixed command, see render/services.ts).
   */
  unixListeners: z.array(absolute).default([]),
  /**
   * Unix sockets another daemon of the host makes once it serves, that this one needs at start:
   * ovn-controller finding vswitchd's br-int.mgmt missing retries only a second later. The own
   * supervisor waits for them before it spawns; the systemd unit, in an ExecStartPre. Bounded:
   * after WAIT_FOR_MS (supervisor/types.ts) the daemon starts anyway (and retries by itself).
   */
  waitFor: z.array(absolute).default([]),
});
export type BundleService = z.output<typeof bundleServiceSchema>;

export const certificateRequestSchema = z.strictObject({
  /** Role of the host's one certificate: `central` when the host is a central (it also carries clientAuth), `cms` for a Northbound client, else `worker`. */
  role: z.enum(['central', 'worker', 'metadata-agent', 'cms']),
  /** Certificate name / CN (the host name). */
  name: z.string().min(1),
  /** subjectAltName entries the CSR asks for and `pki sign-csr --san` is given. */
  sans: z.array(z.string()),
  keyBits: z.number().int(),
  /**
   * apply asks for a new certificate (for a new key, made next to the current one) once fewer
   * days than this are left, while the current one keeps serving. 0: only when it has expired
   * (bundles made before renewal existed).
   */
  renewalWindowDays: z.number().int().min(0).default(0),
  key: absolute,
  csr: absolute,
  cert: absolute,
  caBundle: absolute,
  crl: absolute,
});
export type CertificateRequest = z.output<typeof certificateRequestSchema>;

export const raftDbSchema = z.strictObject({
  /** OVSDB database name. */
  name: z.enum(['OVN_Northbound', 'OVN_Southbound']),
  /** The service (in `services`) that serves this database. */
  service: serviceName,
  dbFile: absolute,
  schema: absolute,
  ctl: absolute,
  /** This member's RAFT address, e.g. `tcp:127.45.3.9:16643` (a loopback address; stunnel carries it between hosts). */
  localAddress: z.string(),
  /** The other members' RAFT addresses (join-cluster remotes). */
  peers: z.array(z.string()),
  /**
   * The other members' client remotes (`unix:` + the host path of ovsdbSocket(D, nb), through the
   * local stunnel client; apply resolves it below its root): the bootstrap central asks them
   * whether a cluster exists before it creates one.
   */
  peerRemotes: z.array(z.string()).default([]),
  /** Create the cluster (`ovsdb-tool create-cluster`) when the file is missing; otherwise join it. */
  bootstrap: z.boolean(),
});
export type RaftDb = z.output<typeof raftDbSchema>;

/** A standalone OVSDB file (OVS's conf.db): created when missing, converted when its schema is older. */
export const standaloneDbSchema = z.strictObject({
  service: serviceName,
  dbFile: absolute,
  schema: absolute,
});
export type StandaloneDb = z.output<typeof standaloneDbSchema>;

export const ovsSchema = z.strictObject({
  datapath: z.enum(['system', 'netdev']),
  /** The integration bridge ovn-controller uses (external_ids:ovn-bridge). */
  integrationBridge: z.string(),
  /** Set on the Open_vSwitch row: system-id, ovn-remote, ovn-encap-type/-ip, ovn-bridge... */
  externalIds: z.record(z.string(), z.string()),
  /** Userspace datapath only: move `interface` into `bridge` and put `ip` on its internal port. */
  underlay: z.strictObject({ bridge: z.string(), interface: z.string(), ip: z.string() }).optional(),
  /** ovs-vsctl / ovs-appctl socket and control file. */
  dbSock: absolute,
});
export type OvsSettings = z.output<typeof ovsSchema>;

export const healthCheckSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('service-running'), service: serviceName }),
  /** `cluster/status` says this server is a cluster member and a leader is known. */
  z.strictObject({ kind: z.literal('raft-member'), db: z.enum(['OVN_Northbound', 'OVN_Southbound']), ctl: absolute }),
  /** Something accepts TCP connections here (e.g. stunnel's TLS listener); `service`: the daemon that listens. */
  z.strictObject({ kind: z.literal('tcp-listen'), address: z.string(), port: z.number().int(), service: serviceName.optional() }),
  /** Something accepts connections on this unix socket (a host path: apply resolves it below its root). */
  z.strictObject({ kind: z.literal('unix-listen'), path: absolute, service: serviceName.optional() }),
  /** The service's daemon answers `ovs-appctl -t ctl command` on its control socket (a host path). */
  z.strictObject({ kind: z.literal('unixctl'), service: serviceName, ctl: absolute, command: z.enum(['version', 'status']) }),
  /** `ovn-appctl -t ovn-controller connection-status` says connected. */
  z.strictObject({ kind: z.literal('ovn-controller-connected'), runDir: absolute }),
  /**
   * The metadata agent registered this chassis in the Southbound (Chassis_Private
   * external_ids:neutron:ovn-metadata-id), read through the host's own SB remotes (unix sockets).
   */
  z.strictObject({
    kind: z.literal('metadata-registered'),
    chassis: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    sbSockets: z.array(absolute).min(1).max(16),
    /** Native TLS: the SB asked at these `ssl:` remotes with the host's own key and certificate instead. */
    sbRemotes: z.array(z.string().regex(/^ssl:([0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}\]):[1-9][0-9]{0,4}$/)).min(1).max(16).optional(),
  }),
  /** `podman healthcheck run` of this container exits 0 (the image's own HEALTHCHECK). */
  z.strictObject({ kind: z.literal('container-healthy'), container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/) }),
]);
export type HealthCheck = z.output<typeof healthCheckSchema>;

export const firewallRuleSchema = z.strictObject({
  proto: z.enum(['tcp', 'udp']),
  port: z.number().int().min(1).max(65535),
  /** Source addresses allowed; empty = any. */
  from: z.array(z.string()),
  why: z.string(),
});
export type FirewallRule = z.output<typeof firewallRuleSchema>;

export const manifestSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  site: z.string(),
  host: z.string(),
  /**
   * The root directory the bundle was rendered for (absent: '/'). argv, env, log files, init
   * commands and file contents name paths below it; `dest` and the other host paths here do not
   * (apply places them below its --root, which must be this root).
   */
  root: absolute.optional(),
  roles: z.array(z.enum(['central', 'worker', 'metadata-agent', 'cms'])),
  /** `ovn-deploy <version>`; no timestamps, so the same input renders byte-identical bundles. */
  generator: z.string(),
  packages: z.strictObject({ apt: z.array(z.string()), dnf: z.array(z.string()) }),
  certificate: certificateRequestSchema,
  files: z.array(bundleFileSchema),
  services: z.array(bundleServiceSchema),
  ovs: ovsSchema.optional(),
  raft: z.array(raftDbSchema).default([]),
  standaloneDbs: z.array(standaloneDbSchema).default([]),
  /** Commands that make a freshly created cluster usable (`ovn-nbctl init`), run on the bootstrap central only, idempotent. */
  initCommands: z.array(z.array(z.string())).default([]),
  health: z.array(healthCheckSchema),
  firewall: z.array(firewallRuleSchema),
  /**
   * Native TLS: ovsdb-server admits any certificate of the site CA, so the firewall's source
   * addresses are the only gate of the NB and the admin SB port: apply loads it without --firewall.
   */
  firewallRequired: z.literal(true).optional(),
  /** Container images the services run (podman); apply loads one from `--image-archive` when the host lacks it. */
  images: z.array(z.string().regex(/^[a-z0-9][^\s]{0,254}$/)).max(8).optional(),
});
export type BundleManifest = z.output<typeof manifestSchema>;
/** What render builds (defaults filled in explicitly). */
export type BundleManifestInput = z.input<typeof manifestSchema>;
