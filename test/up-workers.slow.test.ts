/**
 * Other sizes: `--workers 1` (both VMs on worker1) and `--workers 3` (vm3 on worker3, pinged from
 * vm1 on worker1), and converging an existing sandbox to another size.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { cli, cliOk, inNetns, leftovers, nbNames, requireBuiltCli, sbNames, status } from './sandbox-helpers.js';

/** A ping of our own from a VM's namespace: the CLI's "3/3" is its own report, this is the system's. */
function expectPing(dir: string, fromVm: string, ip: string): void {
  const ping = inNetns(sandboxNames(sandboxId(dir)).vmNetns(fromVm), ['ping', '-c', '2', '-i', '0.1', '-W', '1', ip]);
  expect(ping.code, ping.out).toBe(0);
  expect(ping.out).toMatch(/ttl=63/); // one router hop: network1 -> router1 -> network2
}

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('up-workers.slow.test.ts: skipped, needs root (network namespaces, daemons)');

describe.skipIf(notRoot)('up --workers', () => {
  let parent: string;

  beforeAll(async () => {
    requireBuiltCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'od-workers-'));
  });

  afterAll(async () => {
    for (const d of ['one', 'three']) await cli(['down', '--dir', path.join(parent, d)]);
    await rm(parent, { recursive: true, force: true });
  });

  it('--workers 1: both VMs on worker1, ping and trace across the router; then grows to 2', async () => {
    const dir = path.join(parent, 'one');
    const r = await cliOk(['up', '--dir', dir, '--workers', '1']);
    expect(r.stdout).toContain('ovn-trace vm1 -> vm2: network1 -> router1 -> network2 -> vm2');
    expect(r.stdout).toMatch(/central \+ 1 worker /);
    const s = (await status(dir)).json;
    expect(s.healthy).toBe(true);
    expect(s.ports.map((p) => [p.name, p.chassis])).toEqual([
      ['vm1', 'worker1'],
      ['vm2', 'worker1'],
    ]);
    expect(s.chassis.map((c) => c.name)).toEqual(['worker1']);
    expectPing(dir, 'vm1', '192.168.1.11');

    // Same sandbox, one more worker: vm2 moves to worker2.
    const grown = await cliOk(['up', '--dir', dir, '--workers', '2']);
    expect(grown.stdout).toMatch(/Ping vm1 -> vm2 3\/3/);
    const g = (await status(dir)).json;
    expect(g.problems).toEqual([]);
    expect(g.ports.map((p) => [p.name, p.chassis])).toEqual([
      ['vm1', 'worker1'],
      ['vm2', 'worker2'],
    ]);
    expectPing(dir, 'vm1', '192.168.1.11');
    await cliOk(['down', '--dir', dir]);
    expect(leftovers(sandboxId(dir), dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
  });

  it('--workers 3: vm3 on worker3 answers vm1 on worker1; shrinking to 2 removes worker3 and vm3', async () => {
    const dir = path.join(parent, 'three');
    // A directory that already holds someone's file: down must leave both.
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'not ours\n');
    const r = await cliOk(['up', '--dir', dir, '--workers', '3']);
    expect(r.stdout).toContain('ovn-trace vm1 -> vm2: network1 -> router1 -> network2 -> vm2');
    expect(r.stdout).toContain('ovn-trace vm1 -> vm3: network1 -> router1 -> network2 -> vm3');
    expect(r.stdout).toMatch(/Ping vm1 -> vm2 3\/3, vm1 -> vm3 3\/3/);
    const s = (await status(dir)).json;
    expect(s.healthy).toBe(true);
    expect(s.ports.map((p) => [p.name, p.chassis])).toEqual([
      ['vm1', 'worker1'],
      ['vm2', 'worker2'],
      ['vm3', 'worker3'],
    ]);
    // central 4, the operator's tunnel, 4 per worker.
    expect(s.daemons).toHaveLength(17);
    expectPing(dir, 'vm1', '192.168.1.11');
    expectPing(dir, 'vm1', '192.168.1.12');

    const id = sandboxId(dir);
    const shrunk = await cliOk(['up', '--dir', dir, '--workers', '2']);
    expect(shrunk.stdout).toMatch(/Removed .*od[0-9a-f]{4}-w3.*chassis worker3/);
    const t = (await status(dir)).json;
    expect(t.problems).toEqual([]);
    expect(sbNames(dir, 'Chassis')).toEqual(['worker1', 'worker2']);
    expect(nbNames(dir, 'Logical_Switch_Port')).toEqual(['net1-router1', 'net2-router1', 'vm1', 'vm2']);
    expect(leftovers(id, dir).namespaces.filter((n) => /-(w3|vm3)\b/.test(n))).toEqual([]);
    expectPing(dir, 'vm1', '192.168.1.11');
    await cliOk(['down', '--dir', dir]);
    expect(leftovers(id, dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });
});
