/**
 * A daemon's unix listeners left by a process that died (stunnel removes them only on a clean
 * exit, and its bind fails on one that is there): the own supervisor removes each before it
 * starts the daemon, if it is a socket, and nothing else (not a regular file, not through a
 * symlink). The daemon is a small node process that binds like stunnel does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManagedService } from '../src/supervisor/service.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'od-stale-sock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A socket file with nobody behind it: bound by a process that then dies without unlinking. */
function staleSocket(p: string): void {
  const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`, p]);
  expect(r.signal).toBe('SIGKILL');
  expect(lstatSync(p).isSocket()).toBe(true);
}

const waitFor = async (what: string, ok: () => boolean): Promise<void> => {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

it('removes a stale listener socket before the start (the bind succeeds), and leaves a regular file and a symlink alone', async () => {
  const sock = path.join(dir, 'central2.sb');
  const elsewhere = path.join(dir, 'elsewhere.sock');
  const file = path.join(dir, 'central3.sb');
  const link = path.join(dir, 'central4.sb');
  const bound = path.join(dir, 'bound');
  staleSocket(sock);
  staleSocket(elsewhere);
  writeFileSync(file, 'not a socket');
  symlinkSync(elsewhere, link);
  // Binds like stunnel: EADDRINUSE on a file that is there (exit 3), else says so and stays.
  const daemon = `const net = require('net'); const fs = require('fs');
    net.createServer().on('error', (e) => { fs.writeFileSync(process.argv[2], e.code); process.exit(3); }).listen(process.argv[1], () => fs.writeFileSync(process.argv[2], 'listening'));
    setInterval(() => {}, 1e9);`;
  const logs: string[] = [];
  const svc = new ManagedService(
    { name: 'stunnel-client', argv: [process.execPath, '-e', daemon, sock, bound], logFile: path.join(dir, 'svc.log'), unixListeners: [sock, file, link] },
    () => undefined,
    (l) => logs.push(l),
  );
  svc.start();
  try {
    await waitFor('the daemon to bind', () => existsSync(bound) && readFileSync(bound, 'utf8') !== '');
    expect(readFileSync(bound, 'utf8'), logs.join('\n')).toBe('listening');
  } finally {
    await svc.stop();
  }
  expect(readFileSync(file, 'utf8')).toBe('not a socket');
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(lstatSync(elsewhere).isSocket()).toBe(true);
});

it('without unixListeners the stale socket stays and the bind fails (what the removal prevents)', async () => {
  const sock = path.join(dir, 'central2.sb');
  const bound = path.join(dir, 'bound');
  staleSocket(sock);
  const daemon = `require('net').createServer().on('error', (e) => { require('fs').writeFileSync(process.argv[2], e.code); process.exit(3); }).listen(process.argv[1], () => require('fs').writeFileSync(process.argv[2], 'listening'));
    setInterval(() => {}, 1e9);`;
  const svc = new ManagedService({ name: 'stunnel-client', argv: [process.execPath, '-e', daemon, sock, bound], logFile: path.join(dir, 'svc.log') }, () => undefined, () => undefined);
  svc.start();
  try {
    await waitFor('the daemon to try its bind', () => existsSync(bound) && readFileSync(bound, 'utf8') !== '');
    expect(readFileSync(bound, 'utf8')).toBe('EADDRINUSE');
  } finally {
    await svc.stop();
  }
});
