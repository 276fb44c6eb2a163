/**
 * TLS probing with `openssl s_client`: what a listener negotiates, which certificate it serves,
 * and whether it really accepts a given client (certificate, protocol version, cipher).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';

export type TlsVersion = '1' | '1.1' | '1.2' | '1.3';

const VERSION_FLAG: Record<TlsVersion, string> = { '1': '-tls1', '1.1': '-tls1_1', '1.2': '-tls1_2', '1.3': '-tls1_3' };
const DEFAULT_HOLD_MS = 800;
const NO_HOLD_TIMEOUT_MS = 10_000;

export interface TlsProbeOptions {
  host: string;
  port: number;
  netns?: string;
  /** Client certificate and key (PEM files). */
  cert?: string;
  key?: string;
  /** Verify the server against this bundle; without it the server certificate is not judged. */
  caFile?: string;
  /** Offer only this version (default: whatever OpenSSL offers). */
  tlsVersion?: TlsVersion;
  /** OpenSSL cipher list (TLS <= 1.2), or TLS 1.3 ciphersuites when tlsVersion is '1.3'. */
  cipher?: string;
  /** SNI to send. */
  servername?: string;
  /** Name (or IP) the server certificate must carry; needs caFile. */
  verifyName?: string;
  /** Sent once connected; `ok` then also needs a reply (matching `expect` if given). */
  send?: string;
  expect?: RegExp;
  /**
   * How long the connection is held open after connecting, to read a reply and to see a
   * rejection that arrives after the handshake (TLS 1.3 checks the client certificate only
   * then). 0: leave right after the handshake (fast; enough to learn the served certificate).
   */
  holdMs?: number;
}

export interface TlsProbeResult {
  /**
   * The server completed the handshake, sent no alert while the connection was held, the
   * certificate verified (when caFile is given), and the exchange (when `send` is given) got
   * its reply.
   */
  ok: boolean;
  /** Negotiated protocol, e.g. `TLSv1.2`; absent when no handshake completed. */
  protocol?: string;
  /** Negotiated cipher (OpenSSL name), absent when no handshake completed. */
  cipher?: string;
  /**
   * Serial of the certificate the server presented: lower-case hex padded to whole bytes, as the
   * PKI index writes it (a leading 0 stays). Reports and `certs rotate` print it without leading
   * zeros: compare those through normalizeSerial.
   */
  peerSerial?: string;
  /** Why the server certificate did not verify, e.g. `hostname mismatch`. */
  verifyError?: string;
  /** Why the connection failed: the TLS alert (`handshake failure`, `protocol version`...) or OpenSSL's error. */
  error?: string;
  /** Application data received after the handshake. */
  reply?: string;
  /** s_client's stdout and stderr. */
  raw: string;
}

function sClientArgs(o: TlsProbeOptions): string[] {
  const hostPort = `${isIP(o.host) === 6 ? `[${o.host}]` : o.host}:${o.port}`;
  const args = ['openssl', 's_client', '-connect', hostPort];
  if ((o.holdMs ?? DEFAULT_HOLD_MS) > 0) args.push('-ign_eof');
  if (o.tlsVersion !== undefined) args.push(VERSION_FLAG[o.tlsVersion]);
  if (o.tlsVersion === '1' || o.tlsVersion === '1.1') {
    // OpenSSL 3's default security level refuses TLS < 1.2 outright: the client would never
    // even offer them, and the probe would test OpenSSL instead of the server.
    args.push('-cipher', `${o.cipher ?? 'DEFAULT'}@SECLEVEL=0`);
  } else if (o.cipher !== undefined) {
    args.push(o.tlsVersion === '1.3' ? '-ciphersuites' : '-cipher', o.cipher);
  }
  if (o.cert !== undefined) args.push('-cert', o.cert);
  if (o.key !== undefined) args.push('-key', o.key);
  if (o.caFile !== undefined) args.push('-CAfile', o.caFile);
  if (o.servername !== undefined) args.push('-servername', o.servername);
  if (o.verifyName !== undefined) args.push(isIP(o.verifyName) === 0 ? '-verify_hostname' : '-verify_ip', o.verifyName);
  return args;
}

/** The part of stdout after the session summary, without TLS 1.3 ticket notices. */
function applicationData(stdout: string): string {
  const session = stdout.indexOf('SSL-Session:');
  if (session < 0) return '';
  const end = stdout.indexOf('\n---\n', session);
  if (end < 0) return '';
  return stdout
    .slice(end + 5)
    .replace(/---\nPost-Handshake New Session Ticket arrived:\nSSL-Session:[\s\S]*?\n---\n/g, '')
    .replace(/^read R BLOCK\n/gm, '');
}

function serialOf(stdout: string): string | undefined {
  const at = stdout.indexOf('Server certificate');
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(at < 0 ? '' : stdout.slice(at))?.[0];
  if (pem === undefined) return undefined;
  try {
    return new X509Certificate(pem).serialNumber.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Reads s_client's output (pure). */
function interpretSClient(o: TlsProbeOptions, stdout: string, stderr: string, exitCode: number): TlsProbeResult {
  const raw = `${stdout}${stderr}`;
  const result: TlsProbeResult = { ok: false, raw };
  const negotiated = /^New, (\S+), Cipher is (\S+)$/m.exec(stdout);
  if (negotiated !== null && negotiated[1] !== '(NONE)') {
    result.protocol = negotiated[1];
    result.cipher = negotiated[2];
  }
  const serial = serialOf(stdout);
  if (serial !== undefined) result.peerSerial = serial;
  const verify = /Verify return code: (\d+) \(([^)]*)\)/.exec(stdout);
  if (o.caFile !== undefined && verify !== null && verify[1] !== '0') result.verifyError = verify[2];

  // OpenSSL error lines look like `<thread>:error:0A000410:SSL routines:...:sslv3 alert handshake failure:...`.
  const alert = /(?:sslv3|tlsv1|tlsv13|ssl\/tls) alert ([a-z ]+)/.exec(stderr)?.[1];
  const sslError = /:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(stderr)?.[1];
  const killedByHold = exitCode >= 128 && (o.holdMs ?? DEFAULT_HOLD_MS) > 0;
  if (alert !== undefined) result.error = `alert: ${alert}`;
  else if (sslError !== undefined) result.error = sslError;
  else if (result.protocol === undefined) result.error = killedByHold ? `no TLS handshake within ${o.holdMs ?? DEFAULT_HOLD_MS} ms` : `s_client exited ${exitCode} without a handshake`;
  else if (exitCode !== 0 && !killedByHold) result.error = `s_client exited ${exitCode}`;

  const reply = applicationData(stdout);
  if (reply !== '') result.reply = reply;
  const exchanged = o.send === undefined || (o.expect === undefined ? reply.trim() !== '' : o.expect.test(reply));
  if (o.send !== undefined && !exchanged && result.error === undefined) {
    result.error = o.expect === undefined ? 'no reply' : `reply does not match ${String(o.expect)}`;
  }
  result.ok = result.protocol !== undefined && result.error === undefined && result.verifyError === undefined && exchanged;
  return result;
}

/**
 * Connects with `openssl s_client` and reports what happened. The probe holds the connection
 * for `holdMs` (default 800 ms) so that a late rejection or the reply is seen: every successful
 * probe lasts that long, every rejected one ends at the server's alert.
 */
export async function probeTls(runner: Runner, opts: TlsProbeOptions): Promise<TlsProbeResult> {
  const hold = opts.holdMs ?? DEFAULT_HOLD_MS;
  if (hold <= 0 && opts.send !== undefined) throw new Error('probeTls: `send` needs holdMs > 0 to wait for the reply');
  const r = await runner.run(sClientArgs(opts), {
    // Without a hold, s_client's own "Q" command ends the session right after the handshake
    // (an empty input would leave stdin open until the timeout).
    input: hold > 0 ? (opts.send ?? '') : 'Q\n',
    timeoutMs: hold > 0 ? hold : NO_HOLD_TIMEOUT_MS,
    allowFailure: true,
    mutates: false,
    ...(opts.netns === undefined ? {} : { netns: opts.netns }),
  });
  return interpretSClient(opts, r.stdout, r.stderr, r.exitCode);
}

/**
 * Serial (lower-case hex) of the certificate a TLS listener serves right now; certificate
 * rotation uses it to see that a reload took effect.
 */
export async function servedSerial(
  runner: Runner,
  opts: Pick<TlsProbeOptions, 'host' | 'port' | 'netns' | 'cert' | 'key' | 'caFile' | 'servername' | 'tlsVersion'>,
): Promise<string> {
  const r = await probeTls(runner, { ...opts, holdMs: 0 });
  if (r.peerSerial === undefined) {
    throw new ExitError(`no certificate from ${opts.host}:${opts.port}${r.error === undefined ? '' : ` (${r.error})`}`);
  }
  return r.peerSerial;
}
