/**
 * BundleService.waitFor on the own supervisor: the daemon is spawned only once each socket it
 * needs at start exists (ovn-controller and br-int.mgmt: without it, the controller's rconn
 * backs off a whole second), a service that starts `after` one still waiting does not overtake
 * it (the metadata agent after ovn-controller), and a stop() cancels a start still waiting. The daemon is a small
 * node process that records when it ran.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManagedService } from '../src/supervisor/service.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'od-wait-for-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A socket file (bound by a process that then dies): all waitFor looks at is that it is one. */
function makeSocket(p: string): void {
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`, p]);
}

const daemon = `require('fs').writeFileSync(process.argv[1], 'ran'); setInterval(() => {}, 1e9);`;

it('spawns the daemon only once the socket it waits for exists', async () => {
  const sock = path.join(dir, 'br-int.mgmt');
  const ran = path.join(dir, 'ran');
  const svc = new ManagedService({ name: 'ovn-controller', argv: [process.execPath, '-e', daemon, ran], logFile: path.join(dir, 'svc.log'), waitFor: [sock] }, () => undefined, () => undefined);
  svc.start();
  try {
    await sleep(400);
    expect(existsSync(ran)).toBe(false);
    makeSocket(sock);
    const deadline = Date.now() + 5000;
    while (!existsSync(ran) && Date.now() < deadline) await sleep(10);
    expect(existsSync(ran)).toBe(true);
  } finally {
    await svc.stop();
  }
});

it('a regular file at the path is not the socket: still waiting', async () => {
  const sock = path.join(dir, 'br-int.mgmt');
  const ran = path.join(dir, 'ran');
  spawnSync('/bin/sh', ['-c', `echo x > "${sock}"`]);
  const svc = new ManagedService({ name: 'ovn-controller', argv: [process.execPath, '-e', daemon, ran], logFile: path.join(dir, 'svc.log'), waitFor: [sock] }, () => undefined, () => undefined);
  svc.start();
  await sleep(300);
  await svc.stop();
  expect(existsSync(ran)).toBe(false);
});

it('stop() while waiting: the daemon never starts, even when the socket appears after', async () => {
  const sock = path.join(dir, 'br-int.mgmt');
  const ran = path.join(dir, 'ran');
  const svc = new ManagedService({ name: 'ovn-controller', argv: [process.execPath, '-e', daemon, ran], logFile: path.join(dir, 'svc.log'), waitFor: [sock] }, () => undefined, () => undefined);
  svc.start();
  await sleep(100);
  await svc.stop();
  makeSocket(sock);
  await sleep(300);
  expect(existsSync(ran)).toBe(false);
});

it('a service started after one still waiting spawns only after it (the metadata agent after ovn-controller)', async () => {
  const sock = path.join(dir, 'br-int.mgmt');
  const ran = path.join(dir, 'ran');
  const log: string[] = [];
  const note = (line: string) => log.push(line.replace(/ pid \d+$/, ''));
  const ctl = new ManagedService({ name: 'ovn-controller', argv: [process.execPath, '-e', daemon, ran], logFile: path.join(dir, 'ctl.log'), waitFor: [sock] }, () => undefined, note);
  const agent = new ManagedService({ name: 'ovn-metadata-agent', argv: [process.execPath, '-e', daemon, `${ran}-agent`], logFile: path.join(dir, 'agent.log'), after: ['ovn-controller'] }, () => undefined, note);
  ctl.start();
  agent.start(() => [ctl]);
  try {
    await sleep(400);
    expect(log).toEqual([]);
    makeSocket(sock);
    const deadline = Date.now() + 5000;
    while (log.length < 2 && Date.now() < deadline) await sleep(10);
    expect(log).toEqual(['ovn-controller: started', 'ovn-metadata-agent: started']);
  } finally {
    await agent.stop();
    await ctl.stop();
  }
});
