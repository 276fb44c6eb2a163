/**
 * The own supervisor with real processes: stand-in daemons (`sleep` through a uniquely named
 * symlink, a tiny node TCP server) and a real ovsdb-server. Every process a test starts carries
 * its temp dir in argv (the marker), which is how the tests count and clean up only their own.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, packageRoot, supervisorPaths } from '../src/paths.js';
import { ZxRunner } from '../src/runner.js';
import { OwnSupervisor } from '../src/supervisor/own.js';
import { liveSupervisor } from '../src/supervisor/identity.js';
import { readProcStat } from '../src/supervisor/proc.js';
import { readStatus } from '../src/supervisor/state.js';
import type { ServiceSpec, Supervisor } from '../src/supervisor/types.js';

const rand = (): string => Math.random().toString(36).slice(2, 8);

/** pids of live (non-zombie) processes whose command line contains `marker`. */
/** SIGKILL `pid` only once /proc shows it is a live process carrying `marker` (this test's dir). */
function killMarked(pid: number | undefined, marker: string): void {
  if (pid === undefined || pid <= 1 || !pidsWith(marker).includes(pid)) throw new Error(`refusing to kill pid ${String(pid)}: not a live process of ${marker}`);
  process.kill(pid, 'SIGKILL');
}

function pidsWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const state = readProcStat(pid)?.state;
    if (cmdline.includes(marker) && state !== undefined && state !== 'Z') found.push(pid);
  }
  return found;
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The supervisor runs dist/cli.js: rebuild when any source is newer than the last build. */
function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => statSync(path.join(dir, f)).mtimeMs));
  if (existsSync(cliPath) && statSync(cliPath).mtimeMs >= newest(path.join(packageRoot, 'src'))) return;
  // tsc still emits when another part of the tree has type errors; what we need is the output.
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: packageRoot, stdio: 'pipe' });
  } catch {
    // checked below
  }
  expect(existsSync(path.join(packageRoot, 'dist', 'commands', 'supervise.js'))).toBe(true);
}

/** A TCP echo server on an ephemeral loopback port that writes its port to `portFile`. */
const TCP_SERVER = `
const net = require('node:net'); const fs = require('node:fs');
const s = net.createServer((c) => c.pipe(c));
s.listen(0, '127.0.0.1', () => { fs.writeFileSync(process.argv[1] + '.tmp', String(s.address().port)); fs.renameSync(process.argv[1] + '.tmp', process.argv[1]); console.log('listening'); });
`;

describe('own supervisor with real processes', () => {
  let tmp: string;
  let sup: Supervisor;

  beforeAll(() => ensureBuilt(), 120_000);

  function setup(): void {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'odsup-'));
    sup = new OwnSupervisor(path.join(tmp, 'state'));
  }

  /** `sleep 1000` whose argv[0] is a symlink inside tmp: unique per test. */
  function sleeper(name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec {
    const bin = path.join(tmp, `sleep-${name}`);
    if (!existsSync(bin)) symlinkSync('/bin/sleep', bin);
    return { name, argv: [bin, '1000'], logFile: path.join(tmp, 'logs', `${name}.log`), ...extra };
  }

  /** A daemon that ignores SIGTERM: stopped only by the SIGKILL after the 5 s grace. */
  function ignoresSigterm(): ServiceSpec {
    return {
      name: 'stubborn',
      argv: [process.execPath, '-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1e9)", tmp],
      logFile: path.join(tmp, 'logs', 'stubborn.log'),
    };
  }

  function tcpServer(name: string): ServiceSpec {
    const portFile = path.join(tmp, `${name}.port`);
    return { name, argv: [process.execPath, '-e', TCP_SERVER, portFile], logFile: path.join(tmp, 'logs', `${name}.log`) };
  }

  afterEach(async () => {
    await sup.stop().catch(() => undefined);
    // Whatever a failed test left behind, but only processes carrying this test's marker.
    for (const pid of pidsWith(tmp)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('ensure starts daemons that outlive the client, each in its own process group', async () => {
    setup();
    const services = [sleeper('a'), sleeper('b', { after: ['a'] }), tcpServer('tcp')];
    // The client is a separate node process that exits once ensure() resolves.
    const script = `import { OwnSupervisor } from ${JSON.stringify(path.join(packageRoot, 'dist', 'supervisor', 'own.js'))};
      await new OwnSupervisor(process.argv[1]).ensure(JSON.parse(process.argv[2]));`;
    const started = Date.now();
    execFileSync(process.execPath, ['--input-type=module', '-e', script, path.join(tmp, 'state'), JSON.stringify(services)]);
    console.log(`ensure() from a cold start in a separate client: ${Date.now() - started} ms`);

    const status = await sup.status();
    expect(status.map((s) => [s.name, s.running, s.restarts])).toEqual([
      ['a', true, 0],
      ['b', true, 0],
      ['tcp', true, 0],
    ]);
    expect(pidsWith(path.join(tmp, 'sleep-a'))).toHaveLength(1);
    for (const s of status) {
      // Its own process group and session: a terminal's SIGINT to `up` never reaches it.
      expect(readProcStat(s.pid!)?.pgrp).toBe(s.pid);
      expect(readProcStat(s.pid!)?.pgrp).not.toBe(readProcStat(process.pid)?.pgrp);
    }
    // ensure() returns once the process runs; the server writes its port a moment later.
    const port = await waitFor('tcp.port written', () => (existsSync(path.join(tmp, 'tcp.port')) ? Number(readFileSync(path.join(tmp, 'tcp.port'), 'utf8')) || undefined : undefined));
    const echoed = await echo(port, 'hello');
    expect(echoed).toBe('hello');

    const again = Date.now();
    await sup.ensure(services);
    console.log(`ensure() with nothing to change: ${Date.now() - again} ms`);
    expect((await sup.status()).map((s) => s.pid)).toEqual(status.map((s) => s.pid));
  });

  it('restarts a service killed with -9 (new pid, restarts=1)', async () => {
    setup();
    await sup.ensure([sleeper('a'), sleeper('b')]);
    const before = await sup.status();
    const victim = before.find((s) => s.name === 'a')!;
    const killedAt = Date.now();
    killMarked(victim.pid, tmp);
    const after = await waitFor('a restarted', async () => {
      const s = (await sup.status()).find((x) => x.name === 'a');
      return s?.running && s.pid !== victim.pid ? s : undefined;
    });
    console.log(`restart after kill -9: ${Date.now() - killedAt} ms`);
    expect(after.restarts).toBe(1);
    expect(after.lastExit?.signal).toBe('SIGKILL');
    expect(pidsWith(path.join(tmp, 'sleep-a'))).toEqual([after.pid]);
    expect((await sup.status()).find((s) => s.name === 'b')?.pid).toBe(before.find((s) => s.name === 'b')?.pid);
  });

  it('a daemon that binds a unix socket and never replaces a stale one (as stunnel) comes back after kill -9: its unixListeners are cleared first', async () => {
    setup();
    const sock = path.join(tmp, 'tunnel.sb');
    // Binds without unlinking first, like stunnel: EADDRINUSE if a socket is left at the path.
    const server = `require('node:net').createServer(() => undefined).listen(process.argv[1])`;
    const spec = (extra: Partial<ServiceSpec> = {}): ServiceSpec => ({ name: 'tunnel', argv: [process.execPath, '-e', server, sock], logFile: path.join(tmp, 'logs', 'tunnel.log'), ...extra });
    await sup.ensure([spec({ unixListeners: [sock] })]);
    const first = await waitFor('the socket', () => (existsSync(sock) ? (sup.status() as Promise<{ name: string; pid?: number }[]>) : undefined));
    const victim = first.find((x) => x.name === 'tunnel')!;
    killMarked(victim.pid, tmp);
    // -9 leaves the socket file behind; the restarted daemon must still be able to bind it.
    const back = await waitFor('tunnel restarted and listening', async () => {
      const st = (await sup.status()).find((x) => x.name === 'tunnel');
      if (!(st?.running === true && st.pid !== victim.pid)) return undefined;
      return new Promise<boolean | undefined>((resolve) => {
        const c = net.connect({ path: sock }, () => { c.destroy(); resolve(true); });
        c.on('error', () => resolve(undefined));
      });
    });
    expect(back).toBe(true);
    expect(readFileSync(path.join(tmp, 'logs', 'tunnel.log'), 'utf8')).not.toMatch(/EADDRINUSE/);
  });

  it('after the supervisor is killed with -9, ensure() adopts the orphans: each runs exactly once', async () => {
    setup();
    const services = [sleeper('a'), tcpServer('tcp'), sleeper('b', { after: ['a'] })];
    await sup.ensure(services);
    const before = await sup.status();
    // ensure() returns once the process runs; the server writes its port a moment later.
    const port = await waitFor('tcp.port written', () => (existsSync(path.join(tmp, 'tcp.port')) ? Number(readFileSync(path.join(tmp, 'tcp.port'), 'utf8')) || undefined : undefined));
    const conn = await connect(port); // open across the supervisor's death: adoption keeps it

    const paths = supervisorPaths(path.join(tmp, 'state'));
    const old = liveSupervisor(paths, path.join(tmp, 'state'))!;
    killMarked(old.pid, tmp);
    await waitFor('supervisor dead', () => (liveSupervisor(paths, path.join(tmp, 'state')) === undefined ? true : undefined));
    // Orphans still run, but nobody supervises them: status says so.
    expect(pidsWith(path.join(tmp, 'sleep-a'))).toHaveLength(1);
    const orphaned = await sup.status();
    expect(orphaned.every((s) => !s.running)).toBe(true);
    // ...and which process each still is (what `status` shows as "runs without its supervisor").
    expect(orphaned.map((s) => [s.name, s.unsupervisedPid])).toEqual(before.map((s) => [s.name, s.pid]));

    const started = Date.now();
    await sup.ensure(services);
    console.log(`ensure() after kill -9 of the supervisor (adopting 3): ${Date.now() - started} ms`);
    const after = await sup.status();
    expect(after.map((s) => [s.name, s.running, s.pid])).toEqual(before.map((s) => [s.name, true, s.pid]));
    for (const marker of ['sleep-a', 'sleep-b', 'tcp.port']) expect(pidsWith(path.join(tmp, marker))).toHaveLength(1);
    expect(liveSupervisor(paths, path.join(tmp, 'state'))?.pid).not.toBe(old.pid);
    expect(await roundTrip(conn, 'still here')).toBe('still here');
    conn.destroy();

    // An adopted process is not the new supervisor's child: its death is noticed by polling.
    killMarked(before[0]?.pid, tmp);
    const restarted = await waitFor('adopted a restarted', async () => {
      const s = (await sup.status()).find((x) => x.name === 'a');
      return s?.running && s.pid !== before[0]!.pid ? s : undefined;
    });
    expect(restarted.restarts).toBe(1);
    expect(pidsWith(path.join(tmp, 'sleep-a'))).toEqual([restarted.pid]);
  });

  it('after the supervisor is killed with -9, a changed orphan is replaced, not duplicated', async () => {
    setup();
    await sup.ensure([sleeper('a'), sleeper('b')]);
    const before = await sup.status();
    const paths = supervisorPaths(path.join(tmp, 'state'));
    killMarked(liveSupervisor(paths, path.join(tmp, 'state'))?.pid, tmp);
    await waitFor('supervisor dead', () => (liveSupervisor(paths, path.join(tmp, 'state')) === undefined ? true : undefined));

    await sup.ensure([sleeper('a'), sleeper('b', { env: { CHANGED: '1' } })]);
    const after = await sup.status();
    expect(after.find((s) => s.name === 'a')?.pid).toBe(before.find((s) => s.name === 'a')?.pid);
    expect(after.find((s) => s.name === 'b')?.pid).not.toBe(before.find((s) => s.name === 'b')?.pid);
    expect(pidsWith(path.join(tmp, 'sleep-b'))).toHaveLength(1);
    expect(readFileSync(`/proc/${after.find((s) => s.name === 'b')!.pid}/environ`, 'utf8')).toContain('CHANGED=1');
  });

  it('ensure() with a changed argv restarts only that service; stop(names) stops only those', async () => {
    setup();
    await sup.ensure([sleeper('a'), sleeper('b'), sleeper('c', { after: ['b'] })]);
    const before = new Map((await sup.status()).map((s) => [s.name, s.pid]));
    const changed = sleeper('b');
    changed.argv = [changed.argv[0]!, '999'];
    const started = Date.now();
    await sup.ensure([sleeper('a'), changed, sleeper('c', { after: ['b'] })]);
    console.log(`ensure() restarting one changed service: ${Date.now() - started} ms`);
    const after = new Map((await sup.status()).map((s) => [s.name, s.pid]));
    expect(after.get('a')).toBe(before.get('a'));
    expect(after.get('c')).toBe(before.get('c'));
    expect(after.get('b')).not.toBe(before.get('b'));
    expect(readFileSync(`/proc/${after.get('b')}/cmdline`, 'utf8').split('\0')).toContain('999');

    await sup.stop(['c', 'a']);
    expect((await sup.status()).map((s) => s.name)).toEqual(['b']);
    expect(pidsWith(path.join(tmp, 'sleep-a'))).toEqual([]);
    expect(pidsWith(path.join(tmp, 'sleep-c'))).toEqual([]);
    expect(pidsWith(path.join(tmp, 'sleep-b'))).toEqual([after.get('b')]);
  });

  it('a service that always exits fails ensure() with the tail of its log', async () => {
    setup();
    const broken: ServiceSpec = {
      name: 'broken',
      argv: ['sh', '-c', `echo "bad config in ${tmp}/broken.conf" >&2; exit 3`],
      logFile: path.join(tmp, 'logs', 'broken.log'),
    };
    const started = Date.now();
    const err = await sup.ensure([sleeper('a'), broken]).catch((e: unknown) => e as Error);
    console.log(`ensure() rejecting a crash-looping service: ${Date.now() - started} ms`);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/service broken failed to start .*exit code 3/);
    expect((err as Error).message).toContain(`bad config in ${tmp}/broken.conf`);
  });

  it('a missing program fails ensure() with the reason in the message', async () => {
    setup();
    const missing: ServiceSpec = { name: 'missing', argv: [path.join(tmp, 'no-such-daemon')], logFile: path.join(tmp, 'logs', 'm.log') };
    const err = await sup.ensure([missing]).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/service missing failed to start/);
    expect((err as Error).message).toContain('ENOENT');
  });

  it('stop() leaves no process of ours, children and supervisor included', async () => {
    setup();
    await sup.ensure([sleeper('a'), sleeper('b', { after: ['a'] }), tcpServer('tcp')]);
    const paths = supervisorPaths(path.join(tmp, 'state'));
    const supervisorPid = liveSupervisor(paths, path.join(tmp, 'state'))!.pid;
    expect(pidsWith(tmp).length).toBe(4); // 3 services + the supervisor (--dir under tmp)
    const started = Date.now();
    await sup.stop();
    console.log(`stop() of 3 services and the supervisor: ${Date.now() - started} ms`);
    expect(pidsWith(tmp)).toEqual([]);
    expect(readProcStat(supervisorPid)?.state ?? 'gone').toMatch(/gone|Z/);
    expect((await sup.status()).filter((s) => s.running)).toEqual([]);
  });

  it('stop() stops dependents first, with their stopSignal, and SIGKILLs a daemon that ignores it', async () => {
    setup();
    const order = path.join(tmp, 'stop-order');
    const polite = (name: string, after: string[], signal: NodeJS.Signals): ServiceSpec => ({
      name,
      argv: [process.execPath, '-e', `process.on('${signal}', () => { require('node:fs').appendFileSync(process.argv[1], process.argv[2] + '\\n'); process.exit(0); }); setInterval(() => {}, 1e9)`, order, name],
      logFile: path.join(tmp, 'logs', `${name}.log`),
      after,
      stopSignal: signal,
    });
    const stubborn = ignoresSigterm();
    await sup.ensure([polite('db', [], 'SIGTERM'), polite('northd', ['db'], 'SIGINT'), polite('controller', ['northd'], 'SIGTERM'), stubborn]);
    const started = Date.now();
    await sup.stop();
    const took = Date.now() - started;
    console.log(`stop() with one daemon ignoring SIGTERM (5 s grace): ${took} ms`);
    expect(readFileSync(order, 'utf8').trim().split('\n')).toEqual(['controller', 'northd', 'db']);
    expect(took).toBeGreaterThanOrEqual(5_000);
    expect(pidsWith(tmp)).toEqual([]);
  });

  it('a service\'s own stopGraceMs: one that takes 6 s to exit after SIGTERM (longer than the default 5 s grace) is let finish, not SIGKILLed', async () => {
    setup();
    const done = path.join(tmp, 'slow-exit.done');
    const slowExit: ServiceSpec = {
      name: 'slow-exit',
      argv: [process.execPath, '-e', "process.on('SIGTERM', () => setTimeout(() => { require('node:fs').writeFileSync(process.argv[1], 'clean'); process.exit(0); }, 6000)); setInterval(() => {}, 1e9)", done],
      logFile: path.join(tmp, 'logs', 'slow-exit.log'),
      stopGraceMs: 10_000,
    };
    await sup.ensure([slowExit]);
    await sup.stop();
    expect(existsSync(done) ? readFileSync(done, 'utf8') : 'killed before it finished').toBe('clean');
    expect(pidsWith(tmp)).toEqual([]);
  });

  it('stop() as the supervisor is killed -9 mid-shutdown: its pid file stays, so the service it had not stopped yet is stopped as an orphan', async () => {
    setup();
    await sup.ensure([ignoresSigterm()]);
    const paths = supervisorPaths(path.join(tmp, 'state'));
    const supervisorPid = liveSupervisor(paths, path.join(tmp, 'state'))?.pid;
    const stopping = sup.stop();
    // In its 5 s grace for the stubborn service when the supervisor dies.
    await waitFor('stubborn stopping', async () => ((await readStatus(paths.status))?.services.find((r) => r.name === 'stubborn')?.state === 'stopping' ? true : undefined));
    killMarked(supervisorPid, tmp);
    await stopping;
    expect(existsSync(paths.pid)).toBe(true);
    expect(pidsWith(tmp)).toEqual([]);
  });

  it('a supervisor that stopped every service removes its pid file', async () => {
    setup();
    await sup.ensure([sleeper('a')]);
    const paths = supervisorPaths(path.join(tmp, 'state'));
    expect(existsSync(paths.pid)).toBe(true);
    await sup.stop();
    expect(existsSync(paths.pid)).toBe(false);
    expect(pidsWith(tmp)).toEqual([]);
  });

  it('stop() without a live supervisor stops its orphans', async () => {
    setup();
    await sup.ensure([sleeper('a'), sleeper('b')]);
    const paths = supervisorPaths(path.join(tmp, 'state'));
    killMarked(liveSupervisor(paths, path.join(tmp, 'state'))?.pid, tmp);
    await waitFor('supervisor dead', () => (liveSupervisor(paths, path.join(tmp, 'state')) === undefined ? true : undefined));
    expect(pidsWith(tmp)).toHaveLength(2);
    await sup.stop();
    expect(pidsWith(tmp)).toEqual([]);
  });

  it('signal() reaches the service (SIGHUP to a reloading daemon)', async () => {
    setup();
    const reloader: ServiceSpec = {
      name: 'reloader',
      argv: [process.execPath, '-e', "process.on('SIGHUP', () => console.log('reloaded')); setInterval(() => {}, 1e9)", tmp],
      logFile: path.join(tmp, 'logs', 'reloader.log'),
    };
    await sup.ensure([reloader]);
    const pid = (await sup.status())[0]!.pid;
    await sup.signal('reloader', 'SIGHUP');
    await waitFor('reload logged', () => (readFileSync(reloader.logFile, 'utf8').includes('reloaded') ? true : undefined));
    expect((await sup.status())[0]!.pid).toBe(pid);
    await expect(sup.signal('nope', 'SIGHUP')).rejects.toThrow(/not running/);
  });
});

describe('own supervisor with network namespaces and a real ovsdb-server', () => {
  let tmp: string;
  let sup: Supervisor;
  const netns = `odsup-${rand()}`;
  const runner = new ZxRunner();

  beforeAll(async () => {
    ensureBuilt();
    tmp = mkdtempSync(path.join(os.tmpdir(), 'odsup-'));
    sup = new OwnSupervisor(path.join(tmp, 'state'));
    await runner.run(['ip', 'netns', 'add', netns]);
  }, 120_000);

  afterAll(async () => {
    await sup.stop().catch(() => undefined);
    for (const pid of pidsWith(tmp)) process.kill(pid, 'SIGKILL');
    await runner.run(['ip', 'netns', 'del', netns], { allowFailure: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  it('runs a service inside its network namespace', async () => {
    const bin = path.join(tmp, 'sleep-ns');
    symlinkSync('/bin/sleep', bin);
    await sup.ensure([{ name: 'in-ns', argv: [bin, '1000'], netns, logFile: path.join(tmp, 'in-ns.log') }]);
    const pid = (await sup.status())[0]!.pid!;
    const inside = statSync(`/proc/${pid}/ns/net`).ino;
    expect(inside).toBe(statSync(`/run/netns/${netns}`).ino);
    expect(inside).not.toBe(statSync('/proc/self/ns/net').ino);
    // `ip netns exec` execs in place: the recorded pid is the daemon itself.
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe(bin);
  });

  it.skipIf(!existsSync('/usr/sbin/ovsdb-server'))('keeps a real ovsdb-server running across kill -9', async () => {
    const db = path.join(tmp, 'conf.db');
    const sock = path.join(tmp, 'db.sock');
    await runner.run(['ovsdb-tool', 'create', db, '/usr/share/openvswitch/vswitch.ovsschema']);
    const ovsdb: ServiceSpec = {
      name: 'ovsdb',
      argv: ['ovsdb-server', db, `--remote=punix:${sock}`, `--unixctl=${path.join(tmp, 'ovsdb.ctl')}`, `--pidfile=${path.join(tmp, 'ovsdb.pid')}`, '--no-chdir'],
      logFile: path.join(tmp, 'ovsdb.log'),
    };
    const started = Date.now();
    await sup.ensure([ovsdb]);
    console.log(`ensure() of a real ovsdb-server: ${Date.now() - started} ms`);
    const dbs = async (): Promise<string[]> =>
      (await runner.run(['ovsdb-client', 'list-dbs', `unix:${sock}`], { timeoutMs: 5_000 })).stdout.trim().split('\n');
    expect(await dbs()).toContain('Open_vSwitch');
    const first = (await sup.status()).find((s) => s.name === 'ovsdb')!;
    killMarked(first.pid, tmp);
    const second = await waitFor('ovsdb-server restarted', async () => {
      const s = (await sup.status()).find((x) => x.name === 'ovsdb');
      return s?.running && s.pid !== first.pid ? s : undefined;
    });
    expect(second.restarts).toBe(1);
    await waitFor('ovsdb answers again', async () => ((await dbs().catch((): string[] => [])).includes('Open_vSwitch') ? true : undefined));
    await sup.stop(['ovsdb']);
    expect(pidsWith(db)).toEqual([]);
  });
});

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function roundTrip(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d) => resolve(d.toString()));
    socket.once('error', reject);
    socket.write(text);
  });
}

async function echo(port: number, text: string): Promise<string> {
  const socket = await connect(port);
  try {
    return await roundTrip(socket, text);
  } finally {
    socket.destroy();
  }
}
