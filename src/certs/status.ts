/**
 * `ovn-deploy certs status`: every certificate the deployment's stunnels use, what each listener
 * really serves, the trusted CAs, the CRLs, a CA rollover in progress, and warnings for what needs
 * attention. Collecting (files + probes) is separate from judging (pure: `judgeCertsStatus`) and
 * from the table (`renderCertsStatus`).
 */
import { loadCa, readIndex, type CertStatus } from '../pki/index.js';
import { bundleCas, certFacts, crlFacts, type CertFacts, type CrlFacts } from './cert-facts.js';
import type { Deployment, TlsEndpoint } from './deployment.js';
import { inspectListener, tunnelCarries, type ListenerView, type ProbeOutcome } from './probes.js';
import { caStage, crlNeedsRefresh, daysUntil, leafDue } from './renewal.js';
import { readRevokedHosts } from '../pki/host-revocation.js';
import { table } from '../ui/table.js';
import { currentPhase, inProgress, pendingHosts, PHASES, readRolloverState, type RolloverPhase, type RolloverState } from './rollover-state.js';

export interface ServedStatus {
  listener: string;
  serial: string | null;
  issuer: string | null;
  /** CNs of the CAs the running stunnel accepts client certificates from. */
  acceptedCas: string[];
  /** It serves the certificate its file holds (false: a reload is pending or failed). */
  matchesFile: boolean;
  error: string | null;
}

export interface EndpointStatus {
  host: string;
  role: string;
  side: 'server' | 'client';
  service: string;
  certName: string;
  certPath: string;
  serial: string | null;
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  due: boolean;
  /** The PKI index's word on this serial; `unknown` when the PKI never issued it. */
  status: CertStatus | 'unknown' | 'missing';
  keyMatchesCert: boolean;
  served: ServedStatus[];
  /** Client side: a new connection through the tunnel. */
  tunnel: ProbeOutcome | null;
  trustedCas: string[];
  /** nextUpdate of each CRL in the host's CRL file (one per trusted CA). */
  crlNextUpdates: string[];
}

export interface CaStatus {
  serial: string;
  commonName: string;
  notAfter: string;
  daysLeft: number;
  /** Past half its lifetime: prepare the next CA. */
  due: boolean;
  /** A sixth of its lifetime or less left. */
  critical: boolean;
  /** The CA new certificates come from. */
  issuing: boolean;
}

export interface CrlStatus {
  /** The first copy holding this CRL (`host:path`); `files`: every one (each host has its own copy). */
  file: string;
  files: string[];
  issuer: string;
  thisUpdate: string;
  nextUpdate: string;
  daysLeft: number;
  needsRefresh: boolean;
  revoked: number;
}

export interface RolloverStatus {
  phase: RolloverPhase | 'complete';
  oldCa: { serial: string; commonName: string };
  newCa: { serial: string; commonName: string };
  startedAt: string;
  /** Hosts that have not completed each phase. */
  pending: Record<RolloverPhase, string[]>;
}

export interface CertsStatusReport {
  deployment: string;
  checkedAt: string;
  renewalWindow: string;
  endpoints: EndpointStatus[];
  cas: CaStatus[];
  crls: CrlStatus[];
  rollover: RolloverStatus | null;
  /** Certificate names due for renewal (what `certs rotate` would renew). */
  due: string[];
  /** Everything that needs attention (exit 1 when any). */
  warnings: string[];
  /** The warnings that break connections now or soon: expired, revoked, stale CRL, a CA's last sixth, a dead tunnel. */
  critical: string[];
}

/** Everything read from files and probes, before judging. */
export interface CollectedEndpoint {
  endpoint: TlsEndpoint;
  cert: CertFacts | undefined;
  keyMatches: boolean;
  indexStatus: CertStatus | undefined;
  served: { listener: string; view: ListenerView }[];
  tunnel: ProbeOutcome | undefined;
  trusted: { serial: string; commonName: string; notBefore: Date; notAfter: Date }[];
  crls: CrlFacts[];
}

export interface Collected {
  deployment: string;
  /** `--dir ...` to repeat in hints. */
  selector: string[];
  endpoints: CollectedEndpoint[];
  issuingSerial: string | undefined;
  rollover: RolloverState | undefined;
  /** Hosts revoked by `certs revoke`: their refused certificate is intended, not a finding. */
  revokedHosts?: string[];
}

export interface StatusOptions {
  now?: Date;
  /** Renewal window in days; default: the last third of the lifetime (at least 7 days). */
  windowDays?: number;
  /** Skip the live probes (files only). */
  noProbe?: boolean;
}

export async function collectCertsStatus(d: Deployment, opts: StatusOptions = {}): Promise<Collected> {
  const index = await readIndex(d.pkiDir);
  const issuing = await loadCa(d.pkiDir).then(
    (ca) => ca.serial.replace(/^0+(?=.)/, ''),
    () => undefined,
  );
  const endpoints = await Promise.all(
    d.endpoints.map(async (e): Promise<CollectedEndpoint> => {
      const [certPem, keyMatches, caText, crlText] = await Promise.all([d.read(e, e.certPath), d.keyMatches(e), d.read(e, e.caFile), d.read(e, e.crlFile)]);
      const cert = certPem === undefined ? undefined : certFacts(certPem);
      const probe = opts.noProbe !== true;
      const served = probe
        ? await Promise.all(
            e.stunnel.listeners.map(async (l) => ({ listener: `${l.host}:${l.port}`, view: await inspectListener(d.runnerFor(e), l, { cert: e.certPath, key: e.keyPath }) })),
          )
        : [];
      const tunnel = probe && e.stunnel.tunnelProbe !== undefined ? await tunnelCarries(d.runnerFor(e), e.stunnel.tunnelProbe, 3) : undefined;
      return {
        endpoint: e,
        cert,
        keyMatches: certPem !== undefined && keyMatches,
        indexStatus: cert === undefined ? undefined : index.find((x) => x.serial.replace(/^0+(?=.)/, '') === cert.serial)?.status,
        served,
        tunnel,
        trusted: bundleCas(caText, e.caFile),
        crls: crlFacts(crlText),
      };
    }),
  );
  const revokedHosts = Object.keys(await readRevokedHosts(d.pkiDir));
  return { deployment: d.description, selector: d.selector, endpoints, issuingSerial: issuing, rollover: await readRolloverState(d.pkiDir), revokedHosts };
}

export function judgeCertsStatus(c: Collected, now: Date, windowDays?: number): CertsStatusReport {
  const warnings: string[] = [];
  const critical: string[] = [];
  // Critical findings are warnings too (scripts read `warnings`); `critical` is the subset that breaks connections now or soon.
  const crit = (w: string): void => {
    warnings.push(w);
    critical.push(w);
  };
  const sel = c.selector.join(' ');
  const revokedHosts = new Set(c.revokedHosts ?? []);
  const endpoints = c.endpoints.map((x): EndpointStatus => {
    const e = x.endpoint;
    // A revoked host is locked out on purpose: shown, not warned about.
    const row = endpointRow(x, now, windowDays, revokedHosts.has(e.host));
    if (revokedHosts.has(e.host)) return row;
    const { cert } = x;
    const { status, due, served } = row;
    const what = `${e.host}'s certificate ${e.certName} (${e.certPath})`;
    if (cert === undefined) crit(`${what} is missing or unreadable: \`ovn-deploy certs rotate ${sel} --host ${e.host} --force\``);
    else {
      const left = daysUntil(cert.notAfter, now);
      if (cert.notAfter.getTime() <= now.getTime()) crit(`${what} EXPIRED on ${cert.notAfter.toISOString()}: \`ovn-deploy certs rotate ${sel} --host ${e.host}\``);
      else if (due) warnings.push(`${what} is due: ${left} day(s) left (until ${cert.notAfter.toISOString()}); \`ovn-deploy certs rotate ${sel}\` renews it`);
      if (!x.keyMatches) crit(`${what}: the key ${e.keyPath} does not match the certificate (stunnel cannot load the pair)`);
      if (status === 'revoked') crit(`${what} (serial ${cert.serial}) is REVOKED: peers reject it`);
      for (const s of served) {
        if (s.serial === null) crit(`${e.stunnel.serviceName} on ${s.listener} serves no certificate (${s.error ?? 'no answer'})`);
        else if (!s.matchesFile) warnings.push(`${e.stunnel.serviceName} on ${s.listener} serves serial ${s.serial}, but ${e.certPath} holds ${cert.serial}: stunnel was not reloaded (or its reload failed)`);
      }
    }
    if (x.tunnel !== undefined && !x.tunnel.ok) crit(`${e.host}'s TLS tunnel (${e.stunnel.serviceName}) does not carry a new connection: ${x.tunnel.detail}`);
    // Every trusted CA needs a current CRL in the CRLfile, else stunnel rejects that CA's peers.
    for (const ca of x.trusted) {
      if (!x.crls.some((crl) => crl.issuerCommonName === ca.commonName)) {
        crit(`${e.crlFile} has no CRL for trusted CA "${ca.commonName}": ${e.host}'s stunnel rejects every peer of that CA`);
      }
    }
    return row;
  });

  const cas = new Map<string, CaStatus>();
  for (const x of c.endpoints) {
    for (const t of x.trusted) {
      if (cas.has(t.serial)) continue;
      const stage = caStage(t.notBefore, t.notAfter, now);
      cas.set(t.serial, { serial: t.serial, commonName: t.commonName, notAfter: t.notAfter.toISOString(), daysLeft: daysUntil(t.notAfter, now), due: stage !== 'ok', critical: stage === 'critical', issuing: t.serial === c.issuingSerial });
      // A CA that is being replaced needs no advice; the one replacing it is new.
      if (stage !== 'ok' && !inProgress(c.rollover)) {
        const left = `CA "${t.commonName}" expires in ${daysUntil(t.notAfter, now)} day(s)`;
        if (stage === 'critical') crit(`${left}, a sixth of its lifetime or less: roll it over now (\`ovn-deploy certs ca-rollover ${sel}\`)`);
        else warnings.push(`${left}, past half its lifetime: prepare the next CA (\`ovn-deploy certs ca-rollover ${sel}\`)`);
      }
    }
  }

  // One row per distinct CRL: every host holds its own copy of the same one, and a host whose
  // copy differs (not published there yet) gets a row of its own.
  const crls: CrlStatus[] = [];
  const byCrl = new Map<string, CrlStatus>();
  const seenFiles = new Set<string>();
  for (const x of c.endpoints) {
    // host:path: on a site every host's copy has the same path.
    const file = `${x.endpoint.host}:${x.endpoint.crlFile}`;
    if (seenFiles.has(file)) continue;
    seenFiles.add(file);
    if (x.crls.length === 0) crit(`${file} holds no CRL: stunnel rejects every peer`);
    for (const crl of x.crls) {
      const key = [crl.issuerCommonName, crl.crlNumber, crl.thisUpdate.toISOString(), crl.nextUpdate.toISOString(), ...crl.revokedSerials].join('\0');
      const same = byCrl.get(key);
      if (same !== undefined) {
        same.files.push(file);
        continue;
      }
      const row: CrlStatus = {
        file,
        files: [file],
        issuer: crl.issuerCommonName,
        thisUpdate: crl.thisUpdate.toISOString(),
        nextUpdate: crl.nextUpdate.toISOString(),
        daysLeft: daysUntil(crl.nextUpdate, now),
        needsRefresh: crlNeedsRefresh(crl.thisUpdate, crl.nextUpdate, now),
        revoked: crl.revokedSerials.length,
      };
      byCrl.set(key, row);
      crls.push(row);
    }
  }
  for (const row of crls) {
    const where = row.files.join(', ');
    if (Date.parse(row.nextUpdate) <= now.getTime()) crit(`the CRL of "${row.issuer}" in ${where} is STALE since ${row.nextUpdate}: every client of that CA is rejected; \`ovn-deploy certs rotate ${sel}\` refreshes it`);
    else if (row.needsRefresh) warnings.push(`the CRL of "${row.issuer}" in ${where} needs its next update by ${row.nextUpdate} (${row.daysLeft} day(s)); \`ovn-deploy certs rotate ${sel}\` refreshes it`);
  }

  let rollover: RolloverStatus | null = null;
  if (c.rollover !== undefined) {
    const hosts = [...new Set(c.endpoints.map((x) => x.endpoint.host))];
    const r = c.rollover;
    const pending = Object.fromEntries(PHASES.map((p) => [p, pendingHosts(r, p, hosts)])) as Record<RolloverPhase, string[]>;
    const phase = r.completedAt === undefined ? (currentPhase(r, hosts) ?? 'retire') : 'complete';
    rollover = { phase, oldCa: r.oldCa, newCa: r.newCa, startedAt: r.startedAt, pending };
    if (phase !== 'complete') warnings.push(`a CA rollover is in progress (phase ${phase}, pending on ${pending[phase].join(', ') || 'none'}): continue with \`ovn-deploy certs ca-rollover ${sel}\``);
  }

  return {
    deployment: c.deployment,
    checkedAt: now.toISOString(),
    renewalWindow: windowDays === undefined ? 'last third of the lifetime (at least 7 days)' : `last ${windowDays} day(s)`,
    endpoints,
    cas: [...cas.values()],
    crls,
    rollover,
    due: [...new Set(endpoints.filter((e) => e.due).map((e) => e.certName))],
    warnings,
    critical,
  };
}

function endpointRow(x: CollectedEndpoint, now: Date, windowDays: number | undefined, hostRevoked: boolean): EndpointStatus {
  const e = x.endpoint;
  const cert = x.cert;
  const status: EndpointStatus['status'] = cert === undefined ? 'missing' : (x.indexStatus ?? 'unknown');
  const due = !hostRevoked && (cert === undefined || leafDue(cert.notBefore, cert.notAfter, now, windowDays));
  const served = x.served.map(
    (s): ServedStatus => ({
      listener: s.listener,
      serial: s.view.servedSerial ?? null,
      issuer: s.view.servedIssuer ?? null,
      acceptedCas: s.view.acceptedCas,
      matchesFile: cert !== undefined && s.view.servedSerial === cert.serial,
      error: s.view.servedSerial === undefined ? (s.view.error ?? 'no certificate served') : null,
    }),
  );
  return {
    host: e.host,
    role: e.role,
    side: e.stunnel.side,
    service: e.stunnel.serviceName,
    certName: e.certName,
    certPath: e.certPath,
    serial: cert?.serial ?? null,
    issuer: cert?.issuerCommonName ?? null,
    notBefore: cert?.notBefore.toISOString() ?? null,
    notAfter: cert?.notAfter.toISOString() ?? null,
    daysLeft: cert === undefined ? null : daysUntil(cert.notAfter, now),
    due,
    status,
    keyMatchesCert: x.keyMatches,
    served,
    tunnel: x.tunnel ?? null,
    trustedCas: x.trusted.map((t) => t.commonName),
    crlNextUpdates: x.crls.map((c) => c.nextUpdate.toISOString()),
  };
}

export async function certsStatus(d: Deployment, opts: StatusOptions = {}): Promise<CertsStatusReport> {
  const now = opts.now ?? new Date();
  return judgeCertsStatus(await collectCertsStatus(d, opts), now, opts.windowDays);
}

function servedCell(e: EndpointStatus): string {
  if (e.side === 'client') return e.tunnel === null ? '-' : e.tunnel.ok ? 'tunnel ok' : 'tunnel DOWN';
  if (e.served.length === 0) return '-';
  if (e.served.every((s) => s.matchesFile)) return `same (${[...new Set(e.served.map((s) => s.issuer ?? '?'))].join(', ')})`;
  return e.served.map((s) => s.serial ?? 'none').join(',');
}

export function renderCertsStatus(r: CertsStatusReport): string {
  const lines: string[] = [`certificates of ${r.deployment} (renewal window: ${r.renewalWindow})`, ''];
  lines.push(
    ...table(
      ['HOST', 'ROLE', 'CERT', 'SERIAL', 'ISSUER', 'NOT-AFTER', 'DAYS', 'STATUS', 'SERVED'],
      r.endpoints.map((e) => [
        e.host,
        e.role,
        e.certName,
        e.serial ?? '-',
        e.issuer ?? '-',
        e.notAfter?.slice(0, 10) ?? '-',
        e.daysLeft === null ? '-' : String(e.daysLeft),
        e.due ? `${e.status}, DUE` : e.status,
        servedCell(e),
      ]),
    ),
  );
  // What each host trusts and the CRLs it holds: its own copies, which differ from the PKI's while a change rolls out.
  const seen = new Set<string>();
  const perHost = r.endpoints.filter((e) => !seen.has(e.host) && seen.add(e.host) !== undefined);
  lines.push('', ...table(['HOST', 'TRUSTS', 'CRL NEXT-UPDATE'], perHost.map((e) => [e.host, e.trustedCas.join(', ') || '-', e.crlNextUpdates.map((d) => d.slice(0, 16)).join(', ') || '-'])));
  lines.push('', ...table(['CA', 'SERIAL', 'NOT-AFTER', 'DAYS', ''], r.cas.map((c) => [c.commonName, c.serial, c.notAfter.slice(0, 10), String(c.daysLeft), [c.issuing ? 'issuing' : 'trusted', c.due ? 'DUE' : ''].filter(Boolean).join(', ')])));
  if (r.crls.length > 0) {
    lines.push('', ...table(['CRL OF', 'NEXT-UPDATE', 'DAYS', 'REVOKED', ''], r.crls.map((c) => [c.issuer, c.nextUpdate.slice(0, 16), String(c.daysLeft), String(c.revoked), c.needsRefresh ? 'REFRESH' : ''])));
  }
  if (r.rollover !== null) {
    const p = r.rollover;
    lines.push('', `CA rollover ${p.oldCa.commonName} -> ${p.newCa.commonName}: ${p.phase === 'complete' ? 'complete' : `phase ${p.phase}, pending on ${p.pending[p.phase].join(', ')}`}`);
  }
  return `${lines.join('\n')}\n`;
}
