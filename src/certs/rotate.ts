/**
 * `ovn-deploy certs rotate`: renews the leaf certificates that are due (or all, with force), with
 * fresh keys, each host's certificate as a small transaction:
 *
 *   back up the certificate -> a new key and CSR ON the host (the key never leaves it) -> sign
 *   the CSR here -> the certificate to the host, then the key into place (the previous kept as
 *   key.prev there) -> check the pair on the host -> reload stunnel (its log must confirm it)
 *   -> verify that the new certificate is in use (a server listener serves the new serial; a
 *   client tunnel carries a new connection).
 *
 * Any failure restores the previous certificate and key, marks the abandoned certificate revoked
 * and the previous one current again in the PKI index, reloads, checks the old certificate is
 * back in use, and reports it. stunnel keeps established connections across a reload, so a
 * rotation does not interrupt OVSDB sessions. Hosts are renewed `concurrency` at a time (default
 * one): a site never has more than that many hosts in the middle of a change, and never more than
 * one central.
 */
import { promises as fs } from 'node:fs';
import { ExitError, inputError } from '../errors.js';
import { pkiPaths } from '../paths.js';
import { readRevokedHosts } from '../pki/host-revocation.js';
import { reinstateCertificate, signCsr } from '../pki/index.js';
import { mapLimit, pollUntil, serializer } from '../tools/retry.js';
import { backupFiles, hostFile, restoreFiles, type Backup } from './backup.js';
import { certFacts, isIssuedBy, type CertFacts } from './cert-facts.js';
import { selectEndpoints, unknownHosts, type Deployment, type TlsEndpoint } from './deployment.js';
import { inspectListener, tunnelCarries } from './probes.js';
import { onePerHost, publishTrustFiles, refreshCrlsIfNeeded } from './publish.js';
import { leafDue } from './renewal.js';

/** How long a reloaded server may take to serve the new certificate (it rebinds its listeners). */
const SERVED_TIMEOUT_MS = 5_000;
/** How long a reloaded client tunnel may take to carry a new connection. */
const TUNNEL_TIMEOUT_MS = 10_000;

/** Test seams: named so that no production caller mistakes them for options. */
export interface RotateTestHooks {
  /** Runs after the new files are installed and checked, right before each stunnel is reloaded. */
  beforeReload?: (endpoint: TlsEndpoint) => Promise<void>;
}

export interface RotateOptions {
  /** Only these hosts' certificates (default: all). */
  hosts?: string[];
  /** Renew even when not due. */
  force?: boolean;
  /** Lifetime of the new certificates (default: the deployment's policy). */
  validityDays?: number;
  /** Renewal window in days (default: last third of the lifetime, at least 7 days). */
  windowDays?: number;
  now?: Date;
  /** Progress lines. */
  say?: (line: string) => void;
  /** The caller already holds the deployment lock (CA rollover). */
  locked?: boolean;
  /** The CA the new certificates must come from (CA rollover checks it). */
  expectIssuer?: { serial: string; certPem: string };
  /** Hosts renewed at the same time (default 1: one host in the middle of a change at a time); centrals always one at a time. */
  concurrency?: number;
  testHooks?: RotateTestHooks;
}

export interface RotationOutcome {
  certName: string;
  hosts: string[];
  action: 'renewed' | 'skipped' | 'rolled-back';
  /** Why it was renewed or skipped, or what failed. */
  reason: string;
  oldSerial: string | null;
  newSerial: string | null;
  notAfter: string | null;
  /** For a rollback: whether the previous certificate was verified in use again. */
  restored?: boolean;
  ms: number;
}

export interface RotateResult {
  outcomes: RotationOutcome[];
  /** Why the CRLs were re-signed, when they were. */
  crlRefreshed: string | null;
  durationMs: number;
}

/** A rotation that failed somewhere; carries the whole result so the CLI can show what did succeed. */
export class RotationError extends ExitError {
  constructor(
    message: string,
    readonly result: RotateResult,
  ) {
    super(message, 1);
    this.name = 'RotationError';
  }
}

interface Unit {
  certName: string;
  endpoints: TlsEndpoint[];
}

/** Endpoints grouped by certificate: one issue per certificate, installed wherever it is used. */
function units(endpoints: readonly TlsEndpoint[]): Unit[] {
  const byName = new Map<string, TlsEndpoint[]>();
  for (const e of endpoints) byName.set(e.certName, [...(byName.get(e.certName) ?? []), e]);
  return [...byName.entries()].map(([certName, eps]) => ({ certName, endpoints: eps }));
}

export async function rotateCertificates(d: Deployment, opts: RotateOptions = {}): Promise<RotateResult> {
  const unknown = unknownHosts(d, opts.hosts);
  if (unknown.length > 0) throw inputError(`no host ${unknown.map((h) => JSON.stringify(h)).join(', ')} in ${d.description} (hosts: ${[...new Set(d.endpoints.map((e) => e.host))].join(', ')})`, '--host');
  const lock = opts.locked === true ? undefined : await d.lock('certs rotate');
  try {
    return await rotateLocked(d, opts);
  } finally {
    await lock?.release();
  }
}

async function rotateLocked(d: Deployment, opts: RotateOptions): Promise<RotateResult> {
  const started = Date.now();
  const now = opts.now ?? new Date();
  const say = opts.say ?? (() => undefined);
  // First, so the reloads below also load a refreshed CRL.
  const crlRefreshed = (await refreshCrlsIfNeeded(d, now)) ?? null;
  if (crlRefreshed !== null) say(`CRLs re-signed: ${crlRefreshed}`);
  // A host whose copy is not the PKI's (it was down, or its file was replaced) gets it now.
  const crlBehind = crlRefreshed === null ? await hostsWithOtherCrl(d) : [];
  if (crlBehind.length > 0) {
    await publishTrustFiles(d, d.endpoints.filter((e) => crlBehind.includes(e.host)), { crl: true });
    say(`the current CRL sent to ${crlBehind.join(', ')} (their copy differed)`);
  }

  const revokedHosts = await readRevokedHosts(d.pkiDir);
  const plans = await Promise.all(
    units(selectEndpoints(d, opts.hosts)).map(async (u) => {
      const first = u.endpoints[0];
      const revoked = first === undefined ? undefined : revokedHosts[first.host];
      if (revoked !== undefined) return { unit: u, facts: undefined, why: undefined, revoked };
      // An unreachable host reads as a missing certificate: its renewal then fails and is reported.
      const pem = first === undefined ? undefined : await d.read(first, first.certPath).catch(() => undefined);
      const facts = pem === undefined ? undefined : certFacts(pem);
      const why =
        facts === undefined
          ? 'certificate missing or unreadable'
          : opts.force === true
            ? 'forced'
            : leafDue(facts.notBefore, facts.notAfter, now, opts.windowDays)
              ? `due (until ${facts.notAfter.toISOString()})`
              : undefined;
      return { unit: u, facts, why, revoked: undefined };
    }),
  );

  const limit = Math.max(1, opts.concurrency ?? 1);
  const turn = serializer();
  const order = startOrder(plans.map((p) => isCentral(p.unit)), limit);
  const renewedInOrder = await mapLimit(
    order.map((i) => plans[i] as (typeof plans)[number]),
    limit,
    async ({ unit, facts, why, revoked }): Promise<RotationOutcome> => {
      if (why === undefined) {
        return {
          certName: unit.certName,
          hosts: unit.endpoints.map((e) => e.host),
          action: 'skipped',
          reason: revoked !== undefined ? `the host was revoked ${revoked.revokedAt} (\`certs reinstate\` first)` : `not due (until ${facts?.notAfter.toISOString() ?? '?'})`,
          oldSerial: facts?.serial ?? null,
          newSerial: null,
          notAfter: facts?.notAfter.toISOString() ?? null,
          ms: 0,
        };
      }
      const renew = () => renewUnit(d, unit, facts, why, opts, say);
      return isCentral(unit) ? turn('central', renew) : renew();
    },
  );
  const outcomes: RotationOutcome[] = new Array<RotationOutcome>(plans.length);
  order.forEach((planIndex, k) => (outcomes[planIndex] = renewedInOrder[k] as RotationOutcome));

  // A re-signed CRL is only read on reload: reload whatever the renewals did not.
  if (crlRefreshed !== null || crlBehind.length > 0) {
    const renewed = new Set(outcomes.filter((o) => o.action !== 'skipped').flatMap((o) => o.hosts));
    const got = (e: TlsEndpoint) => crlRefreshed !== null || crlBehind.includes(e.host);
    await Promise.all(d.endpoints.filter((e) => got(e) && !renewed.has(e.host)).map((e) => d.reload(e)));
  }
  const result: RotateResult = { outcomes, crlRefreshed, durationMs: Date.now() - started };
  const failed = outcomes.filter((o) => o.action === 'rolled-back');
  if (failed.length > 0) {
    const lines = failed.map((o) => `${o.certName} (${o.hosts.join(', ')}): ${o.reason}`);
    throw new RotationError(`certificate rotation failed and was rolled back:\n${lines.join('\n')}`, result);
  }
  return result;
}

/**
 * RAFT members are renewed one at a time whatever the concurrency: a cluster never has two members
 * in the middle of a change (reloads, and a failed renewal's rollback), so it keeps its quorum.
 * Chassis and cms hosts fill the other slots.
 */
const isCentral = (u: Unit) => u.endpoints.some((e) => e.role === 'central');

/**
 * The order units start in (indexes): each central followed by up to `limit - 1` other units, so
 * that a slot seldom waits for the one central turn while chassis could be renewed.
 */
export function startOrder(central: readonly boolean[], limit: number): number[] {
  if (limit <= 1) return central.map((_, i) => i);
  const cs = central.flatMap((c, i) => (c ? [i] : []));
  const others = central.flatMap((c, i) => (c ? [] : [i]));
  const order: number[] = [];
  while (cs.length > 0 || others.length > 0) {
    const c = cs.shift();
    if (c !== undefined) order.push(c);
    order.push(...others.splice(0, c === undefined ? others.length : limit - 1));
  }
  return order;
}

async function renewUnit(d: Deployment, unit: Unit, old: CertFacts | undefined, why: string, opts: RotateOptions, say: (l: string) => void): Promise<RotationOutcome> {
  const started = Date.now();
  const hosts = [...new Set(unit.endpoints.map((e) => e.host))];
  const first = unit.endpoints[0];
  if (first === undefined) throw new Error(`no endpoint for ${unit.certName}`);
  // A certificate is one host's: its endpoints (a central's server and client) share its files.
  if (hosts.length !== 1) throw new Error(`certificate ${unit.certName} is used on several hosts (${hosts.join(', ')}): each host has its own`);
  const base = { certName: unit.certName, hosts, oldSerial: old?.serial ?? null };
  let backups: Backup[];
  try {
    backups = await backupFiles([hostFile(d, first, first.certPath, 0o644)]);
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    say(`${unit.certName} (${hosts.join(', ')}): FAILED (${what}); nothing was changed`);
    return { ...base, action: 'rolled-back', reason: `${what}; nothing was changed`, newSerial: null, notAfter: old?.notAfter.toISOString() ?? null, restored: true, ms: Date.now() - started };
  }

  let newSerial: string | undefined;
  let keyCommitted = false;
  try {
    const csr = await d.newKey(first, { name: unit.certName, sans: first.sans, keyBits: d.leafPolicy.keyBits });
    const issued = await signCsr(d.pkiDir, csr, {
      role: first.role,
      name: unit.certName,
      sans: first.sans,
      host: first.host,
      validityDays: opts.validityDays ?? d.leafPolicy.validityDays,
      file: `${first.host}:${first.certPath}.csr`,
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
    newSerial = issued.serial.replace(/^0+(?=.)/, '');
    if (opts.expectIssuer !== undefined && !isIssuedBy(issued.certPem, opts.expectIssuer.certPem)) {
      throw new ExitError(`the new certificate was not issued by CA ${opts.expectIssuer.serial}`);
    }
    // One step on the host: a client opening the pair meanwhile never gets the new certificate with the old key.
    await d.installPair(first, issued.certPem);
    keyCommitted = true;
    await checkInstalled(d, first, newSerial);
    for (const e of unit.endpoints) await opts.testHooks?.beforeReload?.(e);
    for (const e of unit.endpoints) await d.reload(e);
    for (const e of unit.endpoints) await verifyInUse(d, e, newSerial);
    say(`${unit.certName} (${hosts.join(', ')}): serial ${old?.serial ?? 'none'} -> ${newSerial}, in use (${Date.now() - started} ms)`);
    return { ...base, action: 'renewed', reason: why, newSerial, notAfter: issued.notAfter.toISOString(), ms: Date.now() - started };
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    say(`${unit.certName} (${hosts.join(', ')}): FAILED (${what}); rolling back`);
    const rollback = await rollBack(d, unit, backups, keyCommitted, old, newSerial);
    return {
      ...base,
      action: 'rolled-back',
      reason: `${what}; ${rollback.message}`,
      newSerial: newSerial ?? null,
      notAfter: old?.notAfter.toISOString() ?? null,
      restored: rollback.ok,
      ms: Date.now() - started,
    };
  }
}

/** Hosts whose CRL file is not the PKI's (an unreachable host is left for the next run). */
async function hostsWithOtherCrl(d: Deployment): Promise<string[]> {
  const want = await fs.readFile(pkiPaths(d.pkiDir).crl, 'utf8');
  const behind = await Promise.all(onePerHost(d.endpoints).map(async (e) => ((await d.read(e, e.crlFile).catch(() => want)) === want ? undefined : e.host)));
  return behind.filter((h): h is string => h !== undefined);
}

/** The host holds the new certificate, and its key belongs to it (checked there). */
async function checkInstalled(d: Deployment, e: TlsEndpoint, serial: string): Promise<void> {
  const cert = await d.read(e, e.certPath);
  if (cert === undefined || certFacts(cert)?.serial !== serial) throw new ExitError(`${e.host}: ${e.certPath} does not hold the new certificate ${serial} after installing it`);
  if (!(await d.keyMatches(e))) throw new ExitError(`${e.host}: ${e.keyPath} does not match the new certificate after installing it`);
}

/** The running stunnel uses the certificate `serial` (server) / carries new connections (client). */
async function verifyInUse(d: Deployment, e: TlsEndpoint, serial: string): Promise<void> {
  for (const l of e.stunnel.listeners) {
    let last = '';
    await pollUntil(
      async () => {
        const v = await inspectListener(d.runnerFor(e), l, { cert: e.certPath, key: e.keyPath });
        last = v.servedSerial ?? `nothing (${v.error ?? 'no answer'})`;
        return v.servedSerial === serial ? true : undefined;
      },
      {
        timeoutMs: SERVED_TIMEOUT_MS,
        intervalMs: 100,
        onTimeout: () => new ExitError(`${e.host}: ${l.host}:${l.port} serves ${last} instead of the new certificate ${serial} after the reload`),
      },
    );
  }
  const probe = e.stunnel.tunnelProbe;
  if (probe !== undefined) {
    let last = '';
    await pollUntil(
      async () => {
        const r = await tunnelCarries(d.runnerFor(e), probe, 3);
        last = r.detail;
        return r.ok ? true : undefined;
      },
      { timeoutMs: TUNNEL_TIMEOUT_MS, intervalMs: 200, onTimeout: () => new ExitError(`${e.host}: after the reload, ${last}`) },
    );
  }
}

async function rollBack(
  d: Deployment,
  unit: Unit,
  backups: readonly Backup[],
  keyCommitted: boolean,
  old: CertFacts | undefined,
  abandoned: string | undefined,
): Promise<{ ok: boolean; message: string }> {
  const steps: string[] = [];
  try {
    const first = unit.endpoints[0];
    // backups[0] is the certificate: with the key it goes back in one step on the host, as it came.
    const [cert, ...others] = backups;
    if (keyCommitted && first !== undefined && cert !== undefined) await d.restorePair(first, cert.content);
    else await restoreFiles(cert === undefined ? [] : [cert]);
    await restoreFiles(others);
    steps.push('previous files restored');
    if (abandoned !== undefined && old !== undefined) {
      const previousCertPem = cert?.content;
      await reinstateCertificate(d.pkiDir, { name: unit.certName, previousSerial: old.serial, abandonedSerial: abandoned, ...(previousCertPem === undefined ? {} : { previousCertPem }) });
      await publishTrustFiles(d, d.endpoints, { crl: true });
      steps.push(`new certificate ${abandoned} revoked`);
    }
    for (const e of unit.endpoints) await d.reload(e);
    if (old !== undefined) for (const e of unit.endpoints) await verifyInUse(d, e, old.serial);
    steps.push(old === undefined ? 'stunnel reloaded' : `previous certificate ${old.serial} in use again`);
    return { ok: true, message: `rolled back: ${steps.join(', ')}` };
  } catch (err) {
    return { ok: false, message: `ROLLBACK INCOMPLETE after: ${steps.join(', ') || 'nothing'}; ${err instanceof Error ? err.message : String(err)}` };
  }
}
