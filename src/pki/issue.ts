/**
 * Issuing leaf certificates: with a fresh key (`pki issue`) or for a CSR whose key stays on its
 * host (`pki sign-csr`). Slow work (key generation, CSR checks) happens before the lock; the
 * signature (~1-3 ms natively) and the writes happen in leaf-batch.ts.
 */
import path from 'node:path';
import forge from './forge.js';
import { InputError, inputError, type Problem } from '../errors.js';
import { MAX_DAYS, loadCa } from './ca.js';
import { prefetchIndex } from './cert-index.js';
import { keyIdOfSpkiPem, readVerifiedCsr } from './csr.js';
import { commitLeaf, commitLeaves, type LeafJob, type LeafPlan } from './leaf-batch.js';
import { DEFAULT_LEAF_KEY_BITS, generateKeyPair, type KeyPairPem } from './keygen.js';

export { DEFAULT_LEAF_KEY_BITS } from './keygen.js';
import type { IssuedCertificate, IssueRequest, LeafRole, SignCsrOptions } from './types.js';
import { checkKeyBits, checkName, checkPositiveInt, checkRole, parseSans, sanList, throwIfProblems } from './validate.js';

export const DEFAULT_LEAF_DAYS = 730;

function planLeaf(
  req: { name: string; role: string; sans?: string[]; host?: string; validityDays?: number; now?: Date; notBefore?: Date },
  problems: Problem[],
): LeafPlan {
  checkName(req.name, 'name', problems);
  const roleOk = checkRole(req.role, 'role', problems);
  checkPositiveInt(req.validityDays, 'validityDays', problems, MAX_DAYS);
  if (req.host !== undefined && req.host.trim() === '') problems.push({ path: 'host', message: 'must not be empty' });
  const extra = parseSans(req.sans ?? [], 'sans', problems);
  const role = req.role as LeafRole;
  const sans = roleOk ? sanList(role, req.name, extra, problems, 'name') : extra;
  return {
    name: req.name,
    role,
    host: req.host ?? req.name,
    sans,
    validityDays: req.validityDays ?? DEFAULT_LEAF_DAYS,
    now: req.now ?? new Date(),
    notBefore: req.notBefore,
  };
}

function freshKeyJob(plan: LeafPlan, pair: KeyPairPem): LeafJob {
  return { plan, publicKey: forge.pki.publicKeyFromPem(pair.publicKeyPem), keyId: keyIdOfSpkiPem(pair.publicKeyPem), privateKeyPem: pair.privateKeyPem };
}

/**
 * A certificate with a fresh private key (a new key every time, also on renewal). `keyPair`: a
 * key already being made for this request (of `req.keyBits`), e.g. started before this module
 * loaded; it is used for this certificate only.
 */
export async function issueCertificate(dir: string, req: IssueRequest & { now?: Date; notBefore?: Date }, opts: { keyPair?: Promise<KeyPairPem> } = {}): Promise<IssuedCertificate> {
  const problems: Problem[] = [];
  const plan = planLeaf(req, problems);
  checkKeyBits(req.keyBits, 'keyBits', problems);
  throwIfProblems(problems);
  await loadCa(dir); // fail fast on an uninitialised directory, before generating a key
  const keyPair = opts.keyPair ?? generateKeyPair(req.keyBits ?? DEFAULT_LEAF_KEY_BITS);
  keyPair.catch(() => undefined); // awaited below, after the prefetch: not an unhandled rejection meanwhile
  await prefetchIndex(dir); // while the key is made
  const pair = await keyPair;
  return commitLeaf(dir, freshKeyJob(plan, pair));
}

/**
 * Several certificates with fresh keys as one batch (`up` issuing for every sandbox node): every
 * request is checked first, the keys are made in parallel, then all are written under one lock
 * with one index write.
 */
export async function issueCertificates(dir: string, reqs: readonly (IssueRequest & { now?: Date; notBefore?: Date })[]): Promise<IssuedCertificate[]> {
  const problems: Problem[] = [];
  const names = new Set<string>();
  const plans = reqs.map((req, i) => {
    const mine: Problem[] = [];
    const plan = planLeaf(req, mine);
    checkKeyBits(req.keyBits, 'keyBits', mine);
    if (names.has(req.name)) mine.push({ path: 'name', message: `${req.name} is requested twice: one certificate per name in a batch` });
    names.add(req.name);
    problems.push(...mine.map((p) => ({ ...p, path: reqs.length > 1 ? `[${i}].${p.path}` : p.path })));
    return plan;
  });
  throwIfProblems(problems);
  await loadCa(dir);
  const pairs = await Promise.all(reqs.map((req) => generateKeyPair(req.keyBits ?? DEFAULT_LEAF_KEY_BITS)));
  return commitLeaves(
    dir,
    plans.map((plan, i) => freshKeyJob(plan, pairs[i] as KeyPairPem)),
  );
}

/** Checks a CSR and plans its certificate (no lock, no write). */
function csrJob(csrPem: string, opts: SignCsrOptions): LeafJob {
  const file = opts.file ?? 'CSR';
  const csr = readVerifiedCsr(csrPem, file);
  const name = opts.name ?? csr.commonName;
  if (name === undefined) throw inputError('the request has no CN: give the certificate a name (--name)', 'subject', file);
  const problems: Problem[] = [];
  const plan = planLeaf({ ...opts, name }, problems);
  if (opts.name === undefined && problems.some((p) => p.path === 'name')) {
    // The name came from the CSR: say so, and where.
    problems.forEach((p) => {
      if (p.path === 'name') Object.assign(p, { file, path: 'subject.CN' });
    });
  }
  throwIfProblems(problems);
  return { plan, publicKey: csr.publicKey, keyId: csr.keyId, privateKeyPem: undefined };
}

/** A certificate for a CSR: the host keeps its key, only the certificate is written. */
/**
 * loadCa in call order per directory: its two stats finish in any order, and concurrent signCsr
 * calls must reach the commit queue in the order they were made (the last call's certificate is
 * the one a name ends with).
 */
const caChecks = new Map<string, Promise<unknown>>();
function loadCaInOrder(dir: string): Promise<unknown> {
  const key = path.resolve(dir);
  const check = (caChecks.get(key) ?? Promise.resolve()).then(() => loadCa(dir));
  const tail = check.catch(() => undefined);
  caChecks.set(key, tail);
  void tail.then(() => {
    if (caChecks.get(key) === tail) caChecks.delete(key);
  });
  return check;
}

export async function signCsr(dir: string, csrPem: string, opts: SignCsrOptions): Promise<IssuedCertificate> {
  const job = csrJob(csrPem, opts);
  await loadCaInOrder(dir); // "no CA" rather than a missing lock directory (cached: two stat calls)
  return commitLeaf(dir, job);
}

/**
 * Several CSRs as one batch: every request is checked first (all problems reported at once,
 * nothing signed), then all are signed under one lock with one index write and one flush.
 */
export async function signCsrs(dir: string, requests: readonly { csrPem: string; opts: SignCsrOptions }[]): Promise<IssuedCertificate[]> {
  const jobs: LeafJob[] = [];
  const problems: Problem[] = [];
  const byName = new Map<string, string>();
  for (const r of requests) {
    try {
      const job = csrJob(r.csrPem, r.opts);
      const first = byName.get(job.plan.name);
      if (first !== undefined) problems.push({ file: r.opts.file ?? 'CSR', path: 'subject.CN', message: `${job.plan.name} is also requested by ${first}: one certificate per name in a batch` });
      byName.set(job.plan.name, r.opts.file ?? 'CSR');
      jobs.push(job);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      problems.push(...err.problems);
    }
  }
  throwIfProblems(problems);
  await loadCa(dir);
  return commitLeaves(dir, jobs);
}
