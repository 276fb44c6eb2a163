/**
 * `deploy`, `status --inventory` and `central` through main(): bad input is exit 2 before any host
 * is touched, and a host whose SSH port refuses connections (a free port on 127.0.0.1, the real
 * ssh client) is reported as unreachable with exit 1.
 */
import { runCli, type CliResult } from './helpers/cli.js';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { initPki } from '../src/pki/index.js';

let dir: string;
let pki: string;
let site: string;
let knownHosts: string;

async function cli(...args: string[]): Promise<CliResult> {
  return runCli(args);
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'od-deploy-cli-'));
  pki = path.join(dir, 'pki');
  await initPki(pki, { keyBits: 2048, commonName: 'deploy-cli-test' });
  knownHosts = path.join(dir, 'known_hosts');
  await fs.writeFile(knownHosts, '');
  const port = await closedPort();
  site = path.join(dir, 'site.yaml');
  await fs.writeFile(
    site,
    stringify({
      site: 'clitest',
      hosts: [
        // Loopback cannot be a host's address (validate refuses it); SSH still goes to 127.0.0.x.
        { name: 'c1', addresses: ['192.0.2.1'], roles: ['central'], ssh: { user: 'root', host: '127.0.0.1', port } },
        { name: 'w1', addresses: ['192.0.2.2'], roles: ['worker'], encap: { ip: '192.0.2.2' }, ssh: { user: 'root', host: '127.0.0.2', port } },
      ],
    }),
  );
});
afterEach(() => {
  process.exitCode = undefined;
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('deploy: bad input is exit 2, before any SSH', () => {
  it('a missing inventory file and an uninitialised PKI directory', async () => {
    const r = await cli('deploy', '--inventory', path.join(dir, 'nope.yaml'), '--pki', pki);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope\.yaml.*cannot read the site file: no such file/);
    const p = await cli('deploy', '--inventory', site, '--pki', path.join(dir, 'empty'));
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/ca-bundle\.crt: cannot read the CA bundle/);
    expect(p.stderr).toMatch(/crl\.pem: cannot read the CRL/);
  });
  it('unknown --hosts, a bad --concurrency and --connect-timeout, all reported', async () => {
    const r = await cli('deploy', '--inventory', site, '--pki', pki, '--hosts', 'c1,zz', '--concurrency', '0', '--connect-timeout', 'x');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency: must be a positive integer/);
    expect(r.stderr).toMatch(/--connect-timeout: expected whole seconds/);
    const h = await cli('deploy', '--inventory', site, '--pki', pki, '--hosts', 'c1,zz');
    expect(h.code).toBe(2);
    expect(h.stderr).toMatch(/--hosts: no host "zz" in the inventory \(hosts: c1, w1\)/);
  });
  it('central add of a worker', async () => {
    const r = await cli('central', 'add', 'w1', '--inventory', site, '--pki', pki);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/w1 is not a central/);
  });
});

describe('deploy and status against hosts that refuse SSH (real ssh client, 127.0.0.1)', () => {
  it('deploy --json: every host unreachable with the reason, exit 1', async () => {
    const r = await cli('deploy', '--inventory', site, '--pki', pki, '--known-hosts', knownHosts, '--connect-timeout', '3', '--json', '--quiet');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as { ok: boolean; hosts: { host: string; status: string; error?: string; changeCount: number }[] };
    expect(j.ok).toBe(false);
    expect(j.hosts.map((h) => [h.host, h.status, h.changeCount])).toEqual([
      ['c1', 'unreachable', 0],
      ['w1', 'unreachable', 0],
    ]);
    expect(j.hosts[0]?.error).toMatch(/host unreachable[\s\S]*Connection refused/);
  });
  it('status --inventory: nothing reachable is exit 3, the table says why', async () => {
    const r = await cli('status', '--inventory', site, '--known-hosts', knownHosts, '--connect-timeout', '3');
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^Site clitest: UNREACHABLE/);
    expect(r.stdout).toMatch(/c1\s+central\s+NO/);
    const j = await cli('status', '--inventory', site, '--known-hosts', knownHosts, '--connect-timeout', '3', '--json');
    expect(j.code).toBe(3);
    expect((JSON.parse(j.stdout) as { verdict: string }).verdict).toBe('unreachable');
  });
});
