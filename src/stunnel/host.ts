/**
 * Which stunnel configs a host of the inventory runs: a central fronts its ovsdb-servers with a
 * TLS server; a worker or metadata agent reaches the centrals through a local TLS client.
 */
import { isIP } from 'node:net';
import { InputError, type Problem } from '../errors.js';
import type { Host, Inventory } from '../inventory/types.js';
import { stunnelFiles } from '../paths.js';
import { bracketHost, canonicalIp, parseEndpoint } from './endpoint.js';
import { renderStunnelConfig } from './render.js';
import type { ClientService, HostStunnelLayout, ServerService, StunnelConfigSpec } from './types.js';

const DBS = ['nb', 'sb'] as const;

/** Names a client checks in a central's certificate: its DNS names, or its IPs when it has none. */
function peerIdentity(centrals: Host[]): { checkHost: string[]; checkIP: string[] } {
  const hosts = new Set<string>();
  const ips = new Set<string>();
  for (const c of centrals) {
    const names = [c.name, ...c.dnsNames];
    for (const n of names) {
      if (isIP(n) === 0) hosts.add(n.toLowerCase());
      else ips.add(canonicalIp(n));
    }
    // A central known only by addresses is checked by them (they are in its SAN).
    if (names.every((n) => isIP(n) !== 0)) c.addresses.forEach((a) => ips.add(canonicalIp(a)));
  }
  return { checkHost: [...hosts], checkIP: [...ips] };
}

function serverSpec(inv: Inventory, host: Host, layout: HostStunnelLayout): StunnelConfigSpec {
  const files = stunnelFiles('server', layout);
  const services: ServerService[] = host.addresses.flatMap((addr) =>
    DBS.map((db) => ({
      name: `${db}-${canonicalIp(addr)}`,
      accept: `${bracketHost(addr)}:${inv.ports[db]}`,
      connect: `127.0.0.1:${inv.loopbackPorts[db]}`,
    })),
  );
  return common(inv, host, layout, 'server', files, services, layout.tls);
}

function clientSpec(inv: Inventory, host: Host, layout: HostStunnelLayout, centrals: Host[]): StunnelConfigSpec {
  const files = stunnelFiles('client', layout);
  const identity = peerIdentity(centrals);
  // sb is what ovn-controller (ovn-remote) and the metadata agent use; nb serves admin tools.
  const services: ClientService[] = DBS.map((db) => ({
    name: db,
    accept: `127.0.0.1:${inv.ports[db]}`,
    connect: centrals.map((c) => `${bracketHost(c.addresses[0] ?? '')}:${inv.ports[db]}`),
    checkHost: identity.checkHost,
    checkIP: identity.checkIP,
  }));
  return common(inv, host, layout, 'client', files, services, layout.clientTls ?? layout.tls);
}

function common(
  inv: Inventory,
  host: Host,
  layout: HostStunnelLayout,
  kind: 'server' | 'client',
  files: { pidFile: string; logFile: string },
  services: (ServerService | ClientService)[],
  tls: HostStunnelLayout['tls'],
): StunnelConfigSpec {
  return {
    kind,
    site: inv.site,
    host: host.name,
    tls,
    pidFile: files.pidFile,
    logFile: files.logFile,
    foreground: layout.foreground ?? true,
    services,
    ...(layout.debugLevel === undefined ? {} : { debugLevel: layout.debugLevel }),
  };
}

/** Two listeners on one host must not want the same address and port (wildcards clash with all). */
function listenerClashes(inv: Inventory, host: Host, specs: StunnelConfigSpec[]): Problem[] {
  const listeners: { what: string; addr: string; port: number }[] = [];
  if (host.roles.includes('central')) {
    for (const [db, port] of Object.entries(inv.loopbackPorts)) listeners.push({ what: `ovsdb-server (loopbackPorts.${db})`, addr: '127.0.0.1', port });
  }
  for (const spec of specs) {
    for (const svc of spec.services) {
      const ep = parseEndpoint(svc.accept);
      if (!('error' in ep) && ep.kind === 'inet') listeners.push({ what: `stunnel ${spec.kind} [${svc.name}]`, addr: canonicalIp(ep.host), port: ep.port });
    }
  }
  const wildcard = (a: string) => a === '0.0.0.0' || a === '::';
  const problems: Problem[] = [];
  listeners.forEach((a, i) => {
    for (const b of listeners.slice(i + 1)) {
      const sameFamily = isIP(a.addr) === isIP(b.addr);
      if (a.port === b.port && sameFamily && (a.addr === b.addr || wildcard(a.addr) || wildcard(b.addr))) {
        problems.push({ path: `hosts[${inv.hosts.indexOf(host)}]`, message: `${host.name}: ${a.what} and ${b.what} both listen on ${bracketHost(b.addr)}:${b.port}` });
      }
    }
  });
  return problems;
}

/** The stunnel configs `hostName` runs: server side for a central, client side for a worker or metadata agent, both for both. */
export function stunnelSpecsForHost(inv: Inventory, hostName: string, layout: HostStunnelLayout): StunnelConfigSpec[] {
  const host = inv.hosts.find((h) => h.name === hostName);
  if (host === undefined) throw new InputError([{ path: 'hosts', message: `no host named ${JSON.stringify(hostName)} in site ${inv.site}` }]);
  const at = `hosts[${inv.hosts.indexOf(host)}]`;
  const problems: Problem[] = [];
  const specs: StunnelConfigSpec[] = [];
  if (host.roles.includes('central')) {
    if (host.addresses.length === 0) problems.push({ path: `${at}.addresses`, message: `central ${host.name} needs an address for its TLS listeners` });
    else specs.push(serverSpec(inv, host, layout));
  }
  if (host.roles.includes('worker') || host.roles.includes('metadata-agent')) {
    const centrals = inv.hosts.filter((h) => h.roles.includes('central'));
    const addressless = centrals.filter((c) => c.addresses.length === 0);
    if (centrals.length === 0) problems.push({ path: 'hosts', message: `${host.name} needs a central to connect to, and site ${inv.site} has none` });
    for (const c of addressless) problems.push({ path: `hosts[${inv.hosts.indexOf(c)}].addresses`, message: `central ${c.name} has no address to connect to` });
    if (centrals.length > 0 && addressless.length === 0) specs.push(clientSpec(inv, host, layout, centrals));
  }
  problems.push(...listenerClashes(inv, host, specs));
  if (problems.length > 0) throw new InputError(problems);
  return specs;
}

/** Config file name (`stunnel-server.conf`, `stunnel-client.conf`) -> content, for the apply step. */
export function renderHostStunnel(inv: Inventory, hostName: string, layout: HostStunnelLayout): Map<string, { content: string; mode: number }> {
  const files = new Map<string, { content: string; mode: number }>();
  for (const spec of stunnelSpecsForHost(inv, hostName, layout)) {
    // No secret in a config (only the key's path): world-readable like Debian's /etc/stunnel.
    files.set(stunnelFiles(spec.kind, layout).confName, { content: renderStunnelConfig(spec), mode: 0o644 });
  }
  return files;
}
