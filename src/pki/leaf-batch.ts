/**
 * Group commit for leaf certificates. Requests for one PKI directory queue up while a batch is
 * being written; the next batch then takes the lock once, reads the index once, signs all its
 * certificates on the threadpool, writes their files in parallel and the index once. A lone
 * request is a batch of one, so its latency is unchanged; many concurrent requests (a deploy
 * issuing for every chassis) share the lock, the index rewrite and the fsyncs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as Forge from 'node-forge';
import { ExitError, InputError, inputError } from '../errors.js';
import { writeFilesAtomic, type FileWrite } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { CLOCK_SKEW_MS, DAY_MS, loadCa, type LoadedCa } from './ca.js';
import { indexWritten, readIndex, renderIndex } from './cert-index.js';
import { readRevokedHosts, revokedHostRefusal } from './host-revocation.js';
import { withPkiLock } from './lock.js';
import { signCertificatePem } from './native-sign.js';
import { buildLeafCertificate, randomSerial, subjectString } from './templates.js';
import type { IndexEntry, IssuedCertificate, LeafRole } from './types.js';
import type { SubjectAltName } from './validate.js';

export interface LeafPlan {
  name: string;
  role: LeafRole;
  host: string;
  sans: SubjectAltName[];
  validityDays: number;
  now: Date;
  notBefore: Date | undefined;
}

export interface LeafJob {
  plan: LeafPlan;
  publicKey: Forge.pki.PublicKey;
  /** The key's subjectKeyIdentifier (csr.ts keyIdOf), when known: saves forge hashing the key. */
  keyId?: string;
  /** Written to private/NAME.key; absent for a CSR (the host keeps its key). */
  privateKeyPem: string | undefined;
}

interface Pending extends LeafJob {
  resolve(c: IssuedCertificate): void;
  reject(e: unknown): void;
}

/** Enough to amortise the index rewrite; small enough that one batch stays short. */
const MAX_BATCH = 64;

const queues = new Map<string, { jobs: Pending[]; draining: boolean }>();

/** Queues a signed-and-recorded leaf certificate; resolves once its files and index entry are written. */
export function commitLeaf(dir: string, job: LeafJob): Promise<IssuedCertificate> {
  const key = path.resolve(dir);
  let q = queues.get(key);
  if (q === undefined) {
    q = { jobs: [], draining: false };
    queues.set(key, q);
  }
  const queue = q;
  const done = new Promise<IssuedCertificate>((resolve, reject) => queue.jobs.push({ ...job, resolve, reject }));
  if (!queue.draining) void drain(key, queue);
  return done;
}

/**
 * An explicit batch (`pki sign-csr` with several CSRs): one lock, one index write and one flush
 * for all of them, however many. Names must be unique (the caller checks). Resolves with the
 * certificates in request order; rejects if any of them could not be issued.
 */
export async function commitLeaves(dir: string, jobs: readonly LeafJob[]): Promise<IssuedCertificate[]> {
  const pending: Pending[] = [];
  const done = jobs.map((job) => new Promise<IssuedCertificate>((resolve, reject) => pending.push({ ...job, resolve, reject })));
  const key = path.resolve(dir);
  // Handled from the start: a job refused inside the batch rejects while the lock is still held.
  const all = Promise.all(done);
  all.catch(() => undefined);
  try {
    await withPkiLock(key, () => commitBatch(key, pending));
  } catch (err) {
    for (const j of pending) j.reject(err);
  }
  return all;
}

async function drain(dir: string, q: { jobs: Pending[]; draining: boolean }): Promise<void> {
  q.draining = true;
  try {
    while (q.jobs.length > 0) {
      const batch = takeBatch(q.jobs);
      try {
        await withPkiLock(dir, () => commitBatch(dir, batch));
      } catch (err) {
        for (const j of batch) j.reject(err);
      }
    }
  } finally {
    q.draining = false;
    if (q.jobs.length === 0) queues.delete(dir);
  }
}

/** The longest prefix without a repeated name: two certificates of one name must land in order. */
function takeBatch(jobs: Pending[]): Pending[] {
  const names = new Set<string>();
  let n = 0;
  while (n < jobs.length && n < MAX_BATCH && !names.has(jobs[n]?.plan.name ?? '')) {
    names.add(jobs[n]?.plan.name ?? '');
    n++;
  }
  return jobs.splice(0, Math.max(n, 1));
}

function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

interface Prepared {
  job: Pending;
  cert: Forge.pki.Certificate;
  entry: IndexEntry;
  notAfter: Date;
}

function prepare(dir: string, ca: LoadedCa, job: Pending, used: Set<string>): Prepared {
  const { plan } = job;
  if (plan.now.getTime() > ca.notAfter.getTime()) {
    throw new ExitError(`the CA in ${dir} expired on ${ca.notAfter.toISOString()}: it cannot issue certificates`);
  }
  let serial = randomSerial();
  while (used.has(serial)) serial = randomSerial();
  used.add(serial);
  // X.509 times have whole seconds: the index records exactly what the certificate says.
  const notBefore = wholeSeconds(plan.notBefore ?? new Date(plan.now.getTime() - CLOCK_SKEW_MS));
  // A certificate cannot be trusted past its CA, so its lifetime is cut to the CA's.
  const notAfter = wholeSeconds(new Date(Math.min(plan.now.getTime() + plan.validityDays * DAY_MS, ca.notAfter.getTime())));
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new ExitError(`notBefore ${notBefore.toISOString()} is not before notAfter ${notAfter.toISOString()}`);
  }
  const cert = buildLeafCertificate(job.publicKey, ca, { serial, notBefore, notAfter, name: plan.name, role: plan.role, sans: plan.sans, ...(job.keyId === undefined ? {} : { keyId: job.keyId }) });
  const entry: IndexEntry = {
    serial,
    name: plan.name,
    subject: subjectString({ CN: plan.name, OU: plan.role }),
    role: plan.role,
    host: plan.host,
    notBefore: notBefore.toISOString(),
    notAfter: notAfter.toISOString(),
    status: 'valid',
    issuer: ca.serial,
  };
  return { job, cert, entry, notAfter };
}

/** Names whose key this PKI keeps (private/NAME.key, from `pki issue`): one listing per batch instead of a stat per CSR. */
async function keptKeyNames(dir: string): Promise<Set<string>> {
  const keysDir = path.dirname(pkiPaths(dir).key('x'));
  const names = await fs.readdir(keysDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return new Set(names.filter((n) => n.endsWith('.key') && !n.startsWith('.')).map((n) => n.slice(0, -'.key'.length)));
}

/**
 * Why `job` may not have a certificate of its name, if it may not: a name keeps its role while
 * it has a current certificate (a CSR for central1 as a worker would take the central over), and
 * a CSR never replaces a certificate whose key this PKI keeps (that key would then have to go).
 */
function takeoverRefusal(dir: string, job: LeafJob, entries: readonly IndexEntry[], keptKeys: ReadonlySet<string>): InputError | undefined {
  const { name, role } = job.plan;
  const current = entries.find((e) => e.name === name && e.status === 'valid');
  if (current !== undefined && current.role !== role) {
    return inputError(
      `${name} already has a current ${current.role} certificate (serial ${current.serial}): a ${role} certificate under that name is refused; revoke it first (\`ovn-deploy pki revoke --dir ${dir} --name ${name}\`) to give the name another role`,
      'name',
    );
  }
  if (job.privateKeyPem === undefined && keptKeys.has(name)) {
    return inputError(
      `${name}'s key is kept in this PKI (${pkiPaths(dir).key(name)}, from \`pki issue\`): renew it with \`pki issue\`, or move that key out of the PKI before a host's CSR takes the name over`,
      'name',
    );
  }
  return undefined;
}

/** Runs inside withPkiLock. Settles every job of the batch. */
async function commitBatch(dir: string, batch: Pending[]): Promise<void> {
  const ca = await loadCa(dir);
  const entries = await readIndex(dir);
  const keptKeys = batch.some((j) => j.privateKeyPem === undefined) ? await keptKeyNames(dir) : new Set<string>();
  const revokedHosts = await readRevokedHosts(dir);
  const used = new Set(entries.map((e) => e.serial));

  // Each signature starts on the threadpool as soon as its certificate is built, so the main
  // thread builds the next one meanwhile.
  const prepared: Prepared[] = [];
  const signing: Promise<string>[] = [];
  for (const job of batch) {
    try {
      const refusal = revokedHostRefusal(dir, job.plan.host, revokedHosts) ?? takeoverRefusal(dir, job, entries, keptKeys);
      if (refusal !== undefined) throw refusal;
      const p = prepare(dir, ca, job, used);
      signing.push(signCertificatePem(p.cert, ca.key));
      prepared.push(p);
    } catch (err) {
      job.reject(err);
    }
  }
  if (prepared.length === 0) return;
  const pems = await Promise.all(signing);

  // Names are unique within a batch, so a name's previous certificates belong to one job.
  for (const p of prepared) {
    for (const e of entries) if (e.name === p.entry.name && e.status === 'valid') e.status = 'superseded';
    entries.push(p.entry);
  }
  const paths = pkiPaths(dir);
  // One durable batch: the index, then the certificates, then the keys. The index goes first so
  // that every certificate file on disk is one the index lists (a crash in between leaves an entry
  // whose file is still the old one: revocable, never an unrecorded certificate). Certificate
  // before key: OVSDB reloads a pair only once both files changed, in that order.
  const writes: FileWrite[] = [{ file: path.resolve(paths.index), content: renderIndex(entries), mode: 0o644 }];
  prepared.forEach((p, i) => writes.push({ file: paths.cert(p.entry.name), content: pems[i] ?? '', mode: 0o644 }));
  for (const p of prepared) {
    if (p.job.privateKeyPem !== undefined) writes.push({ file: paths.key(p.entry.name), content: p.job.privateKeyPem, mode: 0o600 });
  }
  try {
    if (prepared.some((p) => p.job.privateKeyPem !== undefined)) await fs.mkdir(path.dirname(paths.key('x')), { recursive: true, mode: 0o700 });
    await writeFilesAtomic(writes);
    await indexWritten(dir, entries);
  } catch (err) {
    for (const p of prepared) p.job.reject(err);
    return;
  }
  prepared.forEach((p, i) => {
    const { plan } = p.job;
    p.job.resolve({
      serial: p.entry.serial,
      name: plan.name,
      role: plan.role,
      notAfter: p.notAfter,
      certPem: pems[i] ?? '',
      certPath: paths.cert(plan.name),
      ...(p.job.privateKeyPem === undefined ? {} : { keyPath: paths.key(plan.name) }),
    });
  });
}
