/**
 * Input checks of a stunnel spec. Everything that reaches the config is checked here, because
 * the renderer writes values verbatim: a newline in any of them would smuggle in an option.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import type { Problem } from '../errors.js';
import { canonicalIp, isDnsName, isHostLocal, parseEndpoint, type Endpoint } from './endpoint.js';
import type { ClientService, ServerService, StunnelConfigSpec } from './types.js';

/** Section names become `[name]` lines and log prefixes. */
const SERVICE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/;

export function isClientService(s: ServerService | ClientService): s is ClientService {
  return Array.isArray(s.connect);
}

/** Line breaks (also U+2028/9) and other C0/DEL control characters. */
function hasControlCharacter(value: string): boolean {
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code === 0x7f || code === 0x2028 || code === 0x2029) return true;
  }
  return false;
}

class Checker {
  readonly problems: Problem[] = [];
  constructor(private readonly file: string) {}

  add(where: string, message: string): void {
    this.problems.push({ file: this.file, path: where, message });
  }

  /** One config line's worth of text: no line breaks or other control characters, no edge blanks. */
  text(value: unknown, where: string): value is string {
    if (typeof value !== 'string' || value === '') {
      this.add(where, 'must be a non-empty string');
      return false;
    }
    if (hasControlCharacter(value)) {
      this.add(where, `must be one line without control characters (got ${JSON.stringify(value)})`);
      return false;
    }
    if (value.trim() !== value) {
      this.add(where, `must not start or end with blanks (got ${JSON.stringify(value)})`);
      return false;
    }
    return true;
  }

  absolutePath(value: unknown, where: string): void {
    if (this.text(value, where) && !path.isAbsolute(value)) this.add(where, `must be an absolute path (got ${value})`);
  }

  endpoint(value: unknown, where: string): Endpoint | undefined {
    if (!this.text(value, where)) return undefined;
    const ep = parseEndpoint(value);
    if ('error' in ep) {
      this.add(where, `${ep.error} (got ${value})`);
      return undefined;
    }
    return ep;
  }

  /** The plaintext side of a tunnel: OVSDB traffic there is unencrypted, so it stays on the host. */
  hostLocal(ep: Endpoint | undefined, value: unknown, where: string): void {
    if (ep === undefined || isHostLocal(ep)) return;
    this.add(
      where,
      `the plaintext side must be a loopback address (127.0.0.0/8, [::1]) or a unix socket path, ` +
        `got ${String(value)}: OVSDB traffic would leave the host unencrypted`,
    );
  }
}

export function validateStunnelSpec(spec: StunnelConfigSpec): Problem[] {
  const kind: unknown = spec.kind;
  const c = new Checker(`stunnel ${String(kind)} config for ${String(spec.host)}`);
  if (kind !== 'server' && kind !== 'client') c.add('kind', `must be "server" or "client" (got ${JSON.stringify(kind)})`);
  c.text(spec.site, 'site');
  c.text(spec.host, 'host');
  for (const key of ['cert', 'key', 'caFile', 'crlFile'] as const) c.absolutePath(spec.tls?.[key], `tls.${key}`);
  c.absolutePath(spec.pidFile, 'pidFile');
  c.absolutePath(spec.logFile, 'logFile');
  if (typeof spec.foreground !== 'boolean') c.add('foreground', 'must be true or false');
  const level = spec.debugLevel;
  if (level !== undefined && !(Number.isInteger(level) && level >= 5 && level <= 7)) {
    c.add('debugLevel', `must be 5 (notice), 6 (info) or 7 (debug): reloads are confirmed by notice lines (got ${String(level)})`);
  }

  if (!Array.isArray(spec.services) || spec.services.length === 0) {
    c.add('services', 'needs at least one service');
    return c.problems;
  }
  const names = new Set<string>();
  const accepts = new Set<string>();
  spec.services.forEach((svc, i) => {
    const at = `services[${i}]`;
    if (c.text(svc.name, `${at}.name`)) {
      if (!SERVICE_NAME_RE.test(svc.name)) {
        c.add(`${at}.name`, `must match ${SERVICE_NAME_RE.source} (got ${svc.name})`);
      } else if (names.has(svc.name)) {
        c.add(`${at}.name`, `duplicate service name ${svc.name}`);
      }
      names.add(svc.name);
    }
    const accept = c.endpoint(svc.accept, `${at}.accept`);
    if (accept !== undefined) {
      const key = accept.kind === 'unix' ? accept.path : `${canonicalIp(accept.host)}|${accept.port}`;
      if (accepts.has(key)) c.add(`${at}.accept`, `${svc.accept} is accepted on by another service`);
      accepts.add(key);
    }
    if (kind === 'server') checkServerService(c, svc, accept, at);
    if (kind === 'client') checkClientService(c, svc, accept, at);
  });
  return c.problems;
}

function checkServerService(c: Checker, svc: ServerService | ClientService, accept: Endpoint | undefined, at: string): void {
  if (isClientService(svc)) {
    c.add(`${at}.connect`, 'a server service forwards to one local ovsdb-server: a single endpoint, not a list');
    return;
  }
  if (accept !== undefined && (accept.kind !== 'inet' || accept.family === 0)) {
    c.add(`${at}.accept`, `the TLS listener binds an IP address and port (got ${svc.accept})`);
  }
  const connect = c.endpoint(svc.connect, `${at}.connect`);
  c.hostLocal(connect, svc.connect, `${at}.connect`);
  // Optional on a server: an empty list would read as "restricted" yet admit every client.
  if (svc.checkHost !== undefined || svc.checkIP !== undefined) {
    if ((svc.checkHost ?? []).length + (svc.checkIP ?? []).length === 0) {
      c.add(at, 'checkHost/checkIP are given but empty: list the peer names to admit, or leave both out');
    }
    peerNames(c, svc.checkHost ?? [], svc.checkIP ?? [], at);
  }
}

function peerNames(c: Checker, hosts: string[], ips: string[], at: string): void {
  hosts.forEach((h, j) => {
    if (c.text(h, `${at}.checkHost[${j}]`) && !isDnsName(h)) c.add(`${at}.checkHost[${j}]`, `must be a DNS name (got ${h})`);
  });
  ips.forEach((ip, j) => {
    if (c.text(ip, `${at}.checkIP[${j}]`) && isIP(ip) === 0) c.add(`${at}.checkIP[${j}]`, `must be an IP address (got ${ip})`);
  });
}

function checkClientService(c: Checker, svc: ServerService | ClientService, accept: Endpoint | undefined, at: string): void {
  c.hostLocal(accept, svc.accept, `${at}.accept`);
  if (!isClientService(svc) || svc.connect.length === 0) {
    c.add(`${at}.connect`, 'a client service needs a list of at least one host:port to connect to');
    return;
  }
  svc.connect.forEach((target, j) => {
    const ep = c.endpoint(target, `${at}.connect[${j}]`);
    if (ep !== undefined && ep.kind !== 'inet') c.add(`${at}.connect[${j}]`, `TLS goes to host:port, not to a unix socket (got ${target})`);
  });
  const hosts = svc.checkHost ?? [];
  const ips = svc.checkIP ?? [];
  if (hosts.length + ips.length === 0) {
    c.add(at, 'a client service needs checkHost or checkIP: without a name check any certificate of the CA would be accepted as the central');
  }
  peerNames(c, hosts, ips, at);
}
