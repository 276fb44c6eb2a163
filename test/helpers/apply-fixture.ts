/**
 * Hand-built bundles for apply's tests (independent of `render`): a central that is also a
 * worker, written as render lays a bundle out (manifest.json + files/<dest>) with real checksums,
 * plus a recording service manager and a runner that runs the real ovsdb-tool and answers
 * ovs-vsctl from a small in-memory Open_vSwitch row.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BundleManifest, BundleManifestInput, BundleService } from '../../src/bundle/manifest.js';
import { hostPaths, ovsdbSchemas } from '../../src/paths.js';
import { BINARIES } from '../../src/render/services.js';
import { RecordingRunner, ZxRunner, type RunOptions, type RunResult, type Runner } from '../../src/runner.js';
import type { HostServices, ObservedService } from '../../src/apply/services.js';
import type { ServiceSpec } from '../../src/supervisor/types.js';
import { serviceHash } from '../../src/supervisor/spec.js';
import { specOf } from '../../src/apply/services.js';
import type { ServiceStatus } from '../../src/supervisor/types.js';
import { SIGNATURE_FILE, signManifest } from '../../src/bundle/signature.js';

const hp = hostPaths();

export const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

export interface FixtureFile {
  dest: string;
  content: string;
  mode?: number;
  reload?: string[];
  restart?: string[];
}

let fixtureCa: { key: KeyObject; certPem: string } | undefined;

/**
 * The CA that signs fixture bundles (one per test process, made by the real openssl): apply's
 * tests pin it with `trustCa: fixtureTrust()`, as `deploy` passes `--trust-ca`.
 */
export function fixtureSigner(): { key: KeyObject; certPem: string } {
  if (fixtureCa === undefined) {
    const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=apply-fixture-ca', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', '-', '-out', '-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const keyPem = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----/.exec(pem)?.[0] ?? '';
    const certPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0] ?? '';
    fixtureCa = { key: createPrivateKey(keyPem), certPem: `${certPem}\n` };
  }
  return fixtureCa;
}

export const fixtureTrusted = (): X509Certificate[] => [new X509Certificate(fixtureSigner().certPem)];

export const fixtureTrust = (): { pem: string; from: string } => ({ pem: fixtureSigner().certPem, from: 'fixture-ca.pem' });

/** Signs (or re-signs, after a test edited it) the bundle's manifest.json as render does. */
export function signBundle(dir: string, signer = fixtureSigner()): void {
  const raw = readFileSync(path.join(dir, 'manifest.json'));
  writeFileSync(path.join(dir, SIGNATURE_FILE), signManifest(raw, signer.key, signer.certPem));
}

/** The distribution directories the fixture's daemons name, as render moves them below a root. */
const DIST = /(^|[=:])(\/(?:etc\/ovn-deploy|etc\/openvswitch|var\/(?:lib|run|log)\/(?:ovn-deploy|ovn|openvswitch))(?=\/|$))/g;

/** The manifest as render makes it for `root`: what daemons and tools read verbatim names paths below it. */
function rendered(manifest: Omit<BundleManifestInput, 'files'>, root: string): Omit<BundleManifestInput, 'files'> {
  if (root === '/') return manifest;
  const re = (x: string): string => x.replace(DIST, (_m, pre: string, p: string) => `${pre}${path.join(root, p)}`);
  return {
    ...manifest,
    root,
    services: manifest.services.map((s) => ({
      ...s,
      argv: s.argv.map(re),
      ...(s.env === undefined ? {} : { env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, re(v)])) }),
      logFile: re(s.logFile),
    })),
    ...(manifest.initCommands === undefined ? {} : { initCommands: manifest.initCommands.map((c) => c.map(re)) }),
  };
}

/**
 * Writes a signed bundle directory, rendered for `root` (the --root apply gets); returns the
 * manifest as written (checksums filled in).
 */
export function writeBundle(dir: string, manifestFor: Omit<BundleManifestInput, 'files'>, files: FixtureFile[], root = '/'): BundleManifestInput {
  const manifest = rendered(manifestFor, root);
  mkdirSync(dir, { recursive: true });
  const entries = files.map((f) => {
    const source = path.join('files', f.dest.replace(/^\/+/, ''));
    mkdirSync(path.dirname(path.join(dir, source)), { recursive: true });
    writeFileSync(path.join(dir, source), f.content);
    return { source, dest: f.dest, mode: f.mode ?? 0o644, owner: 'root', group: 'root', sha256: sha256(f.content), reload: f.reload ?? [], restart: f.restart ?? [] };
  });
  const full = { ...manifest, files: entries };
  writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(full, null, 2)}\n`);
  signBundle(dir);
  return full;
}

const svc = (name: string, stage: 0 | 1, argv: string[], more: Partial<BundleService> = {}): BundleService => ({
  name,
  argv,
  env: {},
  after: [],
  logFile: hp.serviceLog(name),
  unit: `ovn-deploy-${name}.service`,
  needsCertificate: false,
  stage,
  unixListeners: [],
  waitFor: [],
  ...more,
});

/** A single central + worker ("one-box"): 1-member RAFT clusters, stunnel server, chassis. */
/** `stunnelLog`: the stunnel config's `output` (where a reload is confirmed), for tests that reload it. */
export function oneBoxManifest(host = 'box1', caBundlePem = '', crlPem = '', opts: { stunnelLog?: string } = {}): { manifest: Omit<BundleManifestInput, 'files'>; files: FixtureFile[] } {
  const services: BundleService[] = [
    svc('ovn-nb-ovsdb', 0, ['/usr/sbin/ovsdb-server', hp.ovn.nbDb, `--remote=punix:${hp.ovn.nbSock}`]),
    svc('ovn-sb-ovsdb', 0, ['/usr/sbin/ovsdb-server', hp.ovn.sbDb, `--remote=punix:${hp.ovn.sbSock}`]),
    svc('stunnel-server', 0, ['/usr/bin/stunnel4', path.join(hp.stunnelDir, 'stunnel-server.conf')], { needsCertificate: true, reloadSignal: 'SIGHUP' }),
    svc('ovs-ovsdb', 0, ['/usr/sbin/ovsdb-server', hp.ovs.confDb, `--remote=punix:${hp.ovs.dbSock}`]),
    svc('ovn-northd', 1, ['/usr/bin/ovn-northd'], { after: ['ovn-nb-ovsdb', 'ovn-sb-ovsdb'] }),
    svc('ovs-vswitchd', 1, ['/usr/sbin/ovs-vswitchd'], { after: ['ovs-ovsdb'] }),
    svc('ovn-controller', 1, ['/usr/bin/ovn-controller'], { after: ['ovs-vswitchd'] }),
  ];
  const manifest: Omit<BundleManifestInput, 'files'> = {
    format: 1,
    site: 'lab',
    host,
    roles: ['central', 'worker'],
    generator: 'test',
    packages: { apt: ['ovn-central', 'ovn-host', 'stunnel4'], dnf: ['ovn-central', 'ovn-host', 'stunnel'] },
    certificate: {
      role: 'central',
      name: host,
      sans: [host, '192.0.2.10'],
      keyBits: 2048,
      key: hp.pki.key,
      csr: hp.pki.csr,
      cert: hp.pki.cert,
      caBundle: hp.pki.caBundle,
      crl: hp.pki.crl,
    },
    services,
    ovs: {
      datapath: 'netdev',
      integrationBridge: 'br-int',
      externalIds: { 'system-id': host, 'ovn-remote': 'tcp:127.1.2.3:6642', 'ovn-encap-type': 'geneve', 'ovn-encap-ip': '192.0.2.10', 'ovn-bridge': 'br-int' },
      dbSock: hp.ovs.dbSock,
    },
    raft: [
      { name: 'OVN_Northbound', service: 'ovn-nb-ovsdb', dbFile: hp.ovn.nbDb, schema: ovsdbSchemas.nb, ctl: hp.ovn.nbCtl, localAddress: 'tcp:127.1.2.3:16643', peers: [], bootstrap: true },
      { name: 'OVN_Southbound', service: 'ovn-sb-ovsdb', dbFile: hp.ovn.sbDb, schema: ovsdbSchemas.sb, ctl: hp.ovn.sbCtl, localAddress: 'tcp:127.1.2.3:16644', peers: [], bootstrap: true },
    ],
    standaloneDbs: [{ service: 'ovs-ovsdb', dbFile: hp.ovs.confDb, schema: ovsdbSchemas.vswitch }],
    initCommands: [
      [BINARIES.nbctl, `--db=unix:${hp.ovn.nbSock}`, 'init'],
      [BINARIES.sbctl, `--db=unix:${hp.ovn.sbSock}`, 'init'],
    ],
    health: [
      { kind: 'service-running', service: 'ovn-northd' },
      { kind: 'raft-member', db: 'OVN_Northbound', ctl: hp.ovn.nbCtl },
    ],
    firewall: [],
  };
  const files: FixtureFile[] = [
    { dest: hp.pki.caBundle, content: caBundlePem || '# no CA\n', reload: ['stunnel-server'] },
    { dest: hp.pki.crl, content: crlPem || '# no CRL\n', reload: ['stunnel-server'] },
    { dest: path.join(hp.stunnelDir, 'stunnel-server.conf'), content: `; generated by ovn-deploy, do not edit\nforeground = yes\n${opts.stunnelLog === undefined ? '' : `output = ${opts.stunnelLog}\n`}`, reload: ['stunnel-server'] },
    { dest: '/etc/systemd/system/ovn-deploy-ovn-northd.service', content: '[Service]\nExecStart=/usr/bin/ovn-northd\n', restart: ['ovn-northd'] },
  ];
  return { manifest, files };
}

/** A service manager that only records (the real ones are exercised by apply.slow.test.ts). */
export class RecordedServices implements HostServices {
  readonly calls: string[] = [];
  readonly state = new Map<string, ObservedService & { spec?: string }>();
  private nextPid = 1000;
  constructor(readonly kind: 'own' | 'systemd' = 'own') {}

  spec(s: BundleService): ServiceSpec {
    return specOf(s);
  }

  async observe(manifest: BundleManifest): Promise<{ services: Map<string, ObservedService>; unlisted: string[] }> {
    const listed = new Set(manifest.services.map((s) => s.name));
    return { services: new Map(this.state), unlisted: [...this.state.keys()].filter((n) => !listed.has(n) && this.state.get(n)?.running === true) };
  }
  private run(list: BundleService[]): void {
    for (const s of list) {
      const hash = serviceHash(this.spec(s));
      const cur = this.state.get(s.name);
      if (cur?.running === true && cur.hash === hash) continue;
      this.state.set(s.name, { running: true, hash, pid: this.nextPid++ });
    }
  }
  warmUps = 0;
  warmUp(): void {
    this.warmUps++;
  }
  async ensureStage0(manifest: BundleManifest, unlisted: readonly string[]): Promise<void> {
    this.calls.push(`stage0 stop=[${unlisted.join(',')}]`);
    for (const n of unlisted) this.state.delete(n);
    this.run(manifest.services.filter((s) => s.stage === 0));
  }
  async ensureAll(manifest: BundleManifest): Promise<void> {
    this.calls.push('all');
    this.run(manifest.services);
  }
  async startEarly(manifest: BundleManifest, names: readonly string[]): Promise<void> {
    this.calls.push(`early ${names.join(',')}`);
    this.run(manifest.services.filter((s) => names.includes(s.name)));
  }
  async restart(names: readonly string[], manifest: BundleManifest): Promise<void> {
    this.calls.push(`restart ${names.join(',')}`);
    for (const n of names) this.state.delete(n);
    this.run(manifest.services);
  }
  async reload(service: BundleService): Promise<void> {
    this.calls.push(`reload ${service.name}`);
  }
  async stop(names: readonly string[]): Promise<void> {
    this.calls.push(`stop ${names.join(',')}`);
    for (const n of names) this.state.delete(n);
  }
  async status(): Promise<ServiceStatus[]> {
    return [...this.state].map(([name, s]) => ({ name, running: s.running, ...(s.pid === undefined ? {} : { pid: s.pid }), restarts: 0 }));
  }
  async daemonReload(): Promise<void> {
    this.calls.push('daemon-reload');
  }
  async disableUnits(units: readonly string[]): Promise<void> {
    this.calls.push(`disable ${units.join(',')}`);
  }
  async retire(names: readonly string[]): Promise<void> {
    this.calls.push(`retire ${names.join(',')}`);
    for (const n of names) this.state.delete(n);
  }
}

/**
 * Records every call; runs the real ovsdb-tool (database files are local and fast to make);
 * answers ovs-vsctl from an in-memory Open_vSwitch row and bridges, dpkg-query as "installed"
 * for `installed`, and cluster/status as a leader.
 */
export class FixtureRunner implements Runner {
  readonly recorder: RecordingRunner;
  readonly externalIds = new Map<string, string>();
  readonly bridges = new Map<string, { dp: string; fail: string; ports: string[] }>();
  initialized = false;
  /** systemd units: ActiveState, UnitFileState, MainPID (answers `systemctl show/enable/restart`). */
  readonly units = new Map<string, { active: string; enabled: string; pid: number }>();
  /**
   * stunnel's side of `systemctl reload UNIT` (no stunnel runs here): the line it logs, appended to
   * the log file, as a real stunnel writes it to its `output`.
   */
  readonly stunnelLogs = new Map<string, { file: string; line: string }>();
  private nextPid = 5000;
  constructor(readonly installed: Set<string> = new Set()) {
    this.recorder = new RecordingRunner((argv) => this.respond(argv));
  }
  get calls() {
    return this.recorder.calls;
  }
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (argv[0] === 'ovsdb-tool') {
      this.recorder.calls.push({ argv: [...argv], opts });
      return new ZxRunner().run(argv, opts);
    }
    return this.recorder.run(argv, opts);
  }
  private respond(argv: string[]): Partial<RunResult> {
    const [tool] = argv;
    if (tool === 'dpkg-query') {
      if (argv[1] === '--version') return { stdout: 'dpkg-query 1.21\n' };
      const pkgs = argv.slice(3);
      return { stdout: pkgs.filter((p) => this.installed.has(p)).map((p) => `${p} installed\n`).join('') };
    }
    if (tool === 'ovs-appctl' && argv.includes('cluster/status')) {
      // A leader's output captured from a real cluster.
      return { stdout: readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'cluster-status', 'nb-3-a.txt'), 'utf8') };
    }
    if (tool === 'systemctl') return this.systemctl(argv.slice(1));
    if (tool === 'ovs-vsctl') return this.vsctl(argv.slice(1).filter((a) => !a.startsWith('--db=') && !a.startsWith('--timeout=') && a !== '--no-wait'));
    return {};
  }
  private systemctl(args: string[]): Partial<RunResult> {
    const [verb, ...rest] = args;
    const names = rest.filter((a) => !a.startsWith('--'));
    const unit = (n: string) => this.units.get(n) ?? { active: 'inactive', enabled: 'disabled', pid: 0 };
    if (verb === 'show') {
      return { stdout: names.map((n) => { const u = unit(n); return `Id=${n}\nActiveState=${u.active}\nUnitFileState=${u.enabled}\nMainPID=${u.pid}\nNRestarts=0\n`; }).join('\n') };
    }
    if (verb === 'reload') {
      for (const n of names) {
        const log = this.stunnelLogs.get(n);
        if (log !== undefined) appendFileSync(log.file, `2026.01.01 00:00:00 LOG5[ui]: ${log.line}\n`);
      }
    }
    for (const n of names) {
      const u = unit(n);
      if (verb === 'enable' && rest.includes('--now')) this.units.set(n, { active: 'active', enabled: 'enabled', pid: u.active === 'active' ? u.pid : this.nextPid++ });
      if (verb === 'disable') this.units.set(n, { active: rest.includes('--now') ? 'inactive' : u.active, enabled: 'disabled', pid: rest.includes('--now') ? 0 : u.pid });
      if (verb === 'restart') this.units.set(n, { ...u, active: 'active', pid: this.nextPid++ });
      if (verb === 'stop') this.units.set(n, { ...u, active: 'inactive', pid: 0 });
    }
    return {};
  }

  private vsctl(args: string[]): Partial<RunResult> {
    const table = (headings: string[], data: unknown[][]) => ({ stdout: JSON.stringify({ headings, data }) });
    const listAt = args.indexOf('list');
    if (listAt >= 0) {
      const what = args[listAt + 1];
      if (what === 'Open_vSwitch') {
        if (!this.initialized) return table(['external_ids'], []);
        return table(['external_ids'], [[['map', [...this.externalIds]]]]);
      }
      if (what === 'Bridge') {
        return table(['name', 'datapath_type', 'fail_mode', 'ports'], [...this.bridges].map(([n, b]) => [n, b.dp, b.fail === '' ? ['set', []] : b.fail, ['set', b.ports.map((p) => ['uuid', `u-${p}`])]]));
      }
      if (what === 'Port') {
        const ports = [...this.bridges.values()].flatMap((b) => b.ports);
        return table(['_uuid', 'name'], ports.map((p) => [['uuid', `u-${p}`], p]));
      }
      return table([], []);
    }
    // Transactions: `--`-separated commands.
    const cmds: string[][] = [[]];
    for (const a of args) {
      if (a === '--') cmds.push([]);
      else cmds[cmds.length - 1]?.push(a);
    }
    for (const c of cmds.filter((x) => x.length > 0)) {
      const words = c.filter((w) => w !== '--may-exist');
      if (words[0] === 'init') this.initialized = true;
      if (words[0] === 'add-br' && words[1] !== undefined && !this.bridges.has(words[1])) this.bridges.set(words[1], { dp: '', fail: '', ports: [words[1]] });
      if (words[0] === 'add-port' && words[1] !== undefined && words[2] !== undefined) this.bridges.get(words[1])?.ports.push(words[2]);
      if (words[0] === 'set' && words[1] === 'Bridge' && words[2] !== undefined) {
        const b = this.bridges.get(words[2]);
        for (const kv of words.slice(3)) {
          const [k, v = ''] = kv.split('=');
          if (b !== undefined && k === 'fail-mode') b.fail = v;
          if (b !== undefined && k === 'datapath_type') b.dp = v;
        }
      }
      if (words[0] === 'set' && words[1] === 'Open_vSwitch') {
        for (const kv of words.slice(3)) {
          const m = /^external_ids:([^=]+)=(.*)$/.exec(kv);
          if (m?.[1] !== undefined && m[2] !== undefined) this.externalIds.set(m[1], JSON.parse(m[2]) as string);
        }
      }
    }
    return {};
  }
}
