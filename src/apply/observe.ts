/**
 * The read-only half of apply: what the host looks like now, in the terms the plan compares
 * against. Only queries (marked mutates: false) run here, so a dry run observes for real.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, lstatSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import type { BundleManifest } from '../bundle/manifest.js';
import { ExitError, inputError } from '../errors.js';
import { readIfExists } from '../fsx.js';
import { hostPaths, hostRenderedPaths, type HostPaths } from '../paths.js';
import { readVerifiedCsr } from '../pki/csr.js';
import { SERVICE } from '../render/services.js';
import type { Runner } from '../runner.js';
import { Podman, podmanEnv } from '../packaging/podman.js';
import { Ip } from '../tools/netns.js';
import { parseOvsdbTable, str, strs } from '../tools/ovsdb-json.js';
import { insideRenewalWindow, judgeCertificate, pemMatchesKey, renewalWouldExtend } from './certificate.js';
import type { VerifiedBundle } from './bundle.js';
import { requiredDirs, type Observed, type ObservedFile, type ObservedOvs, type ObservedUnderlay } from './plan.js';
import type { HostServices } from './services.js';
import { activeDistroUnits } from './services.js';
import { readApplied, readPending, readUnderlay } from './state.js';

export interface HostContext {
  root: string;
  paths: HostPaths;
  runner: Runner;
  services: HostServices;
  /** A host path (absolute, as the manifest writes it) under --root. */
  at(hostPath: string): string;
  skipPackages: boolean;
  /** A checked `--certificate` PEM to install. */
  givenCertificate?: string;
  /** It belongs to the renewal's pending key (hostPaths().pki.keyNext), which moves into place. */
  givenForPendingKey?: boolean;
  /** `--renew-certificate`: request a certificate for a new key even outside the renewal window. */
  renewCertificate?: boolean;
  /** `--firewall`: load the bundle's nftables file (off by default: see apply's --help). */
  loadFirewall?: boolean;
  /** `--image-archive`: a checked `<image id>.tar` that deploy shipped for the bundle's images. */
  imageArchive?: { file: string; id: string };
}

export function rootedAt(root: string): (hostPath: string) => string {
  return (hostPath) => (root === '/' ? hostPath : path.join(root, hostPath));
}

export async function observeHost(ctx: HostContext, bundle: VerifiedBundle): Promise<Observed> {
  const m = bundle.manifest;
  const applied = await readApplied(ctx.paths.applied).catch(() => undefined);
  const { services, unlisted } = await ctx.services.observe(m, applied?.services ?? []);
  const [packages, files, dbs, ovs] = await Promise.all([
    ctx.skipPackages ? Promise.resolve(undefined) : observePackages(ctx.runner, m),
    observeFiles(ctx, m),
    observeDbs(ctx, m),
    observeOvs(ctx, m),
  ]);
  // Host paths (as the report shows them); checked under --root.
  const runsAgent = m.services.some((s) => s.name === SERVICE.metadataAgent);
  const missingDirs = requiredDirs(hostPaths('/'), m.ovs !== undefined || m.standaloneDbs.length > 0, runsAgent ? hostRenderedPaths('/').metadata : undefined).filter((d) => dirNeedsStep(ctx.at(d.path), d));
  return {
    ...(packages === undefined ? {} : { packages }),
    missingDirs,
    files,
    users: readIdFile(ctx.at('/etc/passwd')),
    groups: readIdFile(ctx.at('/etc/group')),
    certificate: await observeCertificate(ctx, bundle),
    dbs,
    services,
    unlisted,
    ...(ovs === undefined ? {} : { ovs }),
    ...(m.ovs?.underlay === undefined ? {} : { underlay: await observeUnderlay(ctx, m.ovs.underlay) }),
    pending: await readPending(ctx.paths.applyPending),
    initialized: applied?.initialized === true,
    distroUnits: ctx.services.kind === 'systemd' ? await activeDistroUnits(ctx.runner) : [],
    ...(await observeFirewall(ctx, bundle)),
    ...(m.images === undefined ? {} : { images: await observeImages(ctx, m.images) }),
    servicesKind: ctx.services.kind,
  };
}

/** The host's image ID of each image (undefined: no such image, or no podman yet). */
async function observeImages(ctx: HostContext, images: readonly string[]): Promise<Observed['images']> {
  const podman = new Podman(ctx.runner, podmanEnv());
  const have = new Map<string, string | undefined>();
  for (const ref of images) have.set(ref, await podman.findImageId(ref).catch(() => undefined));
  return { have, ...(ctx.imageArchive === undefined ? {} : { archive: ctx.imageArchive }) };
}

/** name -> id from /etc/passwd or /etc/group of the root (this machine's when the root has none). */
export function readIdFile(file: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(existsSync(file) ? file : path.join('/etc', path.basename(file)), 'utf8');
  } catch {
    return new Map();
  }
  const ids = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name !== undefined && name !== '' && id !== undefined && /^\d+$/.test(id)) ids.set(name, Number(id));
  }
  return ids;
}

export async function observePackages(runner: Runner, m: BundleManifest): Promise<{ manager: 'apt' | 'dnf'; missing: string[] }> {
  const dpkg = await runner.run(['dpkg-query', '--version'], { mutates: false, allowFailure: true });
  if (dpkg.exitCode === 0) {
    if (m.packages.apt.length === 0) return { manager: 'apt', missing: [] };
    const r = await runner.run(['dpkg-query', '-W', '-f=${Package} ${db:Status-Status}\\n', ...m.packages.apt], { mutates: false, allowFailure: true });
    const installed = new Set(
      r.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([, status]) => status === 'installed')
        .map(([name]) => (name ?? '').replace(/:.*$/, '')),
    );
    return { manager: 'apt', missing: m.packages.apt.filter((p) => !installed.has(p)) };
  }
  const missing: string[] = [];
  for (const p of m.packages.dnf) {
    const r = await runner.run(['rpm', '-q', '--quiet', p], { mutates: false, allowFailure: true });
    if (r.exitCode !== 0) missing.push(p);
  }
  return { manager: 'dnf', missing };
}

async function observeFiles(ctx: HostContext, m: BundleManifest): Promise<Map<string, ObservedFile>> {
  const files = new Map<string, ObservedFile>();
  for (const f of m.files) {
    const target = ctx.at(f.dest);
    const content = await readIfExists(target);
    if (content === undefined) continue;
    const st = await fs.stat(target);
    files.set(f.dest, { sha256: createHash('sha256').update(content).digest('hex'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
  return files;
}

/**
 * A key or certificate of the host as it is, undefined when absent. A symlink, a directory or
 * anything but a regular file there is refused (exit 2, before apply changes anything): apply
 * would read a key through it, and a rename over it leaves whatever it points at behind.
 */
async function readTlsFile(file: string, field: string): Promise<string | undefined> {
  const st = await fs.lstat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return undefined;
  if (!st.isFile()) {
    const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : 'not a regular file';
    throw inputError(`found ${what}; expected a regular file or nothing (apply never reads or replaces a key or certificate through one): move it away`, field, file);
  }
  return fs.readFile(file, 'utf8');
}

/** A key file apply cannot read as a private key is refused: it never replaces a key it did not create. */
function requirePrivateKey(pem: string | undefined, file: string, field: string): void {
  if (pem === undefined) return;
  try {
    createPrivateKey(pem);
  } catch {
    throw inputError('holds no private key; expected a PEM private key (apply never replaces a key it did not create): move it away, and apply makes a new one', field, file);
  }
}

async function observeCertificate(ctx: HostContext, bundle: VerifiedBundle): Promise<Observed['certificate']> {
  const req = bundle.manifest.certificate;
  const keyPem = await readTlsFile(ctx.at(req.key), 'certificate.key');
  requirePrivateKey(keyPem, ctx.at(req.key), 'certificate.key');
  const caPem = bundle.contents.get(req.caBundle)?.toString('utf8') ?? (await readIfExists(ctx.at(req.caBundle)))?.toString('utf8');
  const pendingKeyPem = await readTlsFile(ctx.paths.pki.keyNext, 'certificate.key (its pending next key)');
  requirePrivateKey(pendingKeyPem, ctx.paths.pki.keyNext, 'certificate.key (its pending next key)');
  const installedPem = await readTlsFile(ctx.at(req.cert), 'certificate.cert');
  const certPem = ctx.givenCertificate ?? installedPem;
  // An apply that stopped between installing a renewed certificate and moving its key: the
  // installed certificate belongs to the pending key, which still has to move into place.
  const interruptedRotation = pendingKeyPem !== undefined && pemMatchesKey(installedPem, pendingKeyPem) && !pemMatchesKey(installedPem, keyPem);
  const rotateKey = ctx.givenForPendingKey === true || interruptedRotation;
  const verdict = judgeCertificate(req, rotateKey ? pendingKeyPem : keyPem, certPem, caPem);
  let csrCurrent = false;
  const csrPem = await readTlsFile(ctx.at(req.csr), 'certificate.csr');
  if (keyPem !== undefined && csrPem !== undefined) {
    csrCurrent = csrMatches(csrPem, keyPem, req.name, req.sans);
  }
  // A given certificate is installed; an installed one that is fine needs nothing.
  const given = interruptedRotation || (ctx.givenCertificate !== undefined && !(certPem !== undefined && sameFile(ctx.at(req.cert), certPem)));
  let renewal: Observed['certificate']['renewal'];
  if (!given && verdict === 'ok' && (ctx.renewCertificate === true || (insideRenewalWindow(certPem, req.renewalWindowDays) && renewalWouldExtend(certPem, caPem)))) {
    renewal = {
      reason: ctx.renewCertificate === true ? 'forced' : 'window',
      pendingKeyPresent: pendingKeyPem !== undefined,
      // The CSR on disk already asks for the pending key: a repeated apply sends the same one.
      csrCurrent: pendingKeyPem !== undefined && csrPem !== undefined && csrMatches(csrPem, pendingKeyPem, req.name, req.sans),
    };
  }
  return { keyPresent: keyPem !== undefined, verdict, csrCurrent, given, ...(rotateKey && given ? { rotateKey: true } : {}), ...(renewal === undefined ? {} : { renewal }) };
}

function sameFile(file: string, pem: string): boolean {
  try {
    return readFileSync(file, 'utf8') === pem;
  } catch {
    return false;
  }
}

/** The CSR on disk belongs to this key and asks for exactly these names. */
export function csrMatches(csrPem: string, keyPem: string, name: string, sans: readonly string[]): boolean {
  try {
    const csr = readVerifiedCsr(csrPem, 'host.csr');
    if (csr.commonName !== name) return false;
    if (csrPublicKeyPem(csrPem) !== keyPublicPem(keyPem)) return false;
    return sameNames(csrSans(csrPem), sans);
  } catch {
    return false;
  }
}

function csrPublicKeyPem(csrPem: string): string {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  if (csr.publicKey === null) return '';
  return createPublicKey(forge.pki.publicKeyToPem(csr.publicKey)).export({ type: 'spki', format: 'pem' }).toString();
}
function keyPublicPem(keyPem: string): string {
  return createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
}
function csrSans(csrPem: string): string[] {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  const req = csr.getAttribute({ name: 'extensionRequest' }) as { extensions?: { name?: string; altNames?: { type: number; value?: string; ip?: string }[] }[] } | null;
  const san = req?.extensions?.find((e) => e.name === 'subjectAltName');
  return (san?.altNames ?? []).map((a) => (a.type === 7 ? (a.ip ?? '') : (a.value ?? '')));
}
function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = [...new Set(a.map((s) => s.toLowerCase()))].sort();
  const y = [...new Set(b.map((s) => s.toLowerCase()))].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function observeDbs(ctx: HostContext, m: BundleManifest): Promise<Map<string, 'missing' | 'present' | 'needs-conversion'>> {
  const dbs = new Map<string, 'missing' | 'present' | 'needs-conversion'>();
  for (const r of m.raft) {
    const present = existsSync(ctx.at(r.dbFile));
    dbs.set(r.dbFile, present ? 'present' : 'missing');
    if (present) await sameClusterAddress(ctx, r);
  }
  for (const d of m.standaloneDbs) {
    const file = ctx.at(d.dbFile);
    if (!existsSync(file)) {
      dbs.set(d.dbFile, 'missing');
      continue;
    }
    if (!existsSync(d.schema)) {
      dbs.set(d.dbFile, 'present');
      continue;
    }
    const r = await ctx.runner.run(['ovsdb-tool', 'needs-conversion', file, d.schema], { mutates: false, allowFailure: true, timeoutMs: 10_000 });
    dbs.set(d.dbFile, r.exitCode === 0 && r.stdout.trim() === 'yes' ? 'needs-conversion' : 'present');
  }
  return dbs;
}

/**
 * A cluster member keeps the address it was created or joined with: a bundle that asks for another
 * one (tls.mode switched between stunnel's tcp:L(C) and native's ssl:ADDRESS, or a central's
 * address changed in native mode) would start a server its peers know under another address.
 * Refused before anything changes.
 */
async function sameClusterAddress(ctx: HostContext, r: BundleManifest['raft'][number]): Promise<void> {
  const out = await ctx.runner.run(['ovsdb-tool', 'db-local-address', ctx.at(r.dbFile)], { mutates: false, allowFailure: true, timeoutMs: 10_000 });
  const has = out.stdout.trim();
  if (out.exitCode !== 0 || has === '' || has === r.localAddress) return;
  throw new ExitError(
    `${r.name}: ${r.dbFile} is a cluster member at ${has}, but the bundle makes it ${r.localAddress} ` +
      `(${has.split(':')[0] !== r.localAddress.split(':')[0] ? 'tls.mode changed: a site keeps the mode it was created with' : "the central's address changed"}); nothing was changed. ` +
      'To move the site, remove this central from the inventory, deploy, and add it again (it joins anew), one central at a time',
    2,
  );
}

async function observeOvs(ctx: HostContext, m: BundleManifest): Promise<ObservedOvs | undefined> {
  if (m.ovs === undefined) return undefined;
  const sock = ctx.at(m.ovs.dbSock);
  if (!existsSync(sock)) return undefined;
  const vsctl = (args: string[]) =>
    ctx.runner.run(['ovs-vsctl', `--db=unix:${sock}`, '--timeout=3', ...args], { mutates: false, allowFailure: true, timeoutMs: 6_000 });
  const root = await vsctl(['--format=json', '--columns=external_ids', 'list', 'Open_vSwitch']);
  const bridgesOut = await vsctl(['--format=json', '--columns=name,datapath_type,fail_mode,ports', 'list', 'Bridge']);
  const portsOut = await vsctl(['--format=json', '--columns=_uuid,name', 'list', 'Port']);
  if (root.exitCode !== 0 || bridgesOut.exitCode !== 0 || portsOut.exitCode !== 0) return undefined;
  try {
    const rows = parseOvsdbTable(root.stdout);
    const ids = rows[0]?.external_ids;
    const externalIds: Record<string, string> = {};
    if (ids !== null && ids !== undefined && typeof ids === 'object' && !Array.isArray(ids)) {
      for (const [k, v] of Object.entries(ids)) externalIds[k] = String(v);
    }
    const portNames = new Map(parseOvsdbTable(portsOut.stdout).map((p) => [str(p, '_uuid'), str(p, 'name')]));
    const bridges = new Map<string, { datapathType: string; failMode: string; ports: string[] }>();
    for (const b of parseOvsdbTable(bridgesOut.stdout)) {
      bridges.set(str(b, 'name'), {
        datapathType: str(b, 'datapath_type'),
        failMode: str(b, 'fail_mode'),
        ports: strs(b, 'ports').map((u) => portNames.get(u) ?? u),
      });
    }
    return { initialized: rows.length > 0, externalIds, bridges };
  } catch {
    return undefined;
  }
}

async function observeUnderlay(ctx: HostContext, u: { bridge: string; interface: string }): Promise<ObservedUnderlay> {
  const recorded = await readUnderlay(ctx.paths.underlayState).catch(() => undefined);
  const ip = new Ip(ctx.runner);
  const addrs = await ip.addrs().catch(() => []);
  const v4 = (dev: string) => (addrs.find((a) => a.ifname === dev)?.addresses ?? []).filter((a) => !a.includes(':'));
  const link = await ip.link(u.bridge).catch(() => undefined);
  return {
    ...(recorded === undefined ? {} : { recordedCidr: recorded.cidr }),
    nicAddrs: v4(u.interface),
    bridgeAddrs: v4(u.bridge),
    bridgeUp: link?.flags.includes('UP') === true,
  };
}


/** Missing, or (for a directory whose mode matters) not a directory of exactly that mode; a symlink always needs the step, which refuses it. */
function dirNeedsStep(at: string, d: { mode: number; exact?: true }): boolean {
  if (d.exact !== true) return !existsSync(at);
  try {
    const st = lstatSync(at);
    return !st.isDirectory() || (st.mode & 0o7777) !== d.mode;
  } catch {
    return true;
  }
}

/**
 * The bundle's nftables file (render's hostRenderedPaths().firewall) and whether its table is
 * loaded. A host where nft cannot run (no binary, no nf_tables) has no firewall step: the rules
 * are an extra guard, not what makes OVN work.
 */
async function observeFirewall(ctx: HostContext, bundle: VerifiedBundle): Promise<{ firewall?: Observed['firewall']; localAccess?: Observed['localAccess'] }> {
  const rp = hostRenderedPaths();
  const content = (file: string): string | undefined => bundle.contents.get(file)?.toString('utf8');
  const firewall = ctx.loadFirewall === true && bundle.manifest.firewall.length > 0 ? content(rp.firewall) : undefined;
  const localAccess = content(rp.localAccess);
  if (firewall === undefined && localAccess === undefined) return {};
  const r = await ctx.runner.run(['nft', 'list', 'tables'], { mutates: false, allowFailure: true, timeoutMs: 10_000 });
  const available = r.exitCode === 0;
  const loaded = (text: string): boolean => {
    const table = /^table\s+(\S+)\s+(\S+)\s*\{/m.exec(text);
    return available && table !== null && r.stdout.split('\n').some((l) => l.trim() === `table ${table[1]} ${table[2]}`);
  };
  return {
    ...(firewall === undefined ? {} : { firewall: { file: rp.firewall, available, loaded: loaded(firewall) } }),
    ...(localAccess === undefined ? {} : { localAccess: { file: rp.localAccess, loaded: loaded(localAccess) } }),
  };
}
