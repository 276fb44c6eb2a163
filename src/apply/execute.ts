/**
 * The acting half of apply: runs the planned steps in order through the Runner and the service
 * manager, and reports what it really changed (OVS reports only the keys that differed when it
 * got there). Stops at `needs-certificate`.
 */
import { constants as fsConstants, existsSync, lstatSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { BundleManifest, RaftDb } from '../bundle/manifest.js';
import { ExitError, InputError, type Problem } from '../errors.js';
import { writeFileAtomic, writeFilesAtomic } from '../fsx.js';
import { MANIFEST_FILE } from '../bundle/manifest.js';
import { installCommand, unavailablePackages } from '../packages.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair, type KeyPairPem } from '../pki/keygen.js';
import { Podman, podmanEnv } from '../packaging/podman.js';
import { Ip } from '../tools/netns.js';
import { Vsctl } from '../tools/ovs.js';
import { sleep } from '../tools/retry.js';
import type { VerifiedBundle } from './bundle.js';
import { readIdFile, type HostContext } from './observe.js';
import { hostPaths } from '../paths.js';
import { changesOf, describeStep, type ApplyStep, type Observed } from './plan.js';
import { decideBootstrap, probePeers, type BootstrapDecision } from './raft-bootstrap.js';
import type { Change } from './report.js';
import { readUnderlay, writePending, writeUnderlay, type PendingActions } from './state.js';

export interface ExecuteResult {
  changes: Change[];
  needsCertificate: boolean;
  /** The current certificate still serves; a CSR for the next key waits for its certificate. */
  renewalRequested: boolean;
  /** initCommands ran (now or before). */
  initialized: boolean;
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const INSTALL_TIMEOUT_MS = 30 * 60_000;
const INIT_DEADLINE_MS = 60_000;

export async function executePlan(
  ctx: HostContext,
  bundle: VerifiedBundle,
  observed: Observed,
  steps: readonly ApplyStep[],
  log: (line: string) => void = () => undefined,
  /** Filled as steps complete, so a caller still knows what changed when a later step throws. */
  changes: Change[] = [],
): Promise<ExecuteResult> {
  const m = bundle.manifest;
  const pending: PendingActions = { reload: [...observed.pending.reload], restart: [...observed.pending.restart] };
  let filesDone = false;
  let initialized = observed.initialized;
  /** Bootstrap databases whose cluster a peer already served: joined, not created. */
  const joinedExisting = new Set<string>();
  const createdHere = new Set<string>();
  let startedEarly = false;
  let renewalRequested = false;
  const flushPending = async (): Promise<void> => {
    await writePending(ctx.paths.applyPending, pending);
  };
  // Only in a pass that starts services: one launched before a needs-certificate stop would
  // outlive this apply with nothing to run (and the host would have a process it never asked for).
  if (m.services.length > 0 && steps.some((s) => s.kind === 'services-stage0')) ctx.services.warmUp();
  // The key depends on nothing the earlier steps write: made on the threadpool while they run,
  // written only at its own step (a plan that fails before it leaves no key behind).
  let earlyKey = steps.some((s) => s.kind === 'key' || s.kind === 'renewal-key') ? generateKeyPair(m.certificate.keyBits) : undefined;
  earlyKey?.catch(() => undefined); // its failure surfaces at the key step
  /** The early key, once: a second key step makes its own. */
  const takeKey = (): Promise<KeyPairPem> => {
    const k = earlyKey ?? generateKeyPair(m.certificate.keyBits);
    earlyKey = undefined;
    return k;
  };
  let i = 0;
  while (i < steps.length) {
    const step = steps[i++] as ApplyStep;
    if (step.kind !== 'file' && step.kind !== 'mkdir' && !filesDone) {
      filesDone = true;
      await flushPending();
    }
    if (step.kind === 'file') {
      // Consecutive files are one batch: one durable flush for all of them, not two per file.
      const run = [step];
      for (let next = steps[i]; next?.kind === 'file'; next = steps[++i]) run.push(next);
      for (const f of run) log(describeStep(f));
      await writeFileSteps(ctx, bundle, run, pending);
      for (const f of run) changes.push(...changesOf(f, m));
      continue;
    }
    log(describeStep(step));
    switch (step.kind) {
      case 'packages':
        await installPackages(ctx, step.manager, step.packages);
        break;
      case 'image-load':
        await loadImage(ctx, step);
        break;
      case 'mkdir': {
        const at = ctx.at(step.path);
        await fs.mkdir(at, { recursive: true, mode: step.mode });
        // chmod follows symlinks: never through one (a link here could point at any directory).
        if (!(await fs.lstat(at)).isDirectory()) throw new Error(`${at} is not a directory (a symlink or a file is there): remove it, apply makes the directory`);
        await fs.chmod(at, step.mode);
        break;
      }
      case 'key': {
        const pair = await takeKey();
        await writeFileAtomic(ctx.at(m.certificate.key), pair.privateKeyPem, 0o600);
        break;
      }
      case 'csr': {
        const keyPem = await fs.readFile(ctx.at(m.certificate.key), 'utf8');
        await writeFileAtomic(ctx.at(m.certificate.csr), createCsr(keyPem, m.certificate.name, m.certificate.sans), 0o644);
        break;
      }
      case 'install-certificate':
        if (ctx.givenCertificate === undefined && step.rotateKey !== true) throw new Error('install-certificate planned without a certificate');
        // Certificate first, then key, renamed back to back (as certs host install-pair): a client
        // opening the pair meanwhile, or OVSDB's own TLS re-reading it, does not get the new
        // certificate with the old key for a directory flush. An apply stopped in between leaves a
        // certificate of the pending key, which the next apply recognises and finishes.
        if (step.rotateKey === true) {
          await fs.chmod(ctx.paths.pki.keyNext, 0o600);
          const thenRename = [{ from: ctx.paths.pki.keyNext, to: ctx.at(m.certificate.key) }];
          await writeFilesAtomic(ctx.givenCertificate === undefined ? [] : [{ file: ctx.at(m.certificate.cert), content: ctx.givenCertificate, mode: 0o644 }], { thenRename });
        } else {
          if (ctx.givenCertificate !== undefined) await writeFileAtomic(ctx.at(m.certificate.cert), ctx.givenCertificate, 0o644);
          // OVSDB's own TLS (native mode) re-reads key and certificate only when both files
          // changed: a new certificate for the same key needs the key's mtime moved too. The
          // bytes stay; opened without following a link.
          await touchFile(ctx.at(m.certificate.key));
        }
        break;
      case 'renewal-key': {
        const pair = await takeKey();
        await writeFileAtomic(ctx.paths.pki.keyNext, pair.privateKeyPem, 0o600);
        break;
      }
      case 'renewal-csr': {
        const keyPem = await fs.readFile(ctx.paths.pki.keyNext, 'utf8');
        await writeFileAtomic(ctx.at(m.certificate.csr), createCsr(keyPem, m.certificate.name, m.certificate.sans), 0o644);
        break;
      }
      case 'renewal-requested':
        renewalRequested = true;
        break;
      case 'needs-certificate':
        return { changes, needsCertificate: true, renewalRequested: false, initialized };
      case 'db-create':
        await createDbFile(ctx, step.db.dbFile, (tmp) => ['ovsdb-tool', 'create', tmp, step.db.schema]);
        break;
      case 'db-convert':
        // Never under a running server: it holds the file and would not see the conversion.
        await ctx.services.stop([step.db.service]);
        await ctx.runner.run(['ovsdb-tool', 'convert', ctx.at(step.db.dbFile), step.db.schema], { mutates: true, timeoutMs: 60_000 });
        break;
      case 'raft-create': {
        if (step.db.peerRemotes.length > 0 && !startedEarly) {
          // The peers answer only through the local stunnel client, a stage-0 service that
          // would otherwise start after this step.
          startedEarly = true;
          await startTunnelsEarly(ctx, m);
        }
        const decision = await bootstrapDecision(ctx, m, observed, step.db, log);
        if (decision.action === 'join') {
          await createDbFile(ctx, step.db.dbFile, (tmp) => ['ovsdb-tool', 'join-cluster', tmp, step.db.name, step.db.localAddress, ...step.db.peers]);
          joinedExisting.add(step.db.name);
          changes.push({ kind: 'raft', target: `${step.db.name} ${step.db.dbFile} (cluster ${decision.cid} via ${decision.via})`, action: 'joined existing cluster' });
          continue;
        }
        // A disaster recovery (`restore`) left the backup here: the new cluster starts with its data and row UUIDs.
        const seed = await restoreSeed(ctx, step.db.name);
        if (seed === undefined && step.db.name === 'OVN_Southbound') {
          await withGlobalRowSeed(ctx, step.db, (contents) => createDbFile(ctx, step.db.dbFile, (tmp) => ['ovsdb-tool', 'create-cluster', tmp, contents, step.db.localAddress]));
        } else {
          await createDbFile(ctx, step.db.dbFile, (tmp) => ['ovsdb-tool', 'create-cluster', tmp, seed ?? step.db.schema, step.db.localAddress]);
        }
        createdHere.add(step.db.name);
        if (seed !== undefined) changes.push({ kind: 'raft', target: `${step.db.name} ${step.db.dbFile}`, action: 'created from the restore seed' });
        break;
      }
      case 'raft-join':
        await createDbFile(ctx, step.db.dbFile, (tmp) => ['ovsdb-tool', 'join-cluster', tmp, step.db.name, step.db.localAddress, ...step.db.peers]);
        break;
      case 'daemon-reload':
        await ctx.services.daemonReload();
        break;
      case 'firewall':
        // One atomic transaction: the file replaces its own table as a whole.
        await ctx.runner.run(['nft', '-f', ctx.at(step.file)], { mutates: true, timeoutMs: 30_000 });
        break;
      case 'disable-distro-units':
        await ctx.services.disableUnits(step.units);
        break;
      case 'services-stage0':
        await ctx.services.ensureStage0(m, step.stop, step.restart);
        break;
      case 'ovs':
        changes.push(...(await configureOvs(ctx, m)));
        continue; // its changes are what it found different, not the plan's view
      case 'init-commands':
        initialized = true;
        // A cluster this host joined was initialised by whoever created it; here the local
        // server is a follower that leader-only ovn-nbctl would wait on forever.
        if (joinedExisting.size > 0 && createdHere.size === 0) {
          log('init commands skipped: joined an existing cluster');
          continue;
        }
        await runInitCommands(ctx, step.commands);
        break;
      case 'services-stage1':
        await ctx.services.ensureAll(m, step.restart);
        break;
      case 'underlay':
        changes.push(...(await moveUnderlay(ctx, step)));
        continue;
      case 'reload': {
        const svc = m.services.find((s) => s.name === step.service);
        if (svc !== undefined) await ctx.services.reload(svc);
        break;
      }
      case 'restart':
        await ctx.services.restart(step.services, m);
        break;
    }
    changes.push(...changesOf(step, m));
  }
  // Every reload/restart owed is done (or the service started fresh and read its files).
  pending.reload = [];
  pending.restart = [];
  await flushPending();
  if (m.initCommands.length === 0) initialized = true;
  return { changes, needsCertificate: false, renewalRequested, initialized };
}

/**
 * A run of file steps: new contents written as one atomic batch (renames in plan order), then
 * owners and modes, then what each changed file owes its services.
 */
async function writeFileSteps(ctx: HostContext, bundle: VerifiedBundle, run: readonly Extract<ApplyStep, { kind: 'file' }>[], pending: PendingActions): Promise<void> {
  const m = bundle.manifest;
  const manifestFile = path.join(bundle.dir, MANIFEST_FILE);
  // Read now, not at observe time: a package installed in this apply may have added the user.
  const ids = { users: readIdFile(ctx.at('/etc/passwd')), groups: readIdFile(ctx.at('/etc/group')) };
  const files = run.map((step) => {
    const i = m.files.findIndex((f) => f.dest === step.dest);
    const f = m.files[i];
    const content = bundle.contents.get(step.dest);
    if (f === undefined || content === undefined) throw new Error(`no content for ${step.dest}`);
    return { step, f, content, target: ctx.at(f.dest), ...owner(ids, f.owner, f.group, i, manifestFile) };
  });
  const problems = files.flatMap(({ f, target }) => {
    const link = foreignLinkAbove(ctx.root, target);
    return link === undefined ? [] : [{ file: manifestFile, path: `files[${m.files.indexOf(f)}].dest`, message: `${link.path} is a symbolic link owned by uid ${link.uid}, not root: apply does not write ${f.dest} through it` }];
  });
  if (problems.length > 0) throw new InputError(problems);
  await writeFilesAtomic(files.filter((x) => x.step.action !== 'metadata').map((x) => ({ file: x.target, content: x.content, mode: x.f.mode })));
  for (const { step, f, target, uid, gid } of files) {
    if (step.action === 'metadata') await fs.chmod(target, f.mode);
    await fs.chown(target, uid, gid);
    if (step.contentChanged && !(ctx.services.kind === 'own' && f.dest.startsWith('/etc/systemd/system/'))) {
      pending.reload.push(...f.reload.filter((s) => !pending.reload.includes(s)));
      pending.restart.push(...f.restart.filter((s) => !pending.restart.includes(s)));
    }
  }
}

/**
 * A directory on the way to `target` (below `root`) that is a symbolic link someone other than
 * root made, e.g. a service user in a directory it owns: root writing through it would write
 * wherever that user points. Root's own links (/var/run -> /run) are followed as always.
 */
function foreignLinkAbove(root: string, target: string): { path: string; uid: number } | undefined {
  const base = path.resolve(root);
  const rel = path.relative(base, path.dirname(target));
  let at = base;
  for (const part of rel === '' ? [] : rel.split(path.sep)) {
    at = path.join(at, part);
    const st = lstatSync(at, { throwIfNoEntry: false });
    if (st === undefined) return undefined; // made by this batch, as a directory
    if (st.isSymbolicLink() && st.uid !== 0) return { path: at, uid: st.uid };
  }
  return undefined;
}

function owner(ids: { users: Map<string, number>; groups: Map<string, number> }, user: string, group: string, index: number, manifestFile: string): { uid: number; gid: number } {
  const uid = ids.users.get(user);
  const gid = ids.groups.get(group);
  const problems: Problem[] = [];
  if (uid === undefined) problems.push({ file: manifestFile, path: `files[${index}].owner`, message: `no user "${user}" on this host` });
  if (gid === undefined) problems.push({ file: manifestFile, path: `files[${index}].group`, message: `no group "${group}" on this host` });
  if (uid === undefined || gid === undefined) throw new InputError(problems);
  return { uid, gid };
}

/** Loads the archive, then proves it held what the bundle runs: every image now has the archive's ID. */
async function loadImage(ctx: HostContext, step: Extract<ApplyStep, { kind: 'image-load' }>): Promise<void> {
  const podman = new Podman(ctx.runner, podmanEnv());
  await podman.load(step.file);
  for (const ref of step.images) {
    const id = await podman.findImageId(ref);
    if (id !== step.id) throw new ExitError(`the image archive ${step.file} (image ${step.id.slice(0, 12)}) did not provide ${ref} (now ${id === undefined ? 'missing' : id.slice(0, 12)})`);
  }
}

async function installPackages(ctx: HostContext, manager: 'apt' | 'dnf', packages: string[]): Promise<void> {
  if (manager === 'dnf') {
    const r = await ctx.runner.run(installCommand('fedora', packages), { timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
    if (r.exitCode !== 0) throw new ExitError(`dnf failed to install ${packages.join(' ')}:\n${tail(r.stdout + r.stderr)}`);
    return;
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // The packages' postinst must not start the distribution's own OVS/OVN daemons: they would
  // take the sockets and database files our services use.
  const guard = ctx.root === '/' && !existsSync(POLICY_RC_D);
  if (guard) await writeFileAtomic(POLICY_RC_D, '#!/bin/sh\n# ovn-deploy apply: installing packages, no service starts\nexit 101\n', 0o755);
  try {
    let r = await ctx.runner.run(installCommand('debian', packages), { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
    if (r.exitCode !== 0 && unavailablePackages(r.stdout + r.stderr).length > 0) {
      // Never-fetched package lists (a fresh container or VM): update once and retry.
      await ctx.runner.run(['apt-get', '-o', 'DPkg::Lock::Timeout=600', 'update', '-q'], { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
      r = await ctx.runner.run(installCommand('debian', packages), { env, timeoutMs: INSTALL_TIMEOUT_MS, allowFailure: true, mutates: true });
    }
    if (r.exitCode !== 0) throw new ExitError(`apt-get failed to install ${packages.join(' ')}:\n${tail(r.stdout + r.stderr)}`);
  } finally {
    if (guard) await fs.rm(POLICY_RC_D, { force: true });
  }
}

const tail = (text: string): string => text.trim().split('\n').slice(-8).join('\n');

/** A database file made under a temporary name and renamed: never half-written. */
async function createDbFile(ctx: HostContext, dbFile: string, argv: (tmp: string) => string[]): Promise<void> {
  const target = ctx.at(dbFile);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  await fs.rm(tmp, { force: true });
  await ctx.runner.run(argv(tmp), { mutates: true, timeoutMs: 30_000 });
  await fs.rename(tmp, target);
}

/**
 * A new Southbound cluster holds its SB_Global row from its first moment. ovn-controller
 * (23.03 to main: pflow_output_get_debug) reads SB_Global's options without a NULL check and
 * dies with SIGSEGV when it reaches an SB that `ovn-sbctl init` (or northd) has not filled yet;
 * hosts applied at once (`up`, a deploy to one phase) hit that window. The seed is a standalone
 * file beside the database, removed after.
 */
async function withGlobalRowSeed(ctx: HostContext, db: RaftDb, create: (contents: string) => Promise<void>): Promise<void> {
  const target = ctx.at(db.dbFile);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const seed = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.seed`);
  await fs.rm(seed, { force: true });
  try {
    await ctx.runner.run(['ovsdb-tool', 'create', seed, db.schema], { mutates: true, timeoutMs: 30_000 });
    await ctx.runner.run(['ovsdb-tool', 'transact', seed, JSON.stringify([db.name, { op: 'insert', table: 'SB_Global', row: {} }])], { mutates: true, timeoutMs: 30_000 });
    await create(seed);
  } finally {
    await fs.rm(seed, { force: true });
  }
}

/** The file's mtime set to now, its content untouched; a symlink is refused, not followed. */
async function touchFile(file: string): Promise<void> {
  const fh = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const now = new Date();
    await fh.utimes(now, now);
  } finally {
    await fh.close();
  }
}

async function startTunnelsEarly(ctx: HostContext, m: BundleManifest): Promise<void> {
  const dbServices = new Set([...m.raft.map((r) => r.service), ...m.standaloneDbs.map((d) => d.service)]);
  const early = m.services.filter((s) => s.stage === 0 && !dbServices.has(s.name)).map((s) => s.name);
  if (early.length > 0) await ctx.services.startEarly(m, early);
}

/** Create, or join the cluster a peer already serves; throws when that cannot be decided safely. */
async function bootstrapDecision(ctx: HostContext, m: BundleManifest, observed: Observed, db: RaftDb, log: (line: string) => void): Promise<BootstrapDecision> {
  if (db.peerRemotes.length === 0) return { action: 'create' };
  const answers = await probePeers(ctx.runner, db, undefined, undefined, (p) => ctx.at(p));
  // Evidence, from before this apply, that this host was a member: then "no peer answers" is an
  // outage, not a fresh site.
  const present = m.raft.filter((r) => r !== db && (observed.dbs.get(r.dbFile) ?? 'missing') !== 'missing');
  const evidence = observed.initialized ? `${ctx.paths.applied} records an initialised cluster` : present.length > 0 ? `${present.map((r) => r.dbFile).join(', ')} exists` : undefined;
  // A disaster recovery: `restore` found no central holding a database and left its seed here.
  // That is the word that every member lost its data, for the SB (created empty) as for the NB.
  let restoring = false;
  for (const r of m.raft) if ((await restoreSeed(ctx, r.name)) !== undefined) restoring = true;
  if (restoring && evidence !== undefined) log(`raft: ${db.name}: ${evidence}, but a restore seed is here (a disaster recovery): no peer being a member, the cluster is created anew`);
  const wasMember = restoring ? undefined : evidence;
  const decision = decideBootstrap(db, answers, wasMember, ctx.paths.applied);
  log(
    decision.action === 'join'
      ? `raft: ${db.name}: ${decision.via} is a member of cluster ${decision.cid}: joining it instead of creating a new one`
      : `raft: ${db.name}: no peer is a member of a cluster (${answers.map((a) => `${a.remote}: ${a.kind}`).join(', ')}): creating it`,
  );
  return decision;
}

/** `ovs-vsctl init`, the bridges, and only the external_ids whose value differs. */
async function configureOvs(ctx: HostContext, m: BundleManifest): Promise<Change[]> {
  const ovs = m.ovs;
  if (ovs === undefined) return [];
  const vsctl = new Vsctl(ctx.runner, ctx.at(ovs.dbSock));
  await vsctl.run(['init']);
  const current = (await vsctl.list('Open_vSwitch', ['external_ids']))[0]?.external_ids;
  const have: Record<string, string> = {};
  if (current !== null && current !== undefined && typeof current === 'object' && !Array.isArray(current)) {
    for (const [k, v] of Object.entries(current)) have[k] = String(v);
  }
  const bridges = new Map((await vsctl.list('Bridge', ['name', 'datapath_type', 'fail_mode', 'ports'])).map((b) => [String(b.name), b]));
  const portNames = new Set((await vsctl.list('Port', ['name'])).map((p) => String(p.name)));
  const changes: Change[] = [];
  const args: string[] = [];
  const br = ovs.integrationBridge;
  const intBr = bridges.get(br);
  const dpOf = (v: unknown): string => (v === null || v === undefined || v === '' ? 'system' : String(v));
  if (intBr === undefined || dpOf(intBr.datapath_type) !== ovs.datapath || intBr.fail_mode !== 'secure') {
    args.push('--', '--may-exist', 'add-br', br, '--', 'set', 'Bridge', br, 'fail-mode=secure', `datapath_type=${ovs.datapath}`);
    changes.push({ kind: 'ovs', target: `bridge ${br}`, action: intBr === undefined ? 'create' : 'update' });
  }
  const u = ovs.underlay;
  if (u !== undefined) {
    const phy = bridges.get(u.bridge);
    if (phy === undefined || dpOf(phy.datapath_type) !== 'netdev') {
      args.push('--', '--may-exist', 'add-br', u.bridge, '--', 'set', 'Bridge', u.bridge, 'datapath_type=netdev');
      changes.push({ kind: 'ovs', target: `bridge ${u.bridge}`, action: phy === undefined ? 'create' : 'update' });
    }
    if (!portNames.has(u.interface)) {
      args.push('--', '--may-exist', 'add-port', u.bridge, u.interface);
      changes.push({ kind: 'underlay', target: `${u.interface} -> ${u.bridge}`, action: 'add-port' });
    }
  }
  const differing = Object.entries(ovs.externalIds).filter(([k, v]) => have[k] !== v);
  if (differing.length > 0) {
    // Quoted: values such as remote lists hold ':' and ','.
    args.push('--', 'set', 'Open_vSwitch', '.', ...differing.map(([k, v]) => `external_ids:${k}=${JSON.stringify(v)}`));
    for (const [k] of differing) changes.push({ kind: 'ovs', target: `external_ids:${k}`, action: k in have ? 'update' : 'set' });
  }
  if (args.length > 0) await vsctl.run(args);
  return changes;
}

async function runInitCommands(ctx: HostContext, commands: readonly string[][]): Promise<void> {
  // A fresh cluster answers only once it has elected a leader (itself, on the bootstrap host).
  const deadline = Date.now() + INIT_DEADLINE_MS;
  for (const argv of commands) {
    for (;;) {
      const r = await ctx.runner.run(argv, { mutates: true, allowFailure: true, timeoutMs: 15_000 });
      if (r.exitCode === 0) break;
      if (Date.now() > deadline) throw new ExitError(`${argv.join(' ')} kept failing for ${INIT_DEADLINE_MS / 1000} s (no cluster leader?):\n${tail(r.stderr)}`);
      await sleep(100);
    }
  }
}

/**
 * Userspace datapath: the NIC becomes a port of br-phy and its IPv4 address (with the prefix
 * it had) moves to br-phy's internal port, which ovs-vswitchd creates. Recorded in
 * underlay.json, so after a vswitchd restart (new tap, no address) the next apply puts it back.
 */
async function moveUnderlay(ctx: HostContext, step: { bridge: string; nic: string; ip: string }): Promise<Change[]> {
  const ip = new Ip(ctx.runner);
  const deadline = Date.now() + 20_000;
  while ((await ip.link(step.bridge)) === undefined) {
    if (Date.now() > deadline) throw new ExitError(`ovs-vswitchd did not create ${step.bridge}'s internal port in 20 s`);
    await sleep(50);
  }
  const addrs = await ip.addrs();
  const v4 = (dev: string) => (addrs.find((a) => a.ifname === dev)?.addresses ?? []).filter((a) => !a.includes(':'));
  const recorded = await readUnderlay(ctx.paths.underlayState).catch(() => undefined);
  const bare = step.ip.split('/')[0] ?? step.ip;
  const cidr =
    (step.ip.includes('/') ? step.ip : undefined) ??
    v4(step.nic).find((a) => a.startsWith(`${bare}/`)) ??
    v4(step.bridge).find((a) => a.startsWith(`${bare}/`)) ??
    (recorded?.interface === step.nic && recorded.cidr.startsWith(`${bare}/`) ? recorded.cidr : undefined);
  if (cidr === undefined) {
    throw new ExitError(`cannot tell the prefix length of ${step.ip}: it is neither on ${step.nic} nor on ${step.bridge}, and ${ctx.paths.underlayState} does not record it`);
  }
  // Routes through a gateway (the default route) die with the NIC's address: they move too.
  const nicRoutes = await gatewayRoutes(ctx, step.nic);
  const routes = [...(recorded?.interface === step.nic ? recorded.routes : []), ...nicRoutes].filter(
    (r, i, all) => all.findIndex((x) => x.dst === r.dst) === i,
  );
  await writeUnderlay(ctx.paths.underlayState, { bridge: step.bridge, interface: step.nic, cidr, routes });
  const changes: Change[] = [];
  const lines: string[][] = [];
  if (!v4(step.bridge).includes(cidr)) {
    lines.push(['addr', 'replace', cidr, 'dev', step.bridge]);
    changes.push({ kind: 'underlay', target: `${cidr} ${step.nic} -> ${step.bridge}`, action: 'move-address' });
  }
  lines.push(['link', 'set', 'dev', step.bridge, 'up']);
  if (v4(step.nic).includes(cidr)) lines.push(['addr', 'del', cidr, 'dev', step.nic]);
  lines.push(['link', 'set', 'dev', step.nic, 'up']);
  for (const r of routes) lines.push(['route', 'replace', r.dst, 'via', r.gateway, 'dev', step.bridge]);
  await ip.batch(lines);
  if (changes.length === 0) changes.push({ kind: 'underlay', target: step.bridge, action: 'up' });
  return changes;
}


/** IPv4 routes of `dev` that go through a gateway (`ip -j route`). */
async function gatewayRoutes(ctx: HostContext, dev: string): Promise<{ dst: string; gateway: string }[]> {
  const r = await ctx.runner.run(['ip', '-j', '-4', 'route', 'show', 'dev', dev], { mutates: false, allowFailure: true, timeoutMs: 10_000 });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return [];
  try {
    const rows = JSON.parse(r.stdout) as { dst?: string; gateway?: string }[];
    return rows.filter((x): x is { dst: string; gateway: string } => typeof x.dst === 'string' && typeof x.gateway === 'string');
  } catch {
    return [];
  }
}

/** The seed `restore` placed for `db` (a regular file of root's, never a symlink), or undefined. */
async function restoreSeed(ctx: HostContext, db: string): Promise<string | undefined> {
  const file = ctx.at(hostPaths().restoreSeed(db));
  const st = await fs.lstat(file).catch(() => undefined);
  return st?.isFile() === true && st.uid === 0 && (st.mode & 0o077) === 0 ? file : undefined;
}
