/**
 * Probes that look at what a RUNNING stunnel uses (not what its files say): the certificate a
 * listener serves, the CAs it accepts client certificates from, whether a given client
 * certificate gets in, and whether a client tunnel carries a new connection.
 */
import type { Runner } from '../runner.js';
import { ovsdbListDbs } from '../tools/ovs.js';
import { probeTls } from '../tools/tls.js';
import type { LocalTunnelProbe, TlsListener } from './deployment.js';

export interface ListenerView {
  ok: boolean;
  /** Serial of the certificate the listener serves (lower-case hex, no leading zeros). */
  servedSerial?: string;
  /** CN of that certificate's issuer. */
  servedIssuer?: string;
  /** CNs of the CAs the listener accepts client certificates from (its CAfile as loaded). */
  acceptedCas: string[];
  error?: string;
}

export interface ProbeOutcome {
  ok: boolean;
  detail: string;
}

function cnOf(dn: string): string {
  return /(?:^|,\s*)CN\s*=\s*([^,]*)/.exec(dn)?.[1]?.trim() ?? '';
}

/**
 * The "Acceptable client certificate CA names" s_client prints: stunnel sends the names of every
 * CA in its CAfile as loaded, so this shows which bundle the running process trusts.
 */
export function acceptedCaNames(sClientOutput: string): string[] {
  const lines = sClientOutput.split('\n');
  const start = lines.findIndex((l) => l.startsWith('Acceptable client certificate CA names'));
  if (start < 0) return [];
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^(?:[A-Za-z]+ = |\/)/.test(line)) break;
    names.push(cnOf(line));
  }
  return names;
}

export function servedIssuerName(sClientOutput: string): string | undefined {
  const at = sClientOutput.indexOf('Server certificate');
  const m = /^issuer=(.*)$/m.exec(at < 0 ? '' : sClientOutput.slice(at));
  return m === null ? undefined : cnOf(m[1] ?? '');
}

/** What a TLS listener serves and accepts; `identity` is a client certificate it should accept. */
export async function inspectListener(runner: Runner, listener: TlsListener, identity?: { cert: string; key: string }): Promise<ListenerView> {
  const r = await probeTls(runner, {
    host: listener.host,
    port: listener.port,
    holdMs: 0,
    ...(listener.netns === undefined ? {} : { netns: listener.netns }),
    ...(identity === undefined ? {} : { cert: identity.cert, key: identity.key }),
  });
  const served = r.peerSerial?.replace(/^0+(?=.)/, '');
  const issuer = servedIssuerName(r.raw);
  return {
    ok: r.ok,
    ...(served === undefined ? {} : { servedSerial: served }),
    ...(issuer === undefined ? {} : { servedIssuer: issuer }),
    acceptedCas: acceptedCaNames(r.raw),
    ...(r.error === undefined ? {} : { error: r.error }),
  };
}

/** Whether a listener lets this client certificate in (a new full handshake). */
export async function connectsWith(
  runner: Runner,
  listener: TlsListener,
  client: { netns?: string; cert: string; key: string },
): Promise<ProbeOutcome> {
  // No -CAfile: only the server's verdict on the client certificate matters here.
  const r = await probeTls(runner, {
    host: listener.host,
    port: listener.port,
    cert: client.cert,
    key: client.key,
    holdMs: 0,
    ...(client.netns === undefined ? {} : { netns: client.netns }),
  });
  const where = `${listener.host}:${listener.port}`;
  return r.ok ? { ok: true, detail: `${where} accepted it (${r.protocol ?? '?'})` } : { ok: false, detail: `${where} rejected it: ${r.error ?? 'no handshake'}` };
}

/** A new plaintext connection to the client tunnel's local port reaches the database behind it. */
export async function tunnelCarries(runner: Runner, probe: LocalTunnelProbe, timeoutSec = 5): Promise<ProbeOutcome> {
  const failures: string[] = [];
  // In order: the first remote that answers proves the tunnel (another central may be down).
  for (const remote of [probe.remote, ...(probe.alternates ?? [])]) {
    const r = await ovsdbListDbs(runner, remote, { timeoutSec, ...(probe.netns === undefined ? {} : { netns: probe.netns }), ...(probe.tls === undefined ? {} : { tls: probe.tls }) });
    if (r.databases.includes(probe.database)) return { ok: true, detail: `${probe.database} answers through ${remote}` };
    failures.push(`${remote}: ${r.error || 'not listed'}`);
  }
  return { ok: false, detail: `${probe.database} not reachable through ${failures.join('; ')}` };
}
