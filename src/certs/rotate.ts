/**
 * `ovn-deploy certs rotate`: renews the leaf certificates that are due (or all, with force), with
 * fresh keys, one certificate at a time as a small transaction:
 *
 *   back up the files -> issue (PKI) -> install on every endpoint using it -> check the pair
 *   -> SIGHUP stunnel (its log must confirm the reload) -> verify that the new certificate is in
 *   use (a server listener serves the new serial; a client tunnel carries a new connection).
 *
 * Any failure restores the previous files, marks the abandoned certificate revoked and the
 * previous one current again in the PKI index, reloads, checks the old certificate is back in
 * use, and reports it. stunnel keeps established connections across a reload, so a rotation does
 * not interrupt OVSDB sessions.
 */
import { promises as fs } from 'node:fs';
import { ExitError, inputError } from '../errors.js';
import { pkiPaths } from '../paths.js';
import { issueCertificate, reinstateCertificate } from '../pki/index.js';
import { pollUntil } from '../tools/retry.js';
import { backupFiles, hostFile, pkiFile, restoreFiles, type Backup, type FileRef } from './backup.js';
import { certFacts, isIssuedBy, keyMatchesCert, type CertFacts } from './cert-facts.js';
import { selectEndpoints, unknownHosts, type Deployment, type TlsEndpoint } from './deployment.js';
import { inspectListener, tunnelCarries } from './probes.js';
import { isPkiFile, publishTrustFiles, refreshCrlsIfNeeded } from './publish.js';
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

  const plans = await Promise.all(
    units(selectEndpoints(d, opts.hosts)).map(async (u) => {
      const first = u.endpoints[0];
      const pem = first === undefined ? undefined : await d.read(first, first.certPath);
      const facts = pem === undefined ? undefined : certFacts(pem);
      const why =
        facts === undefined
          ? 'certificate missing or unreadable'
          : opts.force === true
            ? 'forced'
            : leafDue(facts.notBefore, facts.notAfter, now, opts.windowDays)
              ? `due (until ${facts.notAfter.toISOString()})`
              : undefined;
      return { unit: u, facts, why };
    }),
  );

  const outcomes = await Promise.all(
    plans.map(async ({ unit, facts, why }): Promise<RotationOutcome> => {
      if (why === undefined) {
        return {
          certName: unit.certName,
          hosts: unit.endpoints.map((e) => e.host),
          action: 'skipped',
          reason: `not due (until ${facts?.notAfter.toISOString() ?? '?'})`,
          oldSerial: facts?.serial ?? null,
          newSerial: null,
          notAfter: facts?.notAfter.toISOString() ?? null,
          ms: 0,
        };
      }
      return renewUnit(d, unit, facts, why, opts, say);
    }),
  );

  // A re-signed CRL is only read on reload: reload whatever the renewals did not.
  if (crlRefreshed !== null) {
    const renewed = new Set(outcomes.filter((o) => o.action !== 'skipped').flatMap((o) => o.hosts));
    await Promise.all(d.endpoints.filter((e) => !renewed.has(e.host)).map((e) => d.reload(e)));
  }
  const result: RotateResult = { outcomes, crlRefreshed, durationMs: Date.now() - started };
  const failed = outcomes.filter((o) => o.action === 'rolled-back');
  if (failed.length > 0) {
    const lines = failed.map((o) => `${o.certName} (${o.hosts.join(', ')}): ${o.reason}`);
    throw new RotationError(`certificate rotation failed and was rolled back:\n${lines.join('\n')}`, result);
  }
  return result;
}

/** The files one certificate lives in: on every endpoint using it, and in the PKI directory. */
function filesOf(d: Deployment, unit: Unit): FileRef[] {
  const pki = pkiPaths(d.pkiDir);
  const refs: FileRef[] = [pkiFile(d.pkiDir, pki.cert(unit.certName), 0o644), pkiFile(d.pkiDir, pki.key(unit.certName), 0o600)];
  for (const e of unit.endpoints) {
    if (!isPkiFile(d, e, e.certPath, pki.cert(unit.certName))) refs.push(hostFile(d, e, e.certPath, 0o644));
    if (!isPkiFile(d, e, e.keyPath, pki.key(unit.certName))) refs.push(hostFile(d, e, e.keyPath, 0o600));
  }
  return refs;
}

async function renewUnit(d: Deployment, unit: Unit, old: CertFacts | undefined, why: string, opts: RotateOptions, say: (l: string) => void): Promise<RotationOutcome> {
  const started = Date.now();
  const hosts = unit.endpoints.map((e) => e.host);
  const first = unit.endpoints[0];
  if (first === undefined) throw new Error(`no endpoint for ${unit.certName}`);
  const base = { certName: unit.certName, hosts, oldSerial: old?.serial ?? null };
  const backups = await backupFiles(filesOf(d, unit));

  let newSerial: string | undefined;
  try {
    const issued = await issueCertificate(d.pkiDir, {
      name: unit.certName,
      role: first.role,
      sans: first.sans,
      host: first.host,
      validityDays: opts.validityDays ?? d.leafPolicy.validityDays,
      keyBits: d.leafPolicy.keyBits,
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
    newSerial = issued.serial.replace(/^0+(?=.)/, '');
    const keyPem = await fs.readFile(pkiPaths(d.pkiDir).key(unit.certName), 'utf8');
    if (!keyMatchesCert(keyPem, issued.certPem)) throw new ExitError('the PKI wrote a key that does not match the new certificate');
    if (opts.expectIssuer !== undefined && !isIssuedBy(issued.certPem, opts.expectIssuer.certPem)) {
      throw new ExitError(`the new certificate was not issued by CA ${opts.expectIssuer.serial}`);
    }
    await installAndCheck(d, unit, issued.certPem, keyPem, newSerial);
    for (const e of unit.endpoints) await opts.testHooks?.beforeReload?.(e);
    for (const e of unit.endpoints) await d.reload(e);
    for (const e of unit.endpoints) await verifyInUse(d, e, newSerial);
    say(`${unit.certName} (${hosts.join(', ')}): serial ${old?.serial ?? 'none'} -> ${newSerial}, in use (${Date.now() - started} ms)`);
    return { ...base, action: 'renewed', reason: why, newSerial, notAfter: issued.notAfter.toISOString(), ms: Date.now() - started };
  } catch (err) {
    const what = err instanceof Error ? err.message : String(err);
    say(`${unit.certName} (${hosts.join(', ')}): FAILED (${what}); rolling back`);
    const rollback = await rollBack(d, unit, backups, old, newSerial);
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

/** Writes the new pair to every endpoint (certificate first) and reads it back. */
async function installAndCheck(d: Deployment, unit: Unit, certPem: string, keyPem: string, serial: string): Promise<void> {
  const pki = pkiPaths(d.pkiDir);
  for (const e of unit.endpoints) {
    if (!isPkiFile(d, e, e.certPath, pki.cert(unit.certName))) await d.write(e, e.certPath, certPem, 0o644);
    if (!isPkiFile(d, e, e.keyPath, pki.key(unit.certName))) await d.write(e, e.keyPath, keyPem, 0o600);
    const [cert, key] = await Promise.all([d.read(e, e.certPath), d.read(e, e.keyPath)]);
    if (cert === undefined || certFacts(cert)?.serial !== serial) throw new ExitError(`${e.host}: ${e.certPath} does not hold the new certificate ${serial} after installing it`);
    if (key === undefined || !keyMatchesCert(key, cert)) throw new ExitError(`${e.host}: ${e.keyPath} does not match the new certificate after installing it`);
  }
}

/** The running stunnel uses the certificate `serial` (server) / carries new connections (client). */
async function verifyInUse(d: Deployment, e: TlsEndpoint, serial: string): Promise<void> {
  for (const l of e.stunnel.listeners) {
    let last = '';
    await pollUntil(
      async () => {
        const v = await inspectListener(d.runner, l, { cert: e.certPath, key: e.keyPath });
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
        const r = await tunnelCarries(d.runner, probe, 3);
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
  old: CertFacts | undefined,
  abandoned: string | undefined,
): Promise<{ ok: boolean; message: string }> {
  const steps: string[] = [];
  try {
    await restoreFiles(backups);
    steps.push('previous files restored');
    if (abandoned !== undefined && old !== undefined) {
      await reinstateCertificate(d.pkiDir, { name: unit.certName, previousSerial: old.serial, abandonedSerial: abandoned });
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
