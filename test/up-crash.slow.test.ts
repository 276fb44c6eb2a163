/**
 * `up` killed with -9 half-way: the next `up` repairs the sandbox (healthy, nothing duplicated),
 * and `down` alone cleans up after a killed `up` too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath } from '../src/paths.js';
import { sandboxId } from '../src/sandbox/naming.js';
import { cli, cliOk, leftovers, nbNames, requireBuiltCli, sbNames, status } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('up-crash.slow.test.ts: skipped, needs root (network namespaces, daemons)');

/**
 * Starts `up` and kills it with SIGKILL once its (plain) progress shows `marker`, plus `delayMs`.
 * Returns what it printed before it died.
 */
function upKilledAfter(dir: string, marker: RegExp, delayMs: number): Promise<string> {
  return upKilledAfterWithPid(dir, marker, delayMs).then((r) => r.printed);
}

function upKilledAfterWithPid(dir: string, marker: RegExp, delayMs: number): Promise<{ printed: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, 'up', '--dir', dir, '--plain'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
    let out = '';
    let armed = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (!armed && marker.test(out)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`up finished (exit ${code}) before it could be killed:\n${out}`));
      else resolve({ printed: out, pid: child.pid ?? 0 });
    });
  });
}

describe.skipIf(notRoot)('up killed mid-way', () => {
  let parent: string;

  beforeAll(async () => {
    requireBuiltCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'od-crash-'));
  });

  afterAll(async () => {
    for (const d of ['a', 'b', 'c']) await cli(['down', '--dir', path.join(parent, d)]);
    await rm(parent, { recursive: true, force: true });
  });

  it('the next up repairs it: healthy, no duplicated switches, routers, ports or chassis', async () => {
    const dir = path.join(parent, 'a');
    // Killed in the middle of the hosts' apply: the central's databases and stunnel starting,
    // the workers' certificates signed or not, nothing bound yet.
    const printed = await upKilledAfter(dir, /central: services stage 0: start/, 0);
    expect(printed).not.toMatch(/Ping vm1 -> vm2/);
    const r = await cliOk(['up', '--dir', dir]);
    expect(r.stdout).toContain('ovn-trace vm1 -> vm2: network1 -> router1 -> network2 -> vm2');
    const { code, json } = await status(dir);
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(nbNames(dir, 'Logical_Switch')).toEqual(['network1', 'network2']);
    expect(nbNames(dir, 'Logical_Router')).toEqual(['router1']);
    expect(nbNames(dir, 'Logical_Switch_Port')).toEqual(['net1-router1', 'net2-router1', 'vm1', 'vm2']);
    expect(sbNames(dir, 'Chassis')).toEqual(['worker1', 'worker2']);
    // One process per daemon: none started twice.
    const pids = json.daemons.map((d) => d.pid);
    expect(new Set(pids).size).toBe(pids.length);
    await cliOk(['down', '--dir', dir]);
    expect(leftovers(sandboxId(dir), dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
  });

  it('killed while holding the PKI lock: the next up does not wait for the dead lock to age', async () => {
    const dir = path.join(parent, 'c');
    const { pid } = await upKilledAfterWithPid(dir, /✔ Network namespaces/, 0);
    // Whether or not it died inside the PKI's critical section, make it so: its lock, its pid.
    await mkdir(path.join(dir, 'pki'), { recursive: true });
    if (!existsSync(path.join(dir, 'pki', '.lock'))) await writeFile(path.join(dir, 'pki', '.lock'), `${pid}\n`);
    const r = await cliOk(['up', '--dir', dir]);
    expect(r.ms).toBeLessThan(15_000); // the PKI's own stale-lock timeout is 30 s
    expect(r.stdout).toContain('network1 -> router1 -> network2 -> vm2');
    expect((await status(dir)).json.healthy).toBe(true);
    await cliOk(['down', '--dir', dir]);
  });

  it('down alone removes what a killed up had made', async () => {
    const dir = path.join(parent, 'b');
    await upKilledAfter(dir, /✔ Network namespaces/, 150);
    const id = sandboxId(dir);
    expect(leftovers(id, dir).namespaces.length).toBeGreaterThan(0);
    const r = await cliOk(['down', '--dir', dir]);
    expect(r.stdout).toMatch(/down in/);
    expect(leftovers(id, dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
    expect(existsSync(dir)).toBe(false);
  });
});
