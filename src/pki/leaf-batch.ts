/**
 * Group commit for leaf certificates. Requests for one PKI directory queue up while a batch is
 * being written; the next batch then takes the lock once, reads the index once, signs all its
 * certificates on the threadpool, writes their files in parallel and the index once. A lone
 * request is a batch of one, so its latency is unchanged; many concurrent requests (a deploy
 * issuing for every chassis) share the lock, the index rewrite and the fsyncs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { ExitError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { CLOCK_SKEW_MS, DAY_MS, loadCa, type LoadedCa } from './ca.js';
import { readIndex, writeIndex } from './cert-index.js';
import { withPkiLock } from './lock.js';
import { signCertificateAsync } from './native-sign.js';
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
  publicKey: forge.pki.PublicKey;
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
  cert: forge.pki.Certificate;
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
  const cert = buildLeafCertificate(job.publicKey, ca, { serial, notBefore, notAfter, name: plan.name, role: plan.role, sans: plan.sans });
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

async function writeLeafFiles(dir: string, name: string, certPem: string, privateKeyPem: string | undefined, reissue: boolean): Promise<void> {
  const paths = pkiPaths(dir);
  // Certificate before key: OVSDB reloads a pair only once both files changed, in that order.
  await writeFileAtomic(paths.cert(name), certPem, 0o644);
  if (privateKeyPem !== undefined) {
    await fs.mkdir(path.dirname(paths.key(name)), { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.key(name), privateKeyPem, 0o600);
  } else if (reissue) {
    // A key left from an earlier `issue` of this name no longer matches the certificate.
    await fs.rm(paths.key(name), { force: true });
  }
}

/** Runs inside withPkiLock. Settles every job of the batch. */
async function commitBatch(dir: string, batch: Pending[]): Promise<void> {
  const ca = await loadCa(dir);
  const entries = await readIndex(dir);
  const used = new Set(entries.map((e) => e.serial));

  const prepared: Prepared[] = [];
  for (const job of batch) {
    try {
      prepared.push(prepare(dir, ca, job, used));
    } catch (err) {
      job.reject(err);
    }
  }
  await Promise.all(prepared.map((p) => signCertificateAsync(p.cert, ca.key)));

  // Names are unique within a batch, so each name's flips belong to exactly one job.
  const flipped = new Map<string, IndexEntry[]>();
  const known = new Set(entries.map((e) => e.name));
  for (const p of prepared) {
    const mine: IndexEntry[] = [];
    for (const e of entries) {
      if (e.name === p.entry.name && e.status === 'valid') {
        e.status = 'superseded';
        mine.push(e);
      }
    }
    flipped.set(p.entry.name, mine);
    entries.push(p.entry);
  }
  const pems = prepared.map((p) => forge.pki.certificateToPem(p.cert));
  // Files and index are independent, so their fsyncs overlap on the threadpool.
  const [files] = await Promise.all([
    Promise.allSettled(prepared.map((p, i) => writeLeafFiles(dir, p.entry.name, pems[i] ?? '', p.job.privateKeyPem, known.has(p.entry.name)))),
    writeIndex(dir, entries),
  ]);
  const failed = new Set(prepared.filter((_, i) => files[i]?.status === 'rejected').map((p) => p.entry.serial));
  if (failed.size > 0) {
    // Rare (disk full, permissions): the index must not list certificates that were not written,
    // and what they would have superseded is still the current certificate.
    for (const p of prepared) {
      if (failed.has(p.entry.serial)) for (const e of flipped.get(p.entry.name) ?? []) e.status = 'valid';
    }
    await writeIndex(
      dir,
      entries.filter((e) => !failed.has(e.serial)),
    );
  }
  prepared.forEach((p, i) => {
    const r = files[i];
    if (r?.status === 'rejected') {
      p.job.reject(r.reason);
      return;
    }
    const { plan } = p.job;
    const keyPath = p.job.privateKeyPem === undefined ? undefined : pkiPaths(dir).key(plan.name);
    p.job.resolve({
      serial: p.entry.serial,
      name: plan.name,
      role: plan.role,
      notAfter: p.notAfter,
      certPem: pems[i] ?? '',
      certPath: pkiPaths(dir).cert(plan.name),
      ...(keyPath === undefined ? {} : { keyPath }),
    });
  });
}
