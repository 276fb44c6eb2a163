/**
 * `ovn-deploy certs revoke HOST`: revokes every certificate of HOST that still authenticates,
 * re-signs a CRL for every trusted CA, puts them on every stunnel, reloads them all, and then
 * proves it: a new connection with HOST's certificate is refused by every TLS listener, while
 * another host still gets in (a broken CRL would refuse everyone).
 *
 * Established connections are not cut: stunnel checks certificates at the handshake only, and a
 * reload keeps open connections. The host stays revoked: the PKI signs nothing for it (no later
 * deploy, `up` or rotate re-admits it) until `certs reinstate HOST`.
 */
import { ExitError, inputError } from '../errors.js';
import { markHostRevoked } from '../pki/host-revocation.js';
import { readIndex, revokeCertificate, type IndexEntry, type RevocationReason } from '../pki/index.js';
import type { LeafRole } from '../pki/types.js';
import { hostsOf, type Deployment, type TlsEndpoint, type TlsListener } from './deployment.js';
import { connectsWith, tunnelCarries, type ProbeOutcome } from './probes.js';
import { publishTrustFiles } from './publish.js';

export interface RevokeOptions {
  reason?: RevocationReason;
  now?: Date;
  say?: (line: string) => void;
}

export interface RevokeResult {
  host: string;
  revoked: IndexEntry[];
  /** Every check that was made, and what it found. */
  checks: { what: string; expected: 'refused' | 'accepted'; outcome: ProbeOutcome }[];
  durationMs: number;
}

interface Check {
  what: string;
  expected: 'refused' | 'accepted';
  run: () => Promise<ProbeOutcome>;
}

/** The central's stunnel server admits NB to centrals and cms hosts only, SB to every host of the site. */
function admitsRole(l: TlsListener, role: LeafRole): boolean {
  return l.db !== 'nb' || role === 'central' || role === 'cms';
}

/** Connections that prove the revocation took effect (and that it did not lock out everyone). */
function confirmationChecks(d: Deployment, host: string): Check[] {
  const servers = d.endpoints.filter((e) => e.stunnel.side === 'server' && e.host !== host);
  const mine = d.endpoints.filter((e) => e.host === host);
  const others = d.endpoints.filter((e) => e.host !== host && e.stunnel.side === 'client');
  const checks: Check[] = [];
  const as = (e: TlsEndpoint) => ({ cert: e.certPath, key: e.keyPath, ...(e.stunnel.netns === undefined ? {} : { netns: e.stunnel.netns }) });
  for (const me of mine) {
    for (const s of servers) {
      // Only where its role would get in: a refusal by role proves nothing about the CRL.
      for (const l of s.stunnel.listeners.filter((x) => admitsRole(x, me.role))) {
        checks.push({ what: `${host}'s certificate at ${s.host} ${l.host}:${l.port}`, expected: 'refused', run: () => connectsWith(d.runnerFor(me), l, as(me)) });
      }
    }
    if (me.stunnel.tunnelProbe !== undefined) {
      const probe = me.stunnel.tunnelProbe;
      checks.push({ what: `a new connection through ${host}'s tunnel`, expected: 'refused', run: () => tunnelCarries(d.runnerFor(me), probe, 3) });
    }
  }
  // A revoked server: clients must refuse it. Their tunnels are the proof.
  if (mine.some((e) => e.stunnel.side === 'server')) {
    for (const o of others) {
      const probe = o.stunnel.tunnelProbe;
      // Through the listener for the revoked central only: the tunnel's others still answer.
      const toRevoked = probe === undefined ? undefined : [probe.remote, ...(probe.alternates ?? [])].find((r) => /\/([^/]+)\.(nb|sb)$/.exec(r)?.[1] === host);
      if (probe !== undefined && toRevoked !== undefined) {
        const only = { remote: toRevoked, database: probe.database, ...(probe.netns === undefined ? {} : { netns: probe.netns }) };
        checks.push({ what: `${o.host}'s tunnel to revoked ${host}`, expected: 'refused', run: () => tunnelCarries(d.runnerFor(o), only, 3) });
      }
    }
  } else {
    // Someone else still gets in: the CRL is not rejecting everyone.
    const witness = others[0];
    if (witness !== undefined) {
      for (const s of servers) {
        for (const l of s.stunnel.listeners.filter((x) => admitsRole(x, witness.role)).slice(0, 1)) checks.push({ what: `${witness.host}'s certificate at ${s.host} ${l.host}:${l.port}`, expected: 'accepted', run: () => connectsWith(d.runnerFor(witness), l, as(witness)) });
      }
      const probe = witness.stunnel.tunnelProbe;
      if (probe !== undefined) checks.push({ what: `a new connection through ${witness.host}'s tunnel`, expected: 'accepted', run: () => tunnelCarries(d.runnerFor(witness), probe, 5) });
    }
  }
  return checks;
}

export async function revokeHost(d: Deployment, host: string, opts: RevokeOptions = {}): Promise<RevokeResult> {
  const started = Date.now();
  const say = opts.say ?? (() => undefined);
  const index = await readIndex(d.pkiDir);
  const names = [...new Set(index.filter((e) => e.host === host).map((e) => e.name))];
  if (names.length === 0) {
    const known = hostsOf(d).includes(host) ? `${host} is in ${d.description} but` : `no host ${JSON.stringify(host)} in ${d.description} and`;
    throw inputError(`${known} the PKI in ${d.pkiDir} never issued a certificate for it (hosts: ${hostsOf(d).join(', ')})`, 'HOST');
  }
  if (d.endpoints.some((e) => e.stunnel.native === true)) {
    // Revoking would publish a CRL no listener reads: the host would keep its access.
    throw inputError(
      `${d.description} runs native OVSDB TLS, which checks no CRL: revoking ${host}'s certificate would not lock it out. ` +
        `Take ${host} out of the site and run \`certs ca-rollover\` (every other host gets a certificate of a new CA, the old CA is no longer trusted), or run the site in tls.mode stunnel`,
      'HOST',
    );
  }
  const lock = await d.lock('certs revoke');
  try {
    // First: from here on the PKI signs nothing for the host (a deploy or rotate running now included).
    await markHostRevoked(d.pkiDir, host, { ...(opts.reason === undefined ? {} : { reason: opts.reason }), ...(opts.now === undefined ? {} : { now: opts.now }) });
    const revoked: IndexEntry[] = [];
    for (const name of names) {
      revoked.push(...(await revokeCertificate(d.pkiDir, name, { ...(opts.reason === undefined ? {} : { reason: opts.reason }), ...(opts.now === undefined ? {} : { now: opts.now }) })));
    }
    say(revoked.length === 0 ? `${host}: nothing left to revoke; CRLs re-signed` : `${host}: revoked ${revoked.map((e) => `${e.name} ${e.serial}`).join(', ')}`);
    await publishTrustFiles(d, d.endpoints, { crl: true });
    // Every stunnel: servers check client certificates against the CRL, clients the server's.
    await Promise.all(d.endpoints.map((e) => d.reload(e)));
    say(`CRL published and ${d.endpoints.length} stunnel(s) reloaded`);
    const checks: RevokeResult['checks'] = [];
    for (const c of confirmationChecks(d, host)) checks.push({ what: c.what, expected: c.expected, outcome: await c.run() });
    const wrong = checks.filter((c) => (c.expected === 'refused') === c.outcome.ok);
    if (wrong.length > 0) {
      throw new ExitError(
        `revoked ${host}'s certificates, but the check did not come out as expected:\n` +
          wrong.map((c) => `${c.what}: expected ${c.expected}, got ${c.outcome.ok ? 'accepted' : 'refused'} (${c.outcome.detail})`).join('\n'),
      );
    }
    return { host, revoked, checks, durationMs: Date.now() - started };
  } finally {
    await lock.release();
  }
}
