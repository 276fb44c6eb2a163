/**
 * One host's bundle (pure): its config files, the manifest that says where they go and what they
 * reload, the daemons it runs, its OVS wiring, RAFT membership, health checks and firewall. Same
 * input, same bytes: no timestamps, no randomness, no private key.
 */
import { hash } from 'node:crypto';
import path from 'node:path';
import {
  BUNDLE_FORMAT,
  MANIFEST_FILE,
  type BundleFile,
  type BundleManifest,
  type CertificateRequest,
  type HealthCheck,
  type OvsSettings,
  type RaftDb,
  type StandaloneDb,
} from '../bundle/manifest.js';
import { signManifest, SIGNATURE_FILE } from '../bundle/signature.js';
import type { FileContent, RenderedFiles } from '../fsx.js';
import type { Host, Inventory, Role } from '../inventory/types.js';
import { bundlePaths, hostPaths, hostRenderedPaths, ovsdbSchemas } from '../paths.js';
import { hostStunnelTls, hostTopology, ovsdbRemotes, stunnelClientSpec, stunnelServerSpec, type HostTopology, type SiteTopology } from '../site/topology.js';
import { renderStunnelConfig } from '../stunnel/render.js';
import { CHASSIS_ROLE, nativePort, rbacListener } from '../site/native-tls.js';
import type { StunnelConfigSpec } from '../stunnel/types.js';
import { firewallRules, ownAddresses, peerListJson, portPolicies, renderLocalAccess, renderNftables, renderTmpfiles, type PortPolicy } from './firewall.js';
import { metadataFiles } from './metadata.js';
import { hostServices, BINARIES, INTEGRATION_BRIDGE, SERVICE, type HostService } from './services.js';
import { DEFAULT_METADATA_CONTAINER, METADATA_PROXY_SOCKET, type MetadataAgentRuntime } from './metadata-runtime.js';
import { DISTRIBUTION_UNITS, renderDropIn, renderManagedMarker, renderUnit } from './systemd.js';
import type { RenderOptions, SitePki } from './types.js';
import type { LeafRole } from '../pki/types.js';

/** Paths on the host (destinations, what apply resolves below its --root): the distribution layout. */
const hp = hostPaths();
const rp = hostRenderedPaths();

/** A file of the bundle before it is hashed: destination on the host plus what it triggers. */
interface PlannedFile {
  dest: string;
  content: string;
  mode: number;
  reload: string[];
  restart: string[];
  /** templates/<this> made it; absent for files copied from the PKI. */
  template?: string;
}

/** What apt/dnf install per role (Debian / Fedora-EL names). */
const PACKAGES = {
  // nftables: local-access.nft keeps local users off the RAFT loopback ports
  central: { apt: ['nftables', 'ovn-central', 'stunnel4'], dnf: ['nftables', 'openvswitch', 'ovn-central', 'stunnel'] },
  worker: { apt: ['openvswitch-switch', 'ovn-host', 'stunnel4'], dnf: ['openvswitch', 'ovn-host', 'stunnel'] },
  // iptables: the agent runs iptables-save/-restore in each ovnmeta namespace (not a dependency of
  // Debian's package); sudo: its root helper starts the privsep daemons.
  'metadata-agent': { apt: ['haproxy', 'iptables', 'neutron-ovn-metadata-agent', 'sudo'], dnf: ['haproxy', 'iptables', 'openstack-neutron-ovn-metadata-agent', 'sudo'] },
  // ovn-nbctl/ovn-sbctl, ovsdb-client (probes through the tunnel), and the tunnel to the centrals
  cms: { apt: ['openvswitch-common', 'ovn-common', 'stunnel4'], dnf: ['openvswitch', 'ovn', 'stunnel'] },
} as const;

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

/** A containerized agent brings its own neutron and haproxy: the host needs podman only. */
const CONTAINER_AGENT_PACKAGES = { apt: ['podman'], dnf: ['podman'] } as const;

function packages(inv: Inventory, host: Host, runtime: MetadataAgentRuntime): BundleManifest['packages'] {
  const of = (r: Role): { apt: readonly string[]; dnf: readonly string[] } => (r === 'metadata-agent' && runtime.kind === 'container' ? CONTAINER_AGENT_PACKAGES : PACKAGES[r]);
  // Native TLS: no stunnel on any host.
  const keep = (p: string): boolean => inv.tls.mode !== 'native' || !p.startsWith('stunnel');
  return {
    apt: sorted(host.roles.flatMap((r) => of(r).apt).filter(keep)),
    dnf: sorted(host.roles.flatMap((r) => of(r).dnf).filter(keep)),
  };
}

/** How this host runs its metadata agent: the caller's choice (the sandbox), else the site file's image, else the distribution's agent. */
export function metadataRuntimeOf(inv: Inventory, opts: Pick<RenderOptions, 'metadataRuntime'>): MetadataAgentRuntime {
  if (opts.metadataRuntime !== undefined) return opts.metadataRuntime;
  const image = inv.metadataAgent?.image;
  return image === undefined ? { kind: 'process' } : { kind: 'container', image };
}

/**
 * The names the host's certificate carries: what apply demands of an installed certificate, so a
 * certificate renewed elsewhere (`certs rotate`) must carry exactly these.
 */
export function certificateSans(host: Host): string[] {
  return [...new Set([host.name, ...host.dnsNames, ...host.addresses])];
}

/** The role of the host's one certificate: `central` (serverAuth + clientAuth, so RAFT peers use it as clients), `worker` or `cms`. */
export function certificateRole(ht: HostTopology): LeafRole {
  return ht.isCentral ? 'central' : ht.host.roles.includes('worker') || !ht.host.roles.includes('cms') ? 'worker' : 'cms';
}

function certificate(inv: Inventory, host: Host, ht: HostTopology): CertificateRequest {
  return {
    role: certificateRole(ht),
    name: host.name,
    sans: certificateSans(host),
    keyBits: inv.certificates.leafKeyBits,
    renewalWindowDays: inv.certificates.renewalWindowDays,
    key: hp.pki.key,
    csr: hp.pki.csr,
    cert: hp.pki.cert,
    caBundle: hp.pki.caBundle,
    crl: hp.pki.crl,
  };
}

function ovsSettings(host: Host, topo: SiteTopology, root: string): OvsSettings | undefined {
  if (!host.roles.includes('worker') || host.encap === undefined) return undefined;
  const bridge = INTEGRATION_BRIDGE;
  const externalIds: Record<string, string> = {
    hostname: host.name,
    'ovn-bridge': bridge,
    'ovn-bridge-datapath-type': host.datapath,
    'ovn-encap-ip': host.encap.ip,
    'ovn-encap-type': host.encap.type,
    'ovn-remote': ovsdbRemotes(topo, 'sb', root),
    'system-id': host.systemId,
  };
  return {
    datapath: host.datapath,
    integrationBridge: bridge,
    externalIds,
    // OVS's userspace tunnels need the encap IP on an OVS port: the NIC goes into br-phy.
    ...(host.datapath === 'netdev' && host.encap.interface !== undefined
      ? { underlay: { bridge: 'br-phy', interface: host.encap.interface, ip: host.encap.ip } }
      : {}),
    dbSock: hp.ovs.dbSock,
  };
}

function raftDbs(ht: HostTopology, topo: SiteTopology): RaftDb[] {
  if (ht.raft === undefined) return [];
  const bootstrap = topo.bootstrap === ht.host.name;
  return [
    { name: 'OVN_Northbound', service: SERVICE.nbOvsdb, dbFile: hp.ovn.nbDb, schema: ovsdbSchemas.nb, ctl: hp.ovn.nbCtl, ...ht.raft.nb, bootstrap },
    { name: 'OVN_Southbound', service: SERVICE.sbOvsdb, dbFile: hp.ovn.sbDb, schema: ovsdbSchemas.sb, ctl: hp.ovn.sbCtl, ...ht.raft.sb, bootstrap },
  ];
}

function standaloneDbs(host: Host): StandaloneDb[] {
  return host.roles.includes('worker') ? [{ service: SERVICE.ovsOvsdb, dbFile: hp.ovs.confDb, schema: ovsdbSchemas.vswitch }] : [];
}

/**
 * Idempotent: `init` only creates the NB_Global / SB_Global row when there is none. Native mode:
 * the chassis' SB listener with role=ovn-controller (run once, when the cluster is created: a
 * set-connection replaces the row, and with it every chassis' connection).
 */
function initCommands(inv: Inventory, ht: HostTopology, topo: SiteTopology, root: string): string[][] {
  if (topo.bootstrap !== ht.host.name) return [];
  const ovn = hostPaths(root).ovn;
  return [
    [BINARIES.nbctl, `--db=unix:${ovn.nbSock}`, 'init'],
    [BINARIES.sbctl, `--db=unix:${ovn.sbSock}`, 'init'],
    ...(inv.tls.mode === 'native' ? [[BINARIES.sbctl, `--db=unix:${ovn.sbSock}`, 'set-connection', `role=${CHASSIS_ROLE}`, rbacListener(inv, topo.centrals)]] : []),
  ];
}

function health(inv: Inventory, ht: HostTopology, topo: SiteTopology, services: HostService[], specs: StunnelConfigSpec[], runtime: MetadataAgentRuntime): HealthCheck[] {
  const checks: HealthCheck[] = services.map((s) => ({ kind: 'service-running', service: s.spec.name }));
  // Running is not answering: the daemons without a deeper check below answer on their control socket.
  const runs = new Set(services.map((s) => s.spec.name));
  const unixctl = (service: string, ctl: string, command: 'version' | 'status'): void => {
    if (runs.has(service)) checks.push({ kind: 'unixctl', service, ctl, command });
  };
  unixctl(SERVICE.ovsOvsdb, hp.ovs.ovsdbCtl, 'version');
  unixctl(SERVICE.vswitchd, hp.ovs.vswitchdCtl, 'version');
  unixctl(SERVICE.northd, hp.ovn.northdCtl, 'status');
  if (ht.central !== undefined) {
    checks.push({ kind: 'raft-member', db: 'OVN_Northbound', ctl: hp.ovn.nbCtl }, { kind: 'raft-member', db: 'OVN_Southbound', ctl: hp.ovn.sbCtl });
    for (const db of ['nb', 'sb'] as const) checks.push({ kind: 'unix-listen', path: hp.ovsdbSocket(ht.host.name, db), service: db === 'nb' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb });
  }
  // The stunnel client's tunnels to the other centrals: NB/SB on unix sockets (host paths, as
  // apply resolves them below its root), RAFT on loopback TCP.
  for (const d of inv.tls.mode === 'native' ? [] : ht.remoteCentrals) {
    for (const key of ht.clientEndpoints) if (key === 'nb' || key === 'sb') checks.push({ kind: 'unix-listen', path: hp.ovsdbSocket(d.host.name, key), service: SERVICE.stunnelClient });
  }
  // Native mode: ovsdb-server's own TLS listeners (the chassis' SB on every address, asked on this one).
  if (inv.tls.mode === 'native' && ht.central !== undefined) {
    for (const e of ['nb', 'sb', 'sbAdmin', 'nbRaft', 'sbRaft'] as const) {
      checks.push({ kind: 'tcp-listen', address: ht.central.address, port: nativePort(inv, e), service: e === 'nb' || e === 'nbRaft' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb });
    }
  }
  // Every TCP listener of stunnel, server and client side.
  for (const spec of specs) {
    for (const svc of spec.services) {
      if (svc.accept.startsWith('/')) continue;
      const i = svc.accept.lastIndexOf(':');
      const service = spec.kind === 'server' ? SERVICE.stunnelServer : SERVICE.stunnelClient;
      checks.push({ kind: 'tcp-listen', address: svc.accept.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(svc.accept.slice(i + 1)), service });
    }
  }
  if (ht.host.roles.includes('worker')) checks.push({ kind: 'ovn-controller-connected', runDir: hp.ovn.runDir });
  if (ht.host.roles.includes('metadata-agent')) {
    // Alive is not enough: registered in the SB (else no ovnmeta namespace is made) and its
    // metadata API answering (what haproxy forwards to).
    checks.push(
      {
        kind: 'metadata-registered',
        chassis: ht.host.systemId,
        sbSockets: topo.centrals.map((c) => hp.ovsdbSocket(c.host.name, 'sb')),
        ...(inv.tls.mode === 'native' ? { sbRemotes: ovsdbRemotes(topo, 'sb').split(',') } : {}),
      },
      { kind: 'unix-listen', path: path.join(rp.metadata.statePath, METADATA_PROXY_SOCKET), service: SERVICE.metadataAgent },
    );
    if (runtime.kind === 'container') checks.push({ kind: 'container-healthy', container: runtime.name ?? DEFAULT_METADATA_CONTAINER });
  }
  return checks;
}

function plannedFiles(inv: Inventory, ht: HostTopology, pki: SitePki, services: HostService[], specs: StunnelConfigSpec[], opts: RenderOptions, topo: SiteTopology, policies: PortPolicy[]): PlannedFile[] {
  const { site } = inv;
  const host = ht.host.name;
  const root = opts.root ?? '/';
  const stunnelServices = specs.map((s) => (s.kind === 'server' ? SERVICE.stunnelServer : SERVICE.stunnelClient));
  const file = (dest: string, content: string, more: Partial<Omit<PlannedFile, 'dest' | 'content'>> = {}): PlannedFile => ({
    dest,
    content,
    mode: more.mode ?? 0o644,
    reload: more.reload ?? [],
    restart: more.restart ?? [],
    ...(more.template === undefined ? {} : { template: more.template }),
  });
  const files: PlannedFile[] = [
    // stunnel re-reads its trust files on SIGHUP; established connections survive.
    file(hp.pki.caBundle, pki.caBundlePem, { reload: stunnelServices }),
    file(hp.pki.crl, pki.crlPem, { reload: stunnelServices }),
    file(rp.managedMarker, renderManagedMarker(site, host), { template: 'host/managed-marker.hbs' }),
    file(rp.firewall, renderNftables(site, host, policies, ownAddresses(ht), root), { template: 'host/firewall.nft.hbs' }),
    file(rp.tmpfiles, renderTmpfiles(site, host, root), { template: 'host/tmpfiles.conf.hbs' }),
  ];
  // RAFT cluster addresses are TCP on loopback: only a central has them (its own and its tunnels).
  if (ht.isCentral && inv.tls.mode === 'stunnel') files.push(file(rp.localAccess, renderLocalAccess(site, host, [inv.loopbackPorts.nbRaft, inv.loopbackPorts.sbRaft], root), { template: 'host/local-access.nft.hbs' }));
  for (const spec of specs) {
    const name = spec.kind === 'server' ? SERVICE.stunnelServer : SERVICE.stunnelClient;
    // No secret inside (only the key's path): world-readable like Debian's /etc/stunnel.
    files.push(file(rp.stunnelConf(spec.kind), renderStunnelConfig(spec), { reload: [name], template: `stunnel/${spec.kind}.conf.hbs` }));
  }
  for (const svc of services) files.push(file(rp.unit(svc.spec.name), renderUnit(site, host, svc), { restart: [svc.spec.name], template: 'host/service.hbs' }));
  for (const unit of DISTRIBUTION_UNITS) files.push(file(rp.dropIn(unit), renderDropIn(site, host, unit, root), { template: 'host/dropin.conf.hbs' }));
  if (ht.host.roles.includes('metadata-agent')) {
    for (const f of metadataFiles(inv, ht.host, topo, opts.metadataSecret, root)) {
      // Each metadata file is named after its template (metadataAgentFiles).
      files.push(file(f.dest, f.content, { mode: f.mode, restart: [SERVICE.metadataAgent], template: `metadata-agent/${path.basename(f.dest)}.hbs` }));
    }
  }
  return files.sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
}

/** One-shot: for thousands of small files the Hash object's setup cost more than the hashing. */
const sha256 = (content: string): string => hash('sha256', content, 'hex');

/**
 * JSON with 2-space indent and a trailing newline; key order is the construction order (fixed).
 * A list of plain values (argv, addresses, service names) stays on one line: a worker's firewall
 * lists every other chassis, one line each would make a 1000-host site's manifests 3x larger.
 */
export function manifestJson(manifest: BundleManifest): string {
  return `${formatJson(manifest, '')}\n`;
}

/**
 * `["a", "b"]`. A firewall's list has one entry per other chassis: for a list of strings that
 * need no escaping (the length shows it), one JSON.stringify and a replace of the separators
 * instead of one call per entry. Without escapes, `","` occurs only between entries.
 */
function plainList(value: readonly unknown[]): string {
  if (value.every((v) => typeof v === 'string')) {
    const json = JSON.stringify(value);
    let bare = 1 + value.length;
    for (const v of value as string[]) bare += v.length + 2;
    if (json.length === bare) return json.replaceAll('","', '", "');
  }
  return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
}

function formatJson(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const peers = peerListJson(value);
    if (peers !== undefined) return peers;
    if (value.every((v) => v === null || typeof v !== 'object')) return plainList(value);
    const inner = `${indent}  `;
    return `[\n${value.map((v) => `${inner}${formatJson(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

export interface HostBundle {
  manifest: BundleManifest;
  /** Relative to the host's bundle directory: `manifest.json` and `files/<dest>`. */
  files: RenderedFiles;
}

/** The bundle of `hostName`, given the site's topology (computed once by renderSite). */
export function renderHostBundleWith(inv: Inventory, topo: SiteTopology, hostName: string, pki: SitePki, opts: RenderOptions): HostBundle {
  const root = opts.root ?? '/';
  const ht = hostTopology(inv, topo, hostName);
  const host = ht.host;
  const tls = hostStunnelTls(root);
  const specs = [stunnelServerSpec(inv, topo, ht, tls, root), stunnelClientSpec(inv, ht, tls, root)].filter((s): s is StunnelConfigSpec => s !== undefined);
  const runtime = metadataRuntimeOf(inv, opts);
  const services = hostServices(inv, topo, ht, specs.some((s) => s.kind === 'client'), root, runtime);
  // Once per host: a worker's tunnel policy lists every other chassis.
  const policies = portPolicies(inv, topo, ht);
  const planned = plannedFiles(inv, ht, pki, services, specs, opts, topo, policies);
  const paths = bundlePaths('', host.name);
  const files: RenderedFiles = new Map<string, FileContent>();
  const manifestFiles: BundleFile[] = planned.map((f) => {
    const source = paths.source(f.dest);
    files.set(source, { content: f.content, mode: f.mode });
    return { source, dest: f.dest, mode: f.mode, owner: 'root', group: 'root', sha256: sha256(f.content), reload: f.reload, restart: f.restart, ...(f.template === undefined ? {} : { template: f.template }) };
  });
  const ovs = ovsSettings(host, topo, root);
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    site: inv.site,
    host: host.name,
    // Absent for '/': a bundle for the distribution layout keeps the bytes it always had.
    ...(root === '/' ? {} : { root }),
    roles: [...host.roles],
    generator: opts.generator ?? 'ovn-deploy',
    packages: packages(inv, host, runtime),
    certificate: certificate(inv, host, ht),
    files: manifestFiles,
    services: services.map((s) => s.spec),
    ...(ovs === undefined ? {} : { ovs }),
    raft: raftDbs(ht, topo),
    standaloneDbs: standaloneDbs(host),
    initCommands: initCommands(inv, ht, topo, root),
    health: health(inv, ht, topo, services, specs, runtime),
    firewall: firewallRules(policies),
    // Native TLS: a central's NB and admin SB port are gated by the firewall only (centrals install nftables).
    ...(inv.tls.mode === 'native' && ht.isCentral ? { firewallRequired: true } : {}),
    ...(runtime.kind === 'container' && host.roles.includes('metadata-agent') ? { images: [runtime.image] } : {}),
  };
  const json = manifestJson(manifest);
  files.set(MANIFEST_FILE, { content: json, mode: 0o644 });
  if (opts.signer !== undefined) files.set(SIGNATURE_FILE, { content: signManifest(Buffer.from(json, 'utf8'), opts.signer.key, opts.signer.certPem), mode: 0o644 });
  return { manifest, files };
}
