import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { supervisorPaths } from '../src/paths.js';
import { isSupervisorCmdline } from '../src/supervisor/identity.js';
import { checkStarted, OwnSupervisor } from '../src/supervisor/own.js';
import { bootId, identify, isAlive, readCmdline, readProcStat } from '../src/supervisor/proc.js';
import { serviceHash, serviceProblems, startOrder, validateServices } from '../src/supervisor/spec.js';
import { writeStatus, type ServiceRecord, type StatusFile } from '../src/supervisor/state.js';
import type { ServiceSpec } from '../src/supervisor/types.js';

const svc = (name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
  name,
  argv: ['/usr/bin/true'],
  logFile: `/tmp/${name}.log`,
  ...extra,
});

describe('service specs', () => {
  it('lists every problem with its path', () => {
    const problems = serviceProblems([
      svc('a', { after: ['a', 'nope'] }),
      svc('a'),
      svc('bad name', { logFile: 'rel.log', cwd: 'here', env: { 'NO-DASH': '1' }, stopSignal: 'SIGNOPE' as NodeJS.Signals, stopGraceMs: 3_600_000 }),
      { name: 'c', argv: [], logFile: '/tmp/c.log', netns: 'has/slash', stopGraceMs: 1.5 },
      svc('d', { stopGraceMs: 25_000 }),
    ]);
    expect(problems.map((p) => p.path)).toEqual([
      'services[1].name',
      'services[2].name',
      'services[2].logFile',
      'services[2].cwd',
      'services[2].env.NO-DASH',
      'services[2].stopSignal',
      'services[2].stopGraceMs',
      'services[3].argv',
      'services[3].netns',
      'services[3].stopGraceMs',
      'services[0].after[0]',
      'services[0].after[1]',
    ]);
    expect(problems[0]?.message).toMatch(/duplicate service name "a"/);
    expect(problems.find((p) => p.path === 'services[2].stopGraceMs')?.message).toMatch(/expected whole milliseconds from 100 to 25000, got 3600000/);
    expect(problems.at(-1)?.message).toMatch(/unknown service "nope"/);
  });

  it('reports an "after" cycle as an InputError naming the cycle', () => {
    const services = [svc('a', { after: ['c'] }), svc('b', { after: ['a'] }), svc('c', { after: ['b'] }), svc('d')];
    expect(() => validateServices(services)).toThrow(InputError);
    expect(() => validateServices(services)).toThrow(/cycle: a -> c -> b -> a/);
    expect(() => startOrder(services)).toThrow(InputError);
  });

  it('orders services after their dependencies, otherwise as given', () => {
    const order = startOrder([
      svc('controller', { after: ['vswitchd', 'sb'] }),
      svc('nb'),
      svc('vswitchd', { after: ['local-db'] }),
      svc('sb'),
      svc('northd', { after: ['nb', 'sb'] }),
      svc('local-db'),
    ]).map((s) => s.name);
    expect(order).toEqual(['nb', 'sb', 'northd', 'local-db', 'vswitchd', 'controller']);
  });

  it('hashes what needs a restart and nothing else', () => {
    const base = svc('a', { argv: ['x', '--y'], env: { A: '1', B: '2' }, netns: 'n', cwd: '/c' });
    const h = serviceHash(base);
    expect(serviceHash({ ...base, env: { B: '2', A: '1' } })).toBe(h);
    expect(serviceHash({ ...base, after: ['z'], stopSignal: 'SIGINT', stopGraceMs: 9_000, settleMs: 5 })).toBe(h);
    for (const changed of [
      { argv: ['x', '--z'] },
      { env: { A: '1', B: '3' } },
      { netns: 'm' },
      { netns: undefined },
      { cwd: '/d' },
      { logFile: '/tmp/other.log' },
    ]) {
      expect(serviceHash({ ...base, ...changed })).not.toBe(h);
    }
  });
});

describe('own supervisor client (no daemon)', () => {
  let tmp: string;
  let stray: ChildProcess | undefined;

  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'odsup-unit-'));
  });
  afterEach(() => {
    stray?.kill('SIGKILL');
    stray = undefined;
    rmSync(tmp, { recursive: true, force: true });
  });

  /** A process this test started, standing in for "somebody else's process". */
  async function startStray(): Promise<number> {
    stray = spawn('sleep', ['1000'], { stdio: 'ignore' });
    const pid = stray.pid!;
    for (let i = 0; i < 100 && readCmdline(pid)?.[0] !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
    return pid;
  }

  function record(name: string, pid: number, extra: Partial<ServiceRecord> = {}): ServiceRecord {
    return {
      name,
      hash: 'h',
      argv: ['sleep', '1000'],
      logFile: path.join(tmp, `${name}.log`),
      state: 'running',
      pid,
      startTicks: readProcStat(pid)!.startTicks,
      startedAt: new Date().toISOString(),
      restarts: 0,
      failures: 0,
      ...extra,
    };
  }

  async function fakeStatus(records: ServiceRecord[], supervisorPid = 999_999): Promise<void> {
    const status: StatusFile = {
      version: 1,
      supervisorPid,
      supervisorStartTicks: 1,
      bootId: bootId(),
      updatedAt: new Date().toISOString(),
      services: records,
    };
    await writeStatus(supervisorPaths(tmp).status, status);
  }

  it('rejects invalid services before writing anything', async () => {
    const sup = new OwnSupervisor(tmp);
    await expect(sup.ensure([svc('a'), svc('a')])).rejects.toBeInstanceOf(InputError);
    expect(existsSync(supervisorPaths(tmp).services)).toBe(false);
  });

  it('warms up only a host that has never had services (a missing CLI shows whether it tried to launch)', () => {
    const sup = new OwnSupervisor(tmp, { cliPath: path.join(tmp, 'no-cli.js') });
    expect(() => sup.warmUp()).toThrow(/no-cli\.js is missing/);
    mkdirSync(supervisorPaths(tmp).dir, { recursive: true });
    writeFileSync(supervisorPaths(tmp).services, '[]\n');
    expect(() => sup.warmUp()).not.toThrow();
  });

  it('never signals a recorded pid whose start time does not match (pid reuse)', async () => {
    const pid = await startStray();
    await fakeStatus([record('a', pid, { startTicks: readProcStat(pid)!.startTicks - 1 })]);
    await new OwnSupervisor(tmp).stop();
    expect(isAlive(pid)).toBe(true);
  });

  it('never signals a recorded pid running another program', async () => {
    const pid = await startStray();
    await fakeStatus([record('a', pid, { argv: ['/usr/sbin/ovsdb-server'] })]);
    await new OwnSupervisor(tmp).stop();
    expect(isAlive(pid)).toBe(true);
  });

  it('never signals a recorded pid from another boot', async () => {
    const pid = await startStray();
    await fakeStatus([record('a', pid)]);
    const file = supervisorPaths(tmp).status;
    writeFileSync(file, readFileSync(file, 'utf8').replace(bootId(), '00000000-0000-0000-0000-000000000000'));
    await new OwnSupervisor(tmp).stop();
    expect(isAlive(pid)).toBe(true);
  });

  it('never treats a pid file naming another program as the supervisor', async () => {
    const pid = await startStray();
    await fakeStatus([record('a', pid)], pid);
    writeFileSync(supervisorPaths(tmp).pid, `${pid}\n`);
    const sup = new OwnSupervisor(tmp);
    // The service record matches, but its "supervisor" is not `supervise --dir`: not supervised.
    expect((await sup.status()).map((s) => s.running)).toEqual([false]);
    await expect(sup.signal('a', 'SIGTERM')).rejects.toThrow(/not running/);
    // stop() SIGTERMs a live supervisor: not this one.
    await fakeStatus([record('a', pid, { argv: ['other'] })], pid);
    await sup.stop();
    expect(isAlive(pid)).toBe(true);
  });

  it('does stop an orphan it can prove is its own (so the checks above are not vacuous)', async () => {
    const pid = await startStray();
    await fakeStatus([record('a', pid)]);
    await new OwnSupervisor(tmp).stop();
    expect(identify(pid)).toBeUndefined();
  });

  it('recognises only `supervise --dir` of the same state directory', () => {
    expect(isSupervisorCmdline(['node', '/x/dist/cli.js', 'supervise', '--dir', tmp], tmp)).toBe(true);
    expect(isSupervisorCmdline(['node', 'cli.js', 'supervise', '--dir', `${tmp}/`], tmp)).toBe(true);
    expect(isSupervisorCmdline(['node', 'cli.js', 'supervise', '--dir', '/elsewhere'], tmp)).toBe(false);
    expect(isSupervisorCmdline(['sleep', '1000'], tmp)).toBe(false);
  });
});

describe('ensure() readiness from status.json', () => {
  const me = readCmdline(process.pid)![0]!;
  const spec = svc('a', { argv: [me, 'x'] });
  const status = (r: Partial<ServiceRecord>): StatusFile => ({
    version: 1,
    supervisorPid: 1,
    supervisorStartTicks: 1,
    bootId: bootId(),
    updatedAt: '',
    services: [
      {
        name: 'a',
        hash: serviceHash(spec),
        argv: spec.argv,
        logFile: spec.logFile,
        state: 'running',
        pid: process.pid,
        startTicks: readProcStat(process.pid)!.startTicks,
        startedAt: new Date(Date.now() - 1000).toISOString(),
        restarts: 0,
        failures: 0,
        ...r,
      },
    ],
  });

  it('is ready once the process with the desired hash has stayed up long enough', () => {
    expect(checkStarted([spec], status({}))).toEqual({ waiting: [] });
    expect(checkStarted([spec], status({ startedAt: new Date().toISOString() })).waiting).toEqual([spec]);
    expect(checkStarted([{ ...spec, settleMs: 0 }], status({ startedAt: new Date().toISOString() })).waiting).toEqual([]);
  });

  it('waits for a stale hash, a backoff or a dead pid; fails after repeated quick deaths', () => {
    expect(checkStarted([spec], status({ hash: 'old' })).waiting).toEqual([spec]);
    expect(checkStarted([spec], status({ state: 'backoff', failures: 1 })).waiting).toEqual([spec]);
    expect(checkStarted([spec], status({ startTicks: 1 })).waiting).toEqual([spec]);
    expect(checkStarted([spec], status({ state: 'backoff', failures: 3 })).failed?.spec).toBe(spec);
    expect(checkStarted([spec], status({ state: 'failed', failures: 10 })).failed?.spec).toBe(spec);
  });
});
