/**
 * Parsing and formatting of stunnel `accept`/`connect` endpoints, and the loopback test that
 * keeps plaintext OVSDB traffic on the host.
 */
import { isIP } from 'node:net';

export type Endpoint =
  | { kind: 'inet'; host: string; port: number; family: 0 | 4 | 6 }
  | { kind: 'unix'; path: string };

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
const MAX_UNIX_PATH_BYTES = 107;

/** RFC 1123 labels; what a certificate's DNS SAN and stunnel's checkHost can hold. */
export function isDnsName(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  return value.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** `host:port`, `[v6]:port` or an absolute unix socket path; a message when it is none of these. */
export function parseEndpoint(value: string): Endpoint | { error: string } {
  if (value.startsWith('/')) {
    if (Buffer.byteLength(value) > MAX_UNIX_PATH_BYTES) {
      return { error: `unix socket path is longer than ${MAX_UNIX_PATH_BYTES} bytes` };
    }
    return { kind: 'unix', path: value };
  }
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(value);
  const plain = /^([^:[\]]+):([^:]*)$/.exec(value);
  const m = bracketed ?? plain;
  if (m === null) {
    return isIP(value.slice(0, value.lastIndexOf(':'))) === 6
      ? { error: 'write an IPv6 address in brackets: [addr]:port' }
      : { error: 'expected host:port, [ipv6]:port or an absolute unix socket path' };
  }
  const host = m[1] ?? '';
  const portText = m[2] ?? '';
  const family = isIP(host);
  if (bracketed !== null && family !== 6) return { error: `${host} in brackets is not an IPv6 address` };
  if (family === 0 && !isDnsName(host)) return { error: `${host} is neither an IP address nor a DNS name` };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { error: `port ${JSON.stringify(portText)} is not a number from 1 to 65535` };
  }
  return { kind: 'inet', host, port: Number(portText), family: family as 0 | 4 | 6 };
}

/** One spelling per IPv6 address (`::0:1` and `::1` are the same). */
export function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

function isLoopbackIp(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return ip.split('.')[0] === '127';
  if (family === 6) return canonicalIp(ip) === '::1';
  return false;
}

/** Traffic to this endpoint cannot leave the host: a loopback address or a unix socket. */
export function isHostLocal(ep: Endpoint): boolean {
  return ep.kind === 'unix' || isLoopbackIp(ep.host);
}

/** A host for `host:port` text: IPv6 in brackets. */
export function bracketHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * stunnel's spelling: it splits host and port at the last ':' and hands the host to
 * getaddrinfo() as is, so an IPv6 address goes WITHOUT brackets (`::1:6641`).
 */
export function stunnelEndpoint(ep: Endpoint): string {
  return ep.kind === 'unix' ? ep.path : `${ep.host}:${ep.port}`;
}
