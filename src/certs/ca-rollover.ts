/**
 * `ovn-deploy certs ca-rollover`: replaces the CA without a moment in which two peers disagree
 * about whom to trust. Three phases, each finished on every host before the next may start:
 *
 *   1 trust  - the new CA is added to every trust bundle (with a CRL for it), every stunnel reloaded;
 *   2 issue  - the new CA becomes the issuer and every leaf is re-issued from it (rotation with
 *              rollback, see rotate.ts);
 *   3 retire - the old CA is removed from every bundle (and its CRL from the CRL files).
 *
 * Why the order matters: a peer that does not trust the new CA yet rejects a leaf from it (phase
 * 2 before 1), and a peer that still presents an old-CA leaf is rejected once the old CA is gone
 * (phase 3 before 2). So each phase first re-checks, live, that every host completed the previous
 * one, and refuses (exit 2) otherwise. Progress is kept in PKI/rollover.json after every host, so
 * an interrupted rollover resumes where it stopped.
 */
import { X509Certificate } from 'node:crypto';
import { ExitError, inputError } from '../errors.js';
import {
  createNextCa,
  loadCa,
  loadCaBySerial,
  normalizeSerial,
  readBundle,
  readIndex,
  setTrustedCas,
  storeCurrentCa,
  switchIssuer,
  commonNameOf,
} from '../pki/index.js';
import { bundleCas, certFacts, crlFacts, isIssuedBy } from './cert-facts.js';
import { endpointsOf, hostsOf, unknownHosts, type Deployment, type TlsEndpoint } from './deployment.js';
import { inspectListener, tunnelCarries } from './probes.js';
import { publishTrustFilesEach } from './publish.js';
import { rotateCertificates, RotationError, type RotateTestHooks } from './rotate.js';
import {
  currentPhase,
  inProgress,
  newRolloverState,
  PHASE_TITLES,
  PHASES,
  pendingHosts,
  readRolloverState,
  writeRolloverState,
  type CaRef,
  type RolloverPhase,
  type RolloverState,
} from './rollover-state.js';

/** Out-of-order or premature phases are refused like bad input: nothing was changed. */
export const REFUSED_EXIT = 2;

export interface RolloverOptions {
  /** Run only this phase (default: continue from where the rollover stands to its end). */
  phase?: RolloverPhase;
  /** Phase issue: hosts re-issued at the same time (default 1; centrals always one at a time). */
  concurrency?: number;
  /** Only these hosts (default: all). The next phase still needs every host. */
  hosts?: string[];
  /** Key size of the new CA (default: the current CA's). */
  keyBits?: number;
  /** Lifetime of the new CA in days (default: the current CA's). */
  validityDays?: number;
  now?: Date;
  say?: (line: string) => void;
  testHooks?: RotateTestHooks;
}

export interface PhaseRun {
  phase: RolloverPhase;
  hosts: string[];
  ms: number;
}

export interface RolloverResult {
  state: RolloverState;
  ran: PhaseRun[];
  /** Hosts still pending per phase after this run. */
  pending: Record<RolloverPhase, string[]>;
  complete: boolean;
  /** Things to know (for example old-CA certificates outside the deployment that stop working). */
  notes: string[];
  durationMs: number;
}

interface CaView {
  ref: CaRef;
  certPem: string;
}

async function caView(pkiDir: string, serial: string): Promise<CaView> {
  const ca = await loadCaBySerial(pkiDir, serial);
  return { ref: { serial: normalizeSerial(ca.serial), commonName: commonNameOf(new X509Certificate(ca.certPem).subject) }, certPem: ca.certPem };
}

// ---------------------------------------------------------------------------------------------
// Live checks: has an endpoint completed a phase?

type Verdict = { ok: true; detail: string } | { ok: false; why: string };

async function trustFilesHold(d: Deployment, e: TlsEndpoint, ca: CaRef, wanted: boolean): Promise<string | undefined> {
  const [bundle, crl] = await Promise.all([d.read(e, e.caFile), d.read(e, e.crlFile)]);
  const trusted = bundleCas(bundle, e.caFile).some((c) => c.serial === ca.serial);
  if (trusted !== wanted) return `${e.caFile} ${wanted ? 'does not list' : 'still lists'} CA "${ca.commonName}"`;
  if (wanted && !crlFacts(crl).some((c) => c.issuerCommonName === ca.commonName)) return `${e.crlFile} has no CRL for CA "${ca.commonName}" (stunnel would reject its peers)`;
  return undefined;
}

/** What the running server accepts: every listener must (or must not) list the CA. */
async function listenersAccept(d: Deployment, e: TlsEndpoint, ca: CaRef, wanted: boolean): Promise<string | undefined> {
  for (const l of e.stunnel.listeners) {
    const v = await inspectListener(d.runnerFor(e), l, { cert: e.certPath, key: e.keyPath });
    if (v.acceptedCas.length === 0) return `${l.host}:${l.port} did not answer with its accepted CAs (${v.error ?? 'no answer'})`;
    if (v.acceptedCas.includes(ca.commonName) !== wanted) {
      return `the running stunnel on ${l.host}:${l.port} ${wanted ? 'does not accept' : 'still accepts'} certificates from CA "${ca.commonName}" (it accepts: ${v.acceptedCas.join('; ')})`;
    }
  }
  return undefined;
}

async function tunnelOk(d: Deployment, e: TlsEndpoint): Promise<string | undefined> {
  if (e.stunnel.tunnelProbe === undefined) return undefined;
  const r = await tunnelCarries(d.runnerFor(e), e.stunnel.tunnelProbe, 5);
  return r.ok ? undefined : r.detail;
}

async function verifyEndpoint(d: Deployment, e: TlsEndpoint, phase: RolloverPhase, state: RolloverState, newCa: CaView): Promise<Verdict> {
  const recorded = state.phases[phase][e.host] !== undefined;
  let why: string | undefined;
  if (phase === 'trust') {
    why = (await trustFilesHold(d, e, state.newCa, true)) ?? (await listenersAccept(d, e, state.newCa, true));
    // A client's trust is only visible from the inside: its files plus the recorded reload.
    if (why === undefined && e.stunnel.listeners.length === 0 && !recorded) why = `${e.stunnel.serviceName} has not been reloaded since the new CA was added`;
  } else if (phase === 'issue') {
    const pem = await d.read(e, e.certPath);
    const facts = pem === undefined ? undefined : certFacts(pem);
    if (pem === undefined || facts === undefined) why = `${e.certPath} is missing`;
    else if (!isIssuedBy(pem, newCa.certPem)) why = `${e.certPath} (serial ${facts.serial}) is still issued by "${facts.issuerCommonName}"`;
    else {
      for (const l of e.stunnel.listeners) {
        const v = await inspectListener(d.runnerFor(e), l, { cert: e.certPath, key: e.keyPath });
        if (v.servedSerial !== facts.serial) why ??= `${l.host}:${l.port} serves ${v.servedSerial ?? 'nothing'}, not the new-CA certificate ${facts.serial}`;
      }
      if (why === undefined && e.stunnel.listeners.length === 0 && !recorded) why = `${e.stunnel.serviceName} has not been reloaded with its new-CA certificate`;
    }
  } else {
    why = (await trustFilesHold(d, e, state.oldCa, false)) ?? (await listenersAccept(d, e, state.oldCa, false));
    if (why === undefined && e.stunnel.listeners.length === 0 && !recorded) why = `${e.stunnel.serviceName} has not been reloaded since the old CA was removed`;
  }
  why ??= await tunnelOk(d, e);
  return why === undefined ? { ok: true, detail: `${e.stunnel.serviceName}: verified` } : { ok: false, why };
}

/** A host that cannot be reached is not verified: its verdict says why (the phase names it). */
async function verifyHost(d: Deployment, host: string, phase: RolloverPhase, state: RolloverState, newCa: CaView): Promise<Verdict> {
  const details: string[] = [];
  for (const e of endpointsOf(d, host)) {
    const v = await verifyEndpoint(d, e, phase, state, newCa).catch((err: unknown): Verdict => ({ ok: false, why: err instanceof Error ? err.message : String(err) }));
    if (!v.ok) return v;
    details.push(v.detail);
  }
  return { ok: true, detail: details.join('; ') };
}

/**
 * `hosts` verified at once, verdicts in their order: hosts are independent, and an unreachable
 * one then costs one connect timeout, not one per host after it. `stateFor` gives each host the
 * state it is judged against.
 */
async function verifyHosts(d: Deployment, hosts: readonly string[], phase: RolloverPhase, stateFor: (host: string) => RolloverState, newCa: CaView): Promise<Verdict[]> {
  return Promise.all(hosts.map((h) => verifyHost(d, h, phase, stateFor(h), newCa)));
}

/** `state` with `host` tentatively recorded as done with `phase`. */
function tentatively(state: RolloverState, phase: RolloverPhase, host: string): RolloverState {
  return { ...state, phases: { ...state.phases, [phase]: { ...state.phases[phase], [host]: { doneAt: '', detail: '' } } } };
}

const CONSEQUENCE: Record<RolloverPhase, string> = {
  trust: 'a certificate from the new CA would be rejected by them',
  issue: 'removing the old CA would lock out their old-CA certificates',
  retire: '',
};

/** Refuses (exit 2) unless every host of the deployment has completed `previous`, checked live. */
async function requireComplete(d: Deployment, previous: RolloverPhase, next: RolloverPhase, state: RolloverState, newCa: CaView, sel: string): Promise<void> {
  const problems: string[] = [];
  const all = hostsOf(d);
  const verdicts = await verifyHosts(d, all, previous, () => state, newCa);
  for (const [i, host] of all.entries()) {
    const v = verdicts[i] as Verdict;
    if (state.phases[previous][host] === undefined) problems.push(`${host}: has not completed phase ${previous}${v.ok ? '' : ` (${v.why})`}`);
    else if (!v.ok) problems.push(`${host}: recorded as done with phase ${previous}, but ${v.why}`);
  }
  if (problems.length > 0) {
    throw new ExitError(
      `refusing phase ${PHASE_TITLES[next]}: not every host has completed phase ${PHASE_TITLES[previous]}; ${CONSEQUENCE[previous]}:\n` +
        `${problems.map((p) => `  ${p}`).join('\n')}\n` +
        `finish it first: ovn-deploy certs ca-rollover ${sel} --phase ${previous}`,
      REFUSED_EXIT,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The phases.

async function runTrust(d: Deployment, hosts: string[], state: RolloverState, newCa: CaView, opts: RolloverOptions): Promise<void> {
  const bundle = await readBundle(d.pkiDir);
  const want = [state.oldCa.serial, state.newCa.serial];
  if (bundle.length !== 2 || !want.every((s) => bundle.some((b) => b.serial === s))) {
    await setTrustedCas(d.pkiDir, want, opts.now === undefined ? {} : { now: opts.now });
  }
  await publishAndReload(d, hosts, opts);
  await recordHosts(d, hosts, 'trust', state, newCa, opts);
}

async function runIssue(d: Deployment, hosts: string[], state: RolloverState, newCa: CaView, opts: RolloverOptions): Promise<void> {
  const current = await loadCa(d.pkiDir);
  if (normalizeSerial(current.serial) !== state.newCa.serial || state.issuerSwitchedAt === undefined) {
    await switchIssuer(d.pkiDir, state.newCa.serial, opts.now === undefined ? {} : { now: opts.now });
    state.issuerSwitchedAt = new Date().toISOString();
    await writeRolloverState(d.pkiDir, state);
    opts.say?.(`the new CA "${state.newCa.commonName}" is now the issuer`);
  }
  // Already re-issued leaves (an interrupted run) are kept; only old-CA ones are renewed.
  const verdicts = await verifyHosts(d, hosts, 'issue', (h) => tentatively(state, 'issue', h), newCa);
  const todo = hosts.filter((_, i) => verdicts[i]?.ok !== true);
  let failure: RotationError | undefined;
  if (todo.length > 0) {
    try {
      await rotateCertificates(d, {
        hosts: todo,
        force: true,
        locked: true,
        ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
        expectIssuer: { serial: state.newCa.serial, certPem: newCa.certPem },
        ...(opts.say === undefined ? {} : { say: opts.say }),
        ...(opts.testHooks === undefined ? {} : { testHooks: opts.testHooks }),
      });
    } catch (err) {
      if (!(err instanceof RotationError)) throw err;
      failure = err;
    }
  }
  // Hosts whose renewal went through are recorded even when another host's failed.
  await recordHosts(d, hosts, 'issue', state, newCa, opts);
  if (failure !== undefined) throw failure;
}

async function runRetire(d: Deployment, hosts: string[], state: RolloverState, newCa: CaView, opts: RolloverOptions, notes: string[]): Promise<void> {
  const leftovers = (await readIndex(d.pkiDir)).filter((e) => e.status === 'valid' && normalizeSerial(e.issuer) === state.oldCa.serial);
  if (leftovers.length > 0) {
    notes.push(`still valid from the old CA and no longer trusted once it is removed: ${leftovers.map((e) => `${e.name} (${e.host}, serial ${e.serial})`).join(', ')}; renew them with \`ovn-deploy pki issue\``);
  }
  const bundle = await readBundle(d.pkiDir);
  if (bundle.some((b) => b.serial === state.oldCa.serial)) await setTrustedCas(d.pkiDir, [state.newCa.serial], opts.now === undefined ? {} : { now: opts.now });
  await publishAndReload(d, hosts, opts);
  await recordHosts(d, hosts, 'retire', state, newCa, opts);
}

/**
 * The trust files to every host of `hosts` and a reload of each stunnel; a host that cannot be
 * written to or reloaded does not stop the others: recordHosts finds it unverified and names it.
 */
async function publishAndReload(d: Deployment, hosts: readonly string[], opts: RolloverOptions): Promise<void> {
  const failed = await publishTrustFilesEach(d, hosts.flatMap((h) => endpointsOf(d, h)), { bundle: true, crl: true });
  for (const f of failed) opts.say?.(`${f.host}: the trust files could not be written: ${f.why}`);
  const reached = hosts.filter((h) => !failed.some((f) => f.host === h)).flatMap((h) => endpointsOf(d, h));
  await Promise.all(
    reached.map((e) =>
      d.reload(e).catch((err: unknown) => {
        opts.say?.(`${e.host}: ${e.stunnel.serviceName} did not reload: ${err instanceof Error ? err.message : String(err)}`);
      }),
    ),
  );
}

/** Verifies each host after its reload and records the ones that passed; throws naming the others. */
async function recordHosts(d: Deployment, hosts: string[], phase: RolloverPhase, state: RolloverState, newCa: CaView, opts: RolloverOptions): Promise<void> {
  const failed: string[] = [];
  // Tentatively recorded: for a client side, the reload that just succeeded is the evidence.
  const verdicts = await verifyHosts(d, hosts, phase, (h) => tentatively(state, phase, h), newCa);
  let passed = false;
  for (const [i, host] of hosts.entries()) {
    const v = verdicts[i] as Verdict;
    if (v.ok) {
      state.phases[phase][host] = { doneAt: (opts.now ?? new Date()).toISOString(), detail: v.detail };
      passed = true;
      opts.say?.(`phase ${phase}: ${host} done`);
    } else {
      failed.push(`${host}: ${v.why}`);
    }
  }
  if (passed) await writeRolloverState(d.pkiDir, state);
  if (failed.length > 0) throw new ExitError(`phase ${PHASE_TITLES[phase]} did not complete on:\n${failed.map((f) => `  ${f}`).join('\n')}\nrun the phase again once fixed`);
}

// ---------------------------------------------------------------------------------------------

function pendingAll(d: Deployment, state: RolloverState): Record<RolloverPhase, string[]> {
  return Object.fromEntries(PHASES.map((p) => [p, pendingHosts(state, p, hostsOf(d))])) as Record<RolloverPhase, string[]>;
}

async function startRollover(d: Deployment, opts: RolloverOptions): Promise<RolloverState> {
  const now = opts.now ?? new Date();
  const oldSerial = await storeCurrentCa(d.pkiDir);
  const newSerial = await createNextCa(d.pkiDir, {
    ...(opts.keyBits === undefined ? {} : { keyBits: opts.keyBits }),
    ...(opts.validityDays === undefined ? {} : { validityDays: opts.validityDays }),
    now,
  });
  const state = newRolloverState((await caView(d.pkiDir, oldSerial)).ref, (await caView(d.pkiDir, newSerial)).ref, now);
  await writeRolloverState(d.pkiDir, state);
  opts.say?.(`new CA "${state.newCa.commonName}" (serial ${newSerial}) created; old CA "${state.oldCa.commonName}" (serial ${oldSerial})`);
  return state;
}

export async function caRollover(d: Deployment, opts: RolloverOptions = {}): Promise<RolloverResult> {
  const started = Date.now();
  const unknown = unknownHosts(d, opts.hosts);
  if (unknown.length > 0) throw inputError(`no host ${unknown.map((h) => JSON.stringify(h)).join(', ')} in ${d.description} (hosts: ${hostsOf(d).join(', ')})`, '--host');
  const sel = d.selector.join(' ');
  const lock = await d.lock('certs ca-rollover');
  try {
    let state = await readRolloverState(d.pkiDir);
    if (!inProgress(state)) {
      if (opts.phase !== undefined && opts.phase !== 'trust') {
        throw new ExitError(`refusing phase ${PHASE_TITLES[opts.phase]}: no CA rollover is in progress; it starts with phase trust (\`ovn-deploy certs ca-rollover ${sel} --phase trust\`)`, REFUSED_EXIT);
      }
      state = await startRollover(d, opts);
    }
    const newCa = await caView(d.pkiDir, state.newCa.serial);
    const scope = opts.hosts === undefined || opts.hosts.length === 0 ? hostsOf(d) : hostsOf(d).filter((h) => opts.hosts?.includes(h));
    const from = opts.phase ?? currentPhase(state, hostsOf(d)) ?? 'retire';
    const ran: PhaseRun[] = [];
    const notes: string[] = [];
    for (const phase of PHASES.slice(PHASES.indexOf(from))) {
      const later = PHASES.slice(PHASES.indexOf(phase) + 1).find((p) => Object.keys(state.phases[p]).length > 0);
      if (later !== undefined) {
        throw new ExitError(`refusing phase ${PHASE_TITLES[phase]}: phase ${later} has already started (pending: ${pendingAll(d, state)[later].join(', ') || 'none'}); continue with \`ovn-deploy certs ca-rollover ${sel}\``, REFUSED_EXIT);
      }
      const previous = PHASES[PHASES.indexOf(phase) - 1];
      if (previous !== undefined) await requireComplete(d, previous, phase, state, newCa, sel);
      const t0 = Date.now();
      // Hosts done before (and still verified so) are left alone: resuming repeats nothing.
      const recorded = scope.filter((h) => state.phases[phase][h] !== undefined);
      const stillOk = await verifyHosts(d, recorded, phase, () => state, newCa);
      const hosts = scope.filter((h) => !recorded.includes(h) || stillOk[recorded.indexOf(h)]?.ok !== true);
      if (hosts.length > 0) {
        opts.say?.(`phase ${PHASE_TITLES[phase]} on ${hosts.join(', ')}`);
        if (phase === 'trust') await runTrust(d, hosts, state, newCa, opts);
        else if (phase === 'issue') await runIssue(d, hosts, state, newCa, opts);
        else await runRetire(d, hosts, state, newCa, opts, notes);
        ran.push({ phase, hosts, ms: Date.now() - t0 });
      }
      // One phase asked for, or some hosts left out: stop here; the next phase needs them all.
      if (opts.phase !== undefined || pendingHosts(state, phase, hostsOf(d)).length > 0) break;
    }
    const pending = pendingAll(d, state);
    const complete = PHASES.every((p) => pending[p].length === 0);
    if (complete && state.completedAt === undefined) {
      state.completedAt = new Date().toISOString();
      await writeRolloverState(d.pkiDir, state);
      opts.say?.(`CA rollover complete: "${state.newCa.commonName}" is the only trusted CA`);
    }
    return { state, ran, pending, complete, notes, durationMs: Date.now() - started };
  } finally {
    await lock.release();
  }
}

/** The rollover as it stands, without changing anything. */
export async function rolloverStatus(d: Deployment): Promise<{ state: RolloverState | undefined; pending: Record<RolloverPhase, string[]> | undefined; issuer: string }> {
  const state = await readRolloverState(d.pkiDir);
  const issuer = normalizeSerial((await loadCa(d.pkiDir)).serial);
  return { state, pending: state === undefined ? undefined : pendingAll(d, state), issuer };
}
