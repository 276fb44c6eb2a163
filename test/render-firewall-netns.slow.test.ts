/**
 * The rendered nftables file, loaded for real (`nft -f`) in a network namespace that plays
 * central1: loopback and the host's own address still reach its RAFT port, the other central
 * does too, a worker's new connection to the RAFT port is dropped (a timeout, not a refusal)
 * while the worker still reaches the Southbound port, and loading touches no other table.
 * Three namespaces of our own, joined by two veth pairs created inside them; a tiny node TCP
 * listener plays the stunnel server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInventory } from '../src/inventory/index.js';
import { renderHostBundle } from '../src/render/index.js';
import { bundleSource } from '../src/paths.js';
import { fixtureOptions, fixturePki } from './helpers/render-fixture.js';

const tag = `fw${randomBytes(3).toString('hex')}`;
const ns = { central1: `${tag}-c1`, central2: `${tag}-c2`, worker: `${tag}-w1` };
const created: string[] = [];

/** nf_tables usable inside a namespace of our own: else every assertion below is meaningless. */
function nftUnavailable(): string | undefined {
  if (spawnSync('nft', ['--version']).status !== 0) return 'nft is not installed';
  const probe = `${tag}-probe`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'cannot create a network namespace';
  try {
    const r = spawnSync('ip', ['netns', 'exec', probe, 'nft', '-f', '-'], {
      input: 'table inet probe { chain input { type filter hook input priority filter; policy accept; ct state established accept; iif "lo" accept\n}\n}\n',
      encoding: 'utf8',
    });
    return r.status === 0 ? undefined : `nf_tables is not usable in a network namespace: ${r.stderr.trim()}`;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}
const skipReason = nftUnavailable();
if (skipReason !== undefined) process.stderr.write(`render-firewall-netns: ${skipReason}; skipping\n`);

const sh = (argv: string[], input?: string): string => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
};
const inNs = (name: string, argv: string[], input?: string): string => sh(['ip', 'netns', 'exec', name, ...argv], input);

// central1 is 10.77.2.1 towards central2 and 10.77.3.1 towards the worker (its second address).
const SITE = `
site: fwtest
hosts:
  - name: central1
    addresses: [10.77.2.1, 10.77.3.1]
    roles: [central]
  - name: central2
    addresses: [10.77.2.2]
    roles: [central]
  - name: worker1
    addresses: [10.77.3.2]
    roles: [worker]
    encap: { type: geneve, ip: 10.77.3.2 }
`;
const inv = parseInventory(SITE, 'fwtest.yaml').inventory;

const CONNECT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
s.setTimeout(1500, () => { console.log('timeout'); process.exit(0); });
s.on('connect', () => { console.log('connected'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });
`;
/** 'connected', 'timeout' (dropped) or the socket error code ('ECONNREFUSED': nobody listens). */
const connect = (from: string, host: string, port: number): string => inNs(from, ['node', '-e', CONNECT, host, String(port)]).trim();

let tmp: string;
let listener: ChildProcess | undefined;
let firewallFile: string;

describe.skipIf(skipReason !== undefined)('the rendered firewall, loaded in a network namespace', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
    for (const n of Object.values(ns)) {
      sh(['ip', 'netns', 'add', n]);
      created.push(n);
      inNs(n, ['ip', 'link', 'set', 'lo', 'up']);
    }
    // Both ends are created inside our namespaces: no interface name in the machine's namespace.
    const pair = (a: string, aIf: string, aAddr: string, b: string, bIf: string, bAddr: string) => {
      sh(['ip', '-n', a, 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b]);
      inNs(a, ['ip', 'addr', 'add', aAddr, 'dev', aIf]);
      inNs(b, ['ip', 'addr', 'add', bAddr, 'dev', bIf]);
      inNs(a, ['ip', 'link', 'set', aIf, 'up']);
      inNs(b, ['ip', 'link', 'set', bIf, 'up']);
    };
    pair(ns.central1, 'to-c2', '10.77.2.1/24', ns.central2, 'to-c1', '10.77.2.2/24');
    pair(ns.central1, 'to-w1', '10.77.3.1/24', ns.worker, 'to-c1', '10.77.3.2/24');

    const bundle = renderHostBundle(inv, 'central1', fixturePki(), fixtureOptions());
    const content = bundle.files.get(bundleSource('/etc/ovn-deploy/firewall.nft'))?.content;
    if (content === undefined) throw new Error('central1 has no firewall file');
    firewallFile = path.join(tmp, 'firewall.nft');
    writeFileSync(firewallFile, content);

    // The stunnel server's stand-in: accepts on every address, on the NB and NB RAFT TLS ports.
    const ports = [inv.ports.nb, inv.ports.sb, inv.ports.nbRaft];
    const server = `const net = require('node:net'); let n = 0;
      for (const p of ${JSON.stringify(ports)}) net.createServer((c) => c.end()).listen(p, '0.0.0.0', () => { if (++n === ${ports.length}) console.log('ready'); });`;
    listener = spawn('ip', ['netns', 'exec', ns.central1, 'node', '-e', server], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('listener not ready')), 10_000);
      listener?.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      listener?.once('exit', (code) => reject(new Error(`listener exited (${code})`)));
    });
  });

  afterAll(() => {
    listener?.kill('SIGKILL');
    for (const n of created) spawnSync('ip', ['netns', 'del', n]);
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  it('without the file the worker reaches the RAFT port (the drop below is the file\'s doing)', () => {
    expect(connect(ns.worker, '10.77.3.1', inv.ports.nbRaft)).toBe('connected');
  });

  it('loaded: loopback, own address and the other central reach RAFT; a worker is dropped, but reaches SB', () => {
    // A table of the host's own, which loading must leave alone.
    inNs(ns.central1, ['nft', '-f', '-'], 'table inet host_own { chain input { type filter hook input priority filter; policy accept;\n}\n}\n');
    inNs(ns.central1, ['nft', '-f', firewallFile]);
    inNs(ns.central1, ['nft', '-f', firewallFile]); // a reload replaces the table, no error
    const tables = inNs(ns.central1, ['nft', 'list', 'tables']).trim().split('\n').sort();
    expect(tables).toEqual(['table inet host_own', 'table inet ovn_deploy']);
    expect(inNs(ns.central1, ['nft', 'list', 'table', 'inet', 'ovn_deploy'])).toContain('policy accept');

    expect(connect(ns.central1, '127.0.0.1', inv.ports.nbRaft)).toBe('connected');
    expect(connect(ns.central1, '10.77.3.1', inv.ports.nbRaft)).toBe('connected');
    expect(connect(ns.central1, '10.77.2.1', inv.ports.nbRaft)).toBe('connected');
    expect(connect(ns.central2, '10.77.2.1', inv.ports.nbRaft)).toBe('connected');
    expect(connect(ns.worker, '10.77.3.1', inv.ports.nbRaft)).toBe('timeout');
    expect(connect(ns.worker, '10.77.3.1', inv.ports.sb)).toBe('connected');
    // A port the file does not own stays the host's business: refused by the kernel, not dropped.
    expect(connect(ns.worker, '10.77.3.1', 6999)).toBe('ECONNREFUSED');
    // Removing the table gives the worker back the RAFT port: the drop was the file's and nothing else.
    inNs(ns.central1, ['nft', 'delete', 'table', 'inet', 'ovn_deploy']);
    expect(connect(ns.worker, '10.77.3.1', inv.ports.nbRaft)).toBe('connected');
  });
});
