/**
 * The pure half of apply: from the manifest and what the host looks like now (observed, read-only)
 * to the ordered list of steps that converge it. Nothing here touches the host, so `--dry-run`
 * prints exactly this and tests assert plans. An up-to-date host plans no step at all.
 */
import type { BundleManifest, BundleService, RaftDb, StandaloneDb } from '../bundle/manifest.js';
import { hostPaths } from '../paths.js';
import { commandLine } from '../tools/systemctl.js';
import type { CertVerdict } from './certificate.js';
import type { Change } from './report.js';
import type { ObservedService } from './services.js';
import type { PendingActions } from './state.js';

export interface ObservedFile {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface ObservedOvs {
  /** The Open_vSwitch row exists (`ovs-vsctl init` ran). */
  initialized: boolean;
  externalIds: Record<string, string>;
  bridges: Map<string, { datapathType: string; failMode: string; ports: string[] }>;
}

export interface ObservedUnderlay {
  /** underlay.json: the address moved off the NIC (with its prefix length). */
  recordedCidr?: string;
  /** IPv4 addresses on the NIC and on the bridge's internal port right now. */
  nicAddrs: string[];
  bridgeAddrs: string[];
  bridgeUp: boolean;
}

export interface Observed {
  /** undefined: --skip-packages. */
  packages?: { manager: 'apt' | 'dnf'; missing: string[] };
  missingDirs: { path: string; mode: number }[];
  /** By destination (host path without --root); absent = no such file. */
  files: Map<string, ObservedFile>;
  /** uid/gid by name; absent = no such user/group (yet: a package may create it). */
  users: Map<string, number>;
  groups: Map<string, number>;
  certificate: {
    keyPresent: boolean;
    verdict: CertVerdict;
    /** host.csr exists, belongs to the key and asks for the bundle's names. */
    csrCurrent: boolean;
    /** `--certificate` was given and checked (it will be installed). */
    given: boolean;
    /** The certificate to install belongs to the renewal's pending key: that key moves into place. */
    rotateKey?: boolean;
    /**
     * The current certificate is fine but due (inside the renewal window, or `--renew-certificate`):
     * a new key waits in hostPaths().pki.keyNext for its certificate.
     */
    renewal?: { reason: 'window' | 'forced'; pendingKeyPresent: boolean; csrCurrent: boolean };
  };
  /** By db file (host path): missing, present, or present with an older schema. */
  dbs: Map<string, 'missing' | 'present' | 'needs-conversion'>;
  services: Map<string, ObservedService>;
  /** Services we run that the manifest no longer lists. */
  unlisted: string[];
  /** undefined: the OVS database did not answer (not running yet). */
  ovs?: ObservedOvs;
  underlay?: ObservedUnderlay;
  pending: PendingActions;
  /** initCommands ran before (applied.json). */
  initialized: boolean;
  /** systemd only: distribution units still enabled or running. */
  distroUnits: string[];
  /** The bundle's nftables file: nft usable here, and its table loaded now. Absent: no such file. */
  firewall?: { file: string; available: boolean; loaded: boolean };
  /**
   * A central's local-access rules (RAFT loopback ports: root only): loaded by every apply, not
   * only with --firewall, and never skipped: a host where nft cannot load them fails the step.
   */
  localAccess?: { file: string; loaded: boolean };
  servicesKind: 'own' | 'systemd';
  /** The manifest's images: the host's ID of each, and the archive `--image-archive` gave. */
  images?: { have: Map<string, string | undefined>; archive?: { file: string; id: string } };
}

export type ApplyStep =
  | { kind: 'packages'; manager: 'apt' | 'dnf'; packages: string[] }
  /** `podman load` of the shipped archive: some image of the manifest is missing or is another ID. */
  | { kind: 'image-load'; file: string; id: string; images: string[] }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'file'; dest: string; action: 'create' | 'update' | 'metadata'; contentChanged: boolean }
  | { kind: 'key' }
  | { kind: 'csr' }
  /** rotateKey: the certificate is for the pending key, which then replaces the current one. */
  | { kind: 'install-certificate'; rotateKey?: boolean }
  /** Renewal: a new key next to the current one (which keeps serving until its certificate comes). */
  | { kind: 'renewal-key' }
  | { kind: 'renewal-csr' }
  /** The apply goes on (nothing stops or reloads); the report asks for the new certificate. */
  | { kind: 'renewal-requested'; reason: 'window' | 'forced' }
  /** Stops here: nothing that needs the certificate can start. */
  | { kind: 'needs-certificate' }
  | { kind: 'db-create'; db: StandaloneDb }
  | { kind: 'db-convert'; db: StandaloneDb }
  | { kind: 'raft-create'; db: RaftDb }
  | { kind: 'raft-join'; db: RaftDb }
  | { kind: 'daemon-reload' }
  | { kind: 'firewall'; file: string }
  | { kind: 'disable-distro-units'; units: string[] }
  | { kind: 'services-stage0'; start: string[]; restart: string[]; stop: string[] }
  | { kind: 'ovs'; set: Record<string, string>; bridges: string[] }
  | { kind: 'init-commands'; commands: string[][] }
  | { kind: 'services-stage1'; start: string[]; restart: string[] }
  | { kind: 'underlay'; bridge: string; nic: string; ip: string }
  | { kind: 'reload'; service: string }
  | { kind: 'restart'; services: string[] };

/** Default directory modes: world-readable state (the CLI tools read sockets and logs as root anyway). */
export function requiredDirs(
  paths: {
  etc: string;
  pki: { dir: string };
  state: string;
  supervisorDir: string;
  logDir: string;
  runDir: string;
  ovsdbDir: string;
  ovn: { dbDir: string; runDir: string; logDir: string };
  ovs: { dbDir: string; runDir: string; logDir: string };
  },
  // Only hosts running Open vSwitch get its directories: a central has nothing that would recreate
  // /var/run/openvswitch after a reboot, so it would show up as a change on every deploy.
  runsOvs: boolean,
  /** The metadata agent's state, lock and log directories, when the host runs it (systemd makes them from the unit; the own supervisor does not). */
  metadata?: { statePath: string; lockPath: string; logDir: string },
): { path: string; mode: number; exact?: true }[] {
  const dirs: { path: string; mode: number; exact?: true }[] = [
    { path: paths.etc, mode: 0o755 },
    { path: paths.pki.dir, mode: 0o755 },
    { path: paths.state, mode: 0o755 },
    { path: paths.supervisorDir, mode: 0o755 },
    { path: paths.logDir, mode: 0o750 },
    { path: paths.runDir, mode: 0o755 },
    // Holds every NB/SB unix socket of the site on this host: its mode is what keeps other users
    // out, so apply also repairs a wrong mode (the other directories only need to exist).
    { path: paths.ovsdbDir, mode: 0o700, exact: true },
    { path: paths.ovn.dbDir, mode: 0o755 },
    { path: paths.ovn.runDir, mode: 0o755 },
    { path: paths.ovn.logDir, mode: 0o750 },
  ];
  const ovsDirs = [
    { path: paths.ovs.dbDir, mode: 0o755 },
    { path: paths.ovs.runDir, mode: 0o755 },
    { path: paths.ovs.logDir, mode: 0o750 },
  ];
  const metadataDirs = metadata === undefined ? [] : [metadata.statePath, metadata.lockPath, metadata.logDir].map((p) => ({ path: p, mode: 0o750 }));
  return [...dirs, ...(runsOvs ? ovsDirs : []), ...metadataDirs];
}

const UNIT_DIR = '/etc/systemd/system';
const isUnitFile = (dest: string): boolean => dest.startsWith(`${UNIT_DIR}/`);

/** The unit a unit file or drop-in belongs to (`x.service` or `x.service.d/y.conf`). */
function unitOfFile(dest: string): string | undefined {
  const rel = dest.slice(UNIT_DIR.length + 1);
  const first = rel.split('/')[0] ?? '';
  return first.endsWith('.d') ? first.slice(0, -2) : first;
}

export function planApply(manifest: BundleManifest, observed: Observed, serviceHash: (s: BundleService) => string): ApplyStep[] {
  const steps: ApplyStep[] = [];
  if (observed.packages !== undefined && observed.packages.missing.length > 0) {
    steps.push({ kind: 'packages', manager: observed.packages.manager, packages: observed.packages.missing });
  }
  const img = observed.images;
  const stale = img === undefined || img.archive === undefined ? [] : [...img.have].filter(([, id]) => id !== img.archive?.id).map(([ref]) => ref);
  if (img?.archive !== undefined && stale.length > 0) steps.push({ kind: 'image-load', file: img.archive.file, id: img.archive.id, images: stale });
  for (const d of observed.missingDirs) steps.push({ kind: 'mkdir', path: d.path, mode: d.mode });

  const reload = new Set(observed.pending.reload);
  const restart = new Set(observed.pending.restart);
  // A container of an image that is replaced now runs the old one until it restarts.
  for (const s of manifest.services) if (stale.some((ref) => s.argv.includes(ref))) restart.add(s.name);
  const restartForUnit = new Set<string>();
  let unitsChanged = false;
  for (const f of manifest.files) {
    const have = observed.files.get(f.dest);
    const uid = observed.users.get(f.owner);
    const gid = observed.groups.get(f.group);
    let step: Extract<ApplyStep, { kind: 'file' }> | undefined;
    if (have === undefined) step = { kind: 'file', dest: f.dest, action: 'create', contentChanged: true };
    else if (have.sha256 !== f.sha256) step = { kind: 'file', dest: f.dest, action: 'update', contentChanged: true };
    else if (have.mode !== f.mode || have.uid !== uid || have.gid !== gid) step = { kind: 'file', dest: f.dest, action: 'metadata', contentChanged: false };
    if (step === undefined) continue;
    steps.push(step);
    // Only running services that do not (re)start in this apply are reloaded (filtered below).
    // Unit files matter only to systemd: the own supervisor restarts on a changed spec itself.
    if (step.contentChanged && !(observed.servicesKind === 'own' && isUnitFile(f.dest))) {
      f.reload.forEach((s) => reload.add(s));
      f.restart.forEach((s) => restart.add(s));
    }
    if (step.contentChanged && isUnitFile(f.dest)) {
      unitsChanged = true;
      const unit = unitOfFile(f.dest);
      const svc = manifest.services.find((s) => s.unit === unit);
      if (svc !== undefined) restartForUnit.add(svc.name);
    }
  }

  // Right after the files, before a needs-certificate stop: the next apply would not see them change.
  if (observed.servicesKind === 'systemd' && unitsChanged) steps.push({ kind: 'daemon-reload' });
  // The rules only concern our own ports, so they may go in before anything listens there.
  const fw = observed.firewall;
  // Required (native TLS): without nft the step fails loudly rather than leave the NB open.
  if (fw !== undefined && (fw.available || manifest.firewallRequired === true) && (!fw.loaded || steps.some((s) => s.kind === 'file' && s.dest === fw.file && s.contentChanged))) {
    steps.push({ kind: 'firewall', file: fw.file });
  }
  const la = observed.localAccess;
  if (la !== undefined && (!la.loaded || steps.some((s) => s.kind === 'file' && s.dest === la.file && s.contentChanged))) {
    steps.push({ kind: 'firewall', file: la.file });
  }

  const cert = observed.certificate;
  if (!cert.keyPresent) steps.push({ kind: 'key' });
  if (cert.given) {
    steps.push(cert.rotateKey === true ? { kind: 'install-certificate', rotateKey: true } : { kind: 'install-certificate' });
    // A renewed certificate on a running host: the TLS daemons pick it up by reload.
    manifest.services.filter((s) => s.needsCertificate).forEach((s) => reload.add(s.name));
  } else if (cert.verdict !== 'ok') {
    if (!cert.keyPresent || !cert.csrCurrent) steps.push({ kind: 'csr' });
    steps.push({ kind: 'needs-certificate' });
    return steps;
  } else if (cert.renewal !== undefined) {
    const r = cert.renewal;
    if (!r.pendingKeyPresent) steps.push({ kind: 'renewal-key' });
    if (!r.pendingKeyPresent || !r.csrCurrent) steps.push({ kind: 'renewal-csr' });
    steps.push({ kind: 'renewal-requested', reason: r.reason });
  }

  for (const db of manifest.standaloneDbs) {
    const state = observed.dbs.get(db.dbFile) ?? 'missing';
    if (state === 'missing') steps.push({ kind: 'db-create', db });
    else if (state === 'needs-conversion') steps.push({ kind: 'db-convert', db });
  }
  const createdCluster = manifest.raft.some((r) => r.bootstrap && (observed.dbs.get(r.dbFile) ?? 'missing') === 'missing');
  for (const db of manifest.raft) {
    if ((observed.dbs.get(db.dbFile) ?? 'missing') !== 'missing') continue;
    steps.push(db.bootstrap ? { kind: 'raft-create', db } : { kind: 'raft-join', db });
  }

  if (observed.servicesKind === 'systemd') {
    if (observed.distroUnits.length > 0) steps.push({ kind: 'disable-distro-units', units: observed.distroUnits });
  }

  const converted = new Set(steps.flatMap((s) => (s.kind === 'db-convert' ? [s.db.service] : [])));
  const byStage = (stage: 0 | 1) => manifest.services.filter((s) => s.stage === stage);
  const startOf = (list: BundleService[]) => list.filter((s) => observed.services.get(s.name)?.running !== true || converted.has(s.name)).map((s) => s.name);
  const changedSpec = (list: BundleService[]) =>
    list
      .filter((s) => {
        const o = observed.services.get(s.name);
        if (o?.running !== true || converted.has(s.name)) return false;
        return observed.servicesKind === 'own' ? o.hash !== serviceHash(s) : restartForUnit.has(s.name);
      })
      .map((s) => s.name);
  const start0 = startOf(byStage(0));
  const restart0 = changedSpec(byStage(0));
  if (start0.length > 0 || restart0.length > 0 || observed.unlisted.length > 0) {
    steps.push({ kind: 'services-stage0', start: start0, restart: restart0, stop: [...observed.unlisted] });
  }

  if (manifest.ovs !== undefined) {
    const ovs = manifest.ovs;
    const have = observed.ovs;
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(ovs.externalIds)) if (have?.externalIds[k] !== v) set[k] = v;
    const bridges: string[] = [];
    const wantBridges = [{ name: ovs.integrationBridge, dp: ovs.datapath, fail: 'secure', port: undefined as string | undefined }];
    if (ovs.underlay !== undefined) wantBridges.push({ name: ovs.underlay.bridge, dp: 'netdev', fail: '', port: ovs.underlay.interface });
    for (const b of wantBridges) {
      const hb = have?.bridges.get(b.name);
      const dp = hb?.datapathType === '' ? 'system' : hb?.datapathType;
      if (hb === undefined || dp !== b.dp || (b.fail !== '' && hb.failMode !== b.fail) || (b.port !== undefined && !hb.ports.includes(b.port))) bridges.push(b.name);
    }
    if (have === undefined || !have.initialized || Object.keys(set).length > 0 || bridges.length > 0) steps.push({ kind: 'ovs', set, bridges });
  }

  if (manifest.initCommands.length > 0 && (!observed.initialized || createdCluster)) {
    steps.push({ kind: 'init-commands', commands: manifest.initCommands });
  }

  const start1 = startOf(byStage(1));
  const restart1 = changedSpec(byStage(1));
  if (start1.length > 0 || restart1.length > 0) steps.push({ kind: 'services-stage1', start: start1, restart: restart1 });

  const u = manifest.ovs?.underlay;
  if (u !== undefined) {
    const o = observed.underlay;
    const done = o !== undefined && o.recordedCidr !== undefined && o.bridgeAddrs.includes(o.recordedCidr) && o.bridgeUp && !o.nicAddrs.includes(o.recordedCidr);
    if (!done) steps.push({ kind: 'underlay', bridge: u.bridge, nic: u.interface, ip: u.ip });
  }

  // Reload or restart what changed files belong to, unless it (re)starts in this apply anyway.
  const starting = new Set(steps.flatMap((s) => (s.kind === 'services-stage0' || s.kind === 'services-stage1' ? [...s.start, ...s.restart] : [])));
  const running = (n: string): boolean => observed.services.get(n)?.running === true && !starting.has(n);
  const restarts = new Set([...restart, ...restartForUnit].filter(running));
  for (const name of [...reload].filter(running)) {
    if (restarts.has(name)) continue;
    const svc = manifest.services.find((s) => s.name === name);
    if (svc?.reloadSignal !== undefined) steps.push({ kind: 'reload', service: name });
    else restarts.add(name);
  }
  if (restarts.size > 0) steps.push({ kind: 'restart', services: [...restarts].filter((n) => manifest.services.some((s) => s.name === n)) });
  return steps;
}

/** What each step changes, as the report lists it. */
export function changesOf(step: ApplyStep, manifest: BundleManifest): Change[] {
  switch (step.kind) {
    case 'packages':
      return step.packages.map((p) => ({ kind: 'package', target: p, action: 'install' }));
    case 'image-load':
      return step.images.map((ref) => ({ kind: 'image', target: ref, action: 'load' }));
    case 'mkdir':
      return [{ kind: 'file', target: step.path, action: 'mkdir' }];
    case 'file':
      return [{ kind: 'file', target: step.dest, action: step.action }];
    case 'key':
      return [{ kind: 'certificate', target: manifest.certificate.key, action: 'generate-key' }];
    case 'csr':
      return [{ kind: 'certificate', target: manifest.certificate.csr, action: 'create-csr' }];
    case 'install-certificate':
      return [
        { kind: 'certificate', target: manifest.certificate.cert, action: 'install' },
        ...(step.rotateKey === true ? [{ kind: 'certificate' as const, target: manifest.certificate.key, action: 'rotate-key' }] : []),
      ];
    case 'renewal-key':
      return [{ kind: 'certificate', target: hostPaths().pki.keyNext, action: 'generate-key' }];
    case 'renewal-csr':
      return [{ kind: 'certificate', target: manifest.certificate.csr, action: 'create-csr' }];
    case 'renewal-requested':
      return [{ kind: 'certificate', target: manifest.certificate.cert, action: 'renewal-requested' }];
    case 'needs-certificate':
      return [];
    case 'db-create':
      return [{ kind: 'db', target: step.db.dbFile, action: 'create' }];
    case 'db-convert':
      return [{ kind: 'db', target: step.db.dbFile, action: 'convert' }];
    case 'raft-create':
      return [{ kind: 'raft', target: `${step.db.name} ${step.db.dbFile}`, action: 'create-cluster' }];
    case 'raft-join':
      return [{ kind: 'raft', target: `${step.db.name} ${step.db.dbFile}`, action: 'join-cluster' }];
    case 'daemon-reload':
      return [{ kind: 'service', target: 'systemd', action: 'daemon-reload' }];
    case 'firewall':
      return [{ kind: 'firewall', target: step.file, action: 'load' }];
    case 'disable-distro-units':
      return step.units.map((u) => ({ kind: 'service', target: u, action: 'disable' }));
    case 'services-stage0':
      return [
        ...step.stop.map((n) => ({ kind: 'service' as const, target: n, action: 'stop' })),
        ...step.start.map((n) => ({ kind: 'service' as const, target: n, action: 'start' })),
        ...step.restart.map((n) => ({ kind: 'service' as const, target: n, action: 'restart' })),
      ];
    case 'services-stage1':
      return [
        ...step.start.map((n) => ({ kind: 'service' as const, target: n, action: 'start' })),
        ...step.restart.map((n) => ({ kind: 'service' as const, target: n, action: 'restart' })),
      ];
    case 'ovs':
      // The executor reports what it really changed; the plan's view for a dry run:
      return [
        ...step.bridges.map((b) => ({ kind: 'ovs' as const, target: `bridge ${b}`, action: 'ensure' })),
        ...Object.keys(step.set).map((k) => ({ kind: 'ovs' as const, target: `external_ids:${k}`, action: 'set' })),
      ];
    case 'init-commands':
      return step.commands.map((c) => ({ kind: 'raft' as const, target: c.join(' '), action: 'run' }));
    case 'underlay':
      return [{ kind: 'underlay', target: `${step.nic} -> ${step.bridge}`, action: 'move-address' }];
    case 'reload':
      return [{ kind: 'service', target: step.service, action: 'reload' }];
    case 'restart':
      return step.services.map((n) => ({ kind: 'service', target: n, action: 'restart' }));
  }
}

/** One line per step for `--dry-run` and logs. */
export function describeStep(step: ApplyStep): string {
  switch (step.kind) {
    case 'packages':
      return `install packages (${step.manager}): ${step.packages.join(' ')}`;
    case 'image-load':
      return `load image ${step.images.join(' ')} (${step.id.slice(0, 12)}) from ${step.file}`;
    case 'mkdir':
      return `create directory ${step.path} (mode ${step.mode.toString(8)})`;
    case 'file':
      return `${step.action === 'metadata' ? 'fix owner/mode of' : step.action} ${step.dest}`;
    case 'key':
      return 'generate the host key';
    case 'csr':
      return 'write a certificate signing request';
    case 'install-certificate':
      return step.rotateKey === true ? 'install the renewed certificate and move its key into place' : 'install the signed certificate';
    case 'renewal-key':
      return 'generate the next host key (the current one keeps serving)';
    case 'renewal-csr':
      return 'write a certificate signing request for the next key';
    case 'renewal-requested':
      return step.reason === 'forced' ? 'request a new certificate (--renew-certificate)' : 'request a new certificate (inside the renewal window)';
    case 'needs-certificate':
      return 'stop: the host needs a signed certificate';
    case 'db-create':
      return `ovsdb-tool create ${step.db.dbFile} ${step.db.schema}`;
    case 'db-convert':
      return `ovsdb-tool convert ${step.db.dbFile} ${step.db.schema}`;
    case 'raft-create':
      return (
        `ovsdb-tool create-cluster ${step.db.dbFile} ${step.db.schema} ${step.db.localAddress}` +
        (step.db.name === 'OVN_Southbound' ? ' (with its SB_Global row)' : '') +
        (step.db.peerRemotes.length > 0 ? ` (unless a peer, ${step.db.peerRemotes.join(' or ')}, already serves the cluster: then join it)` : '')
      );
    case 'raft-join':
      return `ovsdb-tool join-cluster ${step.db.dbFile} ${step.db.name} ${step.db.localAddress} ${step.db.peers.join(' ')}`;
    case 'daemon-reload':
      return commandLine(['daemon-reload']);
    case 'firewall':
      return `nft -f ${step.file}`;
    case 'disable-distro-units':
      return commandLine(['disable', '--now', ...step.units]);
    case 'services-stage0':
      return `services stage 0: start [${step.start.join(', ')}] restart [${step.restart.join(', ')}] stop [${step.stop.join(', ')}]`;
    case 'services-stage1':
      return `services stage 1: start [${step.start.join(', ')}] restart [${step.restart.join(', ')}]`;
    case 'ovs':
      return `configure OVS: bridges [${step.bridges.join(', ')}] external_ids [${Object.entries(step.set).map(([k, v]) => `${k}=${v}`).join(', ')}]`;
    case 'init-commands':
      return `initialise the cluster: ${step.commands.map((c) => c.join(' ')).join('; ')}`;
    case 'underlay':
      return `move the address of ${step.nic} to ${step.bridge}`;
    case 'reload':
      return `reload ${step.service}`;
    case 'restart':
      return `restart ${step.services.join(', ')}`;
  }
}

