/**
 * What a bundle may ask of a host, whoever signed it: apply runs as root, so a manifest is held to
 * the shape `render` produces. Destinations come from an allow-list per kind of file, modes are
 * never setuid/setgid/sticky or world-writable, owners are root or a service user, daemons are the
 * known binaries, and init commands are exactly the known ones. Destinations and the manifest's
 * other host paths are checked against the distribution layout (apply puts them below --root);
 * what a daemon or tool reads verbatim (log files, env, init commands) against the layout under
 * the bundle's recorded root.
 */
import path from 'node:path';
import type { BundleManifest } from '../bundle/manifest.js';
import type { Problem } from '../errors.js';
import { hostPaths, hostRenderedPaths, ovsdbSchemas, type HostPaths } from '../paths.js';
import { metadataAgentCommand, PODMAN_BINARY } from '../render/metadata-runtime.js';
import { BINARIES, SERVICE } from '../render/services.js';

const hp = hostPaths();

/** Users and groups the distribution packages create for the daemons we configure. */
export const SERVICE_ACCOUNTS: ReadonlySet<string> = new Set(['root', 'openvswitch', 'hugetlbfs', 'ovn', 'stunnel4', 'neutron', 'haproxy']);

const under = (dir: string) => (p: string): boolean => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).split('/').includes('..');
const UNIT = /^ovn-deploy-[a-z][a-z0-9-]{0,47}\.service$/;
const DISTRO_UNIT = /^[A-Za-z0-9@_.-]+\.service$/;

/** The kinds of file a bundle places, each with where it may go. */
const FILE_KINDS: { kind: string; allows: (dest: string) => boolean }[] = [
  // The PKI directory also holds the host's key and certificate: a bundle may only bring the public CA bundle and CRL.
  { kind: 'CA bundle / CRL', allows: (d) => d === hp.pki.caBundle || d === hp.pki.crl },
  { kind: 'ovn-deploy configuration', allows: (d) => under(hp.etc)(d) && !under(hp.pki.dir)(d) },
  // Exactly our one file: it makes the OVSDB socket directory at boot (as our units, it runs as root).
  { kind: 'tmpfiles.d entry of ours', allows: (d) => d === hostRenderedPaths().tmpfiles },
  { kind: 'systemd unit of ours', allows: (d) => path.posix.dirname(d) === hp.systemdDir && UNIT.test(path.posix.basename(d)) },
  {
    kind: 'systemd drop-in of ours',
    allows: (d) => path.posix.basename(d) === 'ovn-deploy.conf' && path.posix.dirname(path.posix.dirname(d)) === hp.systemdDir && DISTRO_UNIT.test(path.posix.basename(path.posix.dirname(d)).replace(/\.d$/, '')) && path.posix.dirname(d).endsWith('.service.d'),
  },
];

const knownInitCommands = (rooted: HostPaths): readonly (readonly string[])[] => [
  [BINARIES.nbctl, `--db=unix:${rooted.ovn.nbSock}`, 'init'],
  [BINARIES.sbctl, `--db=unix:${rooted.ovn.sbSock}`, 'init'],
];
/** Native TLS: the chassis' SB listener under RBAC (initCommands), its port the only free word. */
const isRbacConnection = (rooted: HostPaths, c: readonly string[]): boolean =>
  c.length === 5 && sameArgv(c.slice(0, 4), [BINARIES.sbctl, `--db=unix:${rooted.ovn.sbSock}`, 'set-connection', 'role=ovn-controller']) && /^pssl:[1-9][0-9]{0,4}(:\[::\])?$/.test(c[4] ?? '');
/** A native peer: `ssl:` and an IP address (IPv6 in brackets) with a port. */
const SSL_REMOTE = /^ssl:([0-9.]{7,15}|\[[0-9A-Fa-f:.]{2,45}\]):[1-9][0-9]{0,4}$/;
const KNOWN_BINARIES: ReadonlySet<string> = new Set(Object.values(BINARIES));
const envAllowed = (rooted: HostPaths): Readonly<Record<string, string>> => ({ OVS_RUNDIR: rooted.ovs.runDir, OVN_RUNDIR: rooted.ovn.runDir });

const sameArgv = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/;
const CONTAINER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NETWORK = /^(host|ns:\/run\/netns\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/;

/**
 * podman only as render writes it: the metadata agent's container, its image, name and network
 * the only free words (each one word that podman cannot read as an option).
 */
function isAgentContainer(name: string, argv: readonly string[], root: string): boolean {
  if (name !== SERVICE.metadataAgent) return false;
  const shape = metadataAgentCommand({ kind: 'container', image: '\0image', name: '\0name', netns: '\0netns' }, hostPaths(root), hostRenderedPaths(root)).argv;
  const free = new Map([['\0image', IMAGE], ['\0name', CONTAINER], ['ns:/run/netns/\0netns', NETWORK]]);
  return argv.length === shape.length && shape.every((w, i) => free.get(w)?.test(argv[i] ?? '') ?? w === argv[i]);
}

/** Every way this manifest asks for more than a bundle may; empty when it is within policy. */
export function policyProblems(m: BundleManifest, file: string): Problem[] {
  const problems: Problem[] = [];
  const add = (p: string, message: string): void => void problems.push({ file, path: p, message });
  if (m.root !== undefined && (path.posix.normalize(m.root) !== m.root || (m.root.endsWith('/') && m.root !== '/'))) {
    add('root', `expected a normalised absolute directory, got "${m.root}"`);
  }
  const rooted = hostPaths(m.root ?? '/');
  const ENV_ALLOWED = envAllowed(rooted);
  m.files.forEach((f, i) => {
    if (!FILE_KINDS.some((k) => k.allows(f.dest))) {
      add(`files[${i}].dest`, `"${f.dest}" is outside what a bundle may write (${FILE_KINDS.map((k) => k.kind).join(', ')})`);
    }
    if ((f.mode & 0o7000) !== 0) add(`files[${i}].mode`, `0${f.mode.toString(8)} sets setuid, setgid or sticky bits`);
    if ((f.mode & 0o002) !== 0) add(`files[${i}].mode`, `0${f.mode.toString(8)} is world-writable`);
    if (!SERVICE_ACCOUNTS.has(f.owner)) add(`files[${i}].owner`, `"${f.owner}" is neither root nor a service user`);
    if (!SERVICE_ACCOUNTS.has(f.group)) add(`files[${i}].group`, `"${f.group}" is neither root nor a service group`);
  });
  const cert = m.certificate;
  for (const k of ['key', 'csr', 'cert', 'caBundle', 'crl'] as const) {
    if (cert[k] !== hp.pki[k]) add(`certificate.${k}`, `expected ${hp.pki[k]}, got "${cert[k]}"`);
  }
  m.services.forEach((s, i) => {
    const bin = s.argv[0] ?? '';
    if (!KNOWN_BINARIES.has(bin) && !(bin === PODMAN_BINARY && isAgentContainer(s.name, s.argv, m.root ?? '/'))) add(`services[${i}].argv[0]`, `"${bin}" is not one of the daemons ovn-deploy runs`);
    if (!under(rooted.logDir)(s.logFile)) add(`services[${i}].logFile`, `expected a file under ${rooted.logDir}/, got "${s.logFile}"`);
    if (!UNIT.test(s.unit)) add(`services[${i}].unit`, `expected ovn-deploy-<name>.service, got "${s.unit}"`);
    // Removed before each start: only sockets in our root-only socket directory.
    s.unixListeners.forEach((l, j) => {
      if (!under(rooted.ovsdbDir)(l)) add(`services[${i}].unixListeners[${j}]`, `expected a socket under ${rooted.ovsdbDir}/, got "${l}"`);
    });
    // Only looked at (lstat), never written: still, only the host's daemons' run directories.
    s.waitFor.forEach((w, j) => {
      if (![rooted.ovs.runDir, rooted.ovn.runDir].some((d) => under(d)(w))) add(`services[${i}].waitFor[${j}]`, `expected a socket under ${rooted.ovs.runDir}/ or ${rooted.ovn.runDir}/, got "${w}"`);
    });
    for (const [k, v] of Object.entries(s.env)) {
      if (ENV_ALLOWED[k] !== v) add(`services[${i}].env.${k}`, `not an environment variable a daemon of ovn-deploy gets (${Object.keys(ENV_ALLOWED).join(', ')} at their paths)`);
    }
  });
  m.initCommands.forEach((c, i) => {
    if (!knownInitCommands(rooted).some((k) => sameArgv(k, c)) && !isRbacConnection(rooted, c)) add(`initCommands[${i}]`, `not a known init command: ${JSON.stringify(c)}`);
  });
  const dbDirs = [hp.ovn.dbDir, hp.ovs.dbDir];
  const schemas = new Set(Object.values(ovsdbSchemas));
  m.raft.forEach((r, i) => {
    if (!dbDirs.some((d) => under(d)(r.dbFile))) add(`raft[${i}].dbFile`, `expected a file under ${hp.ovn.dbDir}/, got "${r.dbFile}"`);
    if (!schemas.has(r.schema)) add(`raft[${i}].schema`, `not a known OVSDB schema: "${r.schema}"`);
    if (!under(hp.ovn.runDir)(r.ctl)) add(`raft[${i}].ctl`, `expected a control socket under ${hp.ovn.runDir}/, got "${r.ctl}"`);
    r.peerRemotes.forEach((remote, j) => {
      if (!(remote.startsWith('unix:') && under(hp.ovsdbDir)(remote.slice('unix:'.length))) && !SSL_REMOTE.test(remote)) add(`raft[${i}].peerRemotes[${j}]`, `expected unix: and a socket under ${hp.ovsdbDir}/ or ssl:ADDRESS:PORT, got "${remote}"`);
    });
  });
  m.standaloneDbs.forEach((d, i) => {
    if (!dbDirs.some((dir) => under(dir)(d.dbFile))) add(`standaloneDbs[${i}].dbFile`, `expected a file under ${hp.ovs.dbDir}/, got "${d.dbFile}"`);
    if (!schemas.has(d.schema)) add(`standaloneDbs[${i}].schema`, `not a known OVSDB schema: "${d.schema}"`);
  });
  // Only asked `version` or `status`: still, only the control sockets of the host's daemons.
  m.health.forEach((h, i) => {
    if (h.kind === 'unixctl' && ![hp.ovs.runDir, hp.ovn.runDir].some((d) => under(d)(h.ctl))) add(`health[${i}].ctl`, `expected a control socket under ${hp.ovs.runDir}/ or ${hp.ovn.runDir}/, got "${h.ctl}"`);
  });
  return problems;
}
