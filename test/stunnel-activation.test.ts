/**
 * The socket-activation launcher that keeps stunnel's listeners open across reloads: it binds
 * every `accept` of the config in order, hands them over as fds 3.. with LISTEN_FDS/LISTEN_PID
 * (checked here by a stand-in program), forwards signals and exits with the child's status.
 * Its effect on real stunnel reloads is measured in certs.slow.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stunnelActivationScript } from '../src/paths.js';
import { socketActivatedStunnel, systemPython } from '../src/tools/stunnel-activation.js';
import { canConnect, freePorts } from './helpers/tls-daemons.js';

const python = systemPython();
const hasPython = spawnSync(python, ['--version']).status === 0;
if (!hasPython) console.warn('stunnel-activation.test.ts: no python3 (OVS depends on it): skipped');

// Stands in for stunnel: reports what it inherited, then waits for a signal.
const PROBE = `
import os, socket, sys, signal, json
n = int(os.environ.get("LISTEN_FDS", "0"))
ports = []
for fd in range(3, 3 + n):
    s = socket.socket(fileno=fd)
    ports.append([s.getsockname()[1], s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)])
    s.detach()
# Handlers before the report: the test signals as soon as it reads it (a HUP that came first
# would end the probe with the default action; that flaked under load).
signal.signal(signal.SIGHUP, lambda *a: print("HUP", flush=True))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
print(json.dumps({"pid_ok": os.environ.get("LISTEN_PID") == str(os.getpid()), "ports": ports}), flush=True)
while True:
    signal.pause()
`;

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'od-activate-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('socketActivatedStunnel', () => {
  it('runs stunnel through the launcher with the config twice (to bind, and for stunnel)', () => {
    expect(socketActivatedStunnel('stunnel4', '/etc/s.conf', '/usr/bin/python3')).toEqual(['/usr/bin/python3', stunnelActivationScript, '/etc/s.conf', 'stunnel4', '/etc/s.conf']);
  });
});

describe.skipIf(!hasPython)('stunnel-socket-activate.py', () => {
  it('binds each accept in config order, passes them as fds 3.., forwards HUP and TERM, exits with the child status', async () => {
    const [a, b] = await freePorts(2);
    const conf = path.join(dir, 's.conf');
    // Out of port order on purpose, one with odd spacing: file order is what counts.
    await fs.writeFile(conf, `; accept = 127.0.0.1:1 (a comment)\n[x]\naccept = 127.0.0.1:${b}\n[y]\n  accept=127.0.0.1:${a}\n`);
    const child = spawn(python, [stunnelActivationScript, conf, python, '-c', PROBE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const waitFor = async (text: string) => {
      const deadline = Date.now() + 10_000;
      while (!out.includes(text)) {
        if (Date.now() > deadline) throw new Error(`no ${text} in: ${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor('pid_ok');
    const report = JSON.parse(out.split('\n')[0] ?? '{}') as { pid_ok: boolean; ports: [number, number][] };
    expect(report.pid_ok).toBe(true);
    expect(report.ports).toEqual([
      [b, 1],
      [a, 1],
    ]);
    // The launcher closed its own copies: only the child listens, and it does.
    expect(await canConnect('127.0.0.1', a!)).toBe(true);
    child.kill('SIGHUP');
    await waitFor('HUP');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(7);
    expect(await canConnect('127.0.0.1', a!)).toBe(false);
  });

  it('fails with a message when an address cannot be bound', () => {
    const conf = path.join(dir, 'bad.conf');
    return fs.writeFile(conf, '[x]\naccept = 203.0.113.1:6641\n').then(() => {
      const r = spawnSync(python, [stunnelActivationScript, conf, 'true'], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/stunnel-socket-activate: .*bad.conf: .*(Cannot assign requested address|not available)/);
    });
  });
});
