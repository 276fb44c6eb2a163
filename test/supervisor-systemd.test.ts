/**
 * The systemd backend cannot run here (systemd is not PID 1), so these tests drive it against a
 * small in-memory model of systemctl/systemd-run behind a RecordingRunner: every name says mocked.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitError } from '../src/errors.js';
import { RecordingRunner } from '../src/runner.js';
import { serviceHash } from '../src/supervisor/spec.js';
import { SystemdSupervisor } from '../src/supervisor/systemd.js';
import type { ServiceSpec } from '../src/supervisor/types.js';

interface FakeUnit {
  Description: string;
  ActiveState: string;
  MainPID: string;
  NRestarts: string;
  ExecMainStartTimestamp?: string;
  ExecMainExitTimestamp?: string;
  ExecMainCode?: string;
  ExecMainStatus?: string;
}

/** Just enough of systemd: transient units that start active unless `failing` names them. */
function fakeSystemd(opts: { state?: string; failing?: Set<string> } = {}) {
  const units = new Map<string, FakeUnit>();
  let nextPid = 1000;
  const runner = new RecordingRunner((argv) => {
    const [cmd, verb] = argv;
    if (cmd === 'systemctl' && verb === 'is-system-running') return { stdout: `${opts.state ?? 'running'}\n` };
    if (cmd === 'systemctl' && verb === 'list-units') {
      return { stdout: [...units].map(([u, p]) => `${u} loaded ${p.ActiveState} running ${p.Description}\n`).join('') };
    }
    if (cmd === 'systemctl' && verb === 'show') {
      const blocks = argv
        .filter((a) => a.endsWith('.service'))
        .map((u) => {
          const p = units.get(u) ?? { Description: '', ActiveState: 'inactive', MainPID: '0', NRestarts: '0' };
          return [`Id=${u}`, ...Object.entries(p).map(([k, v]) => `${k}=${v}`)].join('\n');
        });
      return { stdout: `${blocks.join('\n\n')}\n` };
    }
    if (cmd === 'systemctl' && verb === 'stop') {
      argv.slice(2).forEach((u) => units.delete(u));
      return {};
    }
    if (cmd === 'systemd-run') {
      const unit = argv.find((a) => a.startsWith('--unit='))!.slice('--unit='.length);
      const failing = opts.failing?.has(unit) === true;
      units.set(unit, {
        Description: argv.find((a) => a.startsWith('--description='))!.slice('--description='.length),
        ActiveState: failing ? 'failed' : 'active',
        MainPID: failing ? '0' : String(nextPid++),
        NRestarts: failing ? '5' : '0',
        ExecMainStartTimestamp: '@1700000000',
      });
      return {};
    }
    return {};
  });
  return { runner, units };
}

describe('systemd backend (mocked systemctl)', () => {
  let tmp: string;
  const spec = (name: string, extra: Partial<ServiceSpec> = {}): ServiceSpec => ({
    name,
    argv: ['/usr/sbin/ovsdb-server', `${tmp}/${name}.db`],
    logFile: `${tmp}/logs/${name}.log`,
    settleMs: 0,
    ...extra,
  });
  beforeEach(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'odsup-systemd-'));
  });
  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  it('builds the systemd-run command line of a service (mocked)', () => {
    const sup = new SystemdSupervisor(new RecordingRunner(), 'ovn-deploy-t-');
    const s = spec('ovn-controller', {
      netns: 'chassis1',
      cwd: '/var/lib/x',
      env: { OVS_RUNDIR: '/run/x', A: 'b=c' },
      after: ['vswitchd'],
      stopSignal: 'SIGINT',
    });
    expect(sup.runArgv(s)).toEqual([
      'systemd-run',
      '--unit=ovn-deploy-t-ovn-controller.service',
      `--description=ovn-deploy ovn-controller [${serviceHash(s)}]`,
      '--collect',
      '--quiet',
      '--service-type=exec',
      '--property=Restart=always',
      '--property=RestartSec=1',
      `--property=StandardOutput=append:${tmp}/logs/ovn-controller.log`,
      `--property=StandardError=append:${tmp}/logs/ovn-controller.log`,
      '--property=NetworkNamespacePath=/run/netns/chassis1',
      '--working-directory=/var/lib/x',
      '--property=KillSignal=SIGINT',
      '--property=After=ovn-deploy-t-vswitchd.service',
      '--setenv=A=b=c',
      '--setenv=OVS_RUNDIR=/run/x',
      '--',
      '/usr/sbin/ovsdb-server',
      `${tmp}/ovn-controller.db`,
    ]);
  });

  it('creates units in "after" order, keeps unchanged ones, replaces changed ones, stops unlisted ones (mocked)', async () => {
    const { runner, units } = fakeSystemd();
    const sup = new SystemdSupervisor(runner, 'od-', { pollMs: 1 });
    await sup.ensure([spec('northd', { after: ['nb'] }), spec('nb'), spec('extra')]);
    const runs = (): string[] => runner.calls.filter((c) => c.argv[0] === 'systemd-run').map((c) => c.argv[1]!);
    expect(runs()).toEqual(['--unit=od-nb.service', '--unit=od-northd.service', '--unit=od-extra.service']);
    const nbPid = units.get('od-nb.service')?.MainPID;

    runner.calls.length = 0;
    await sup.ensure([spec('northd', { after: ['nb'], argv: ['/usr/bin/ovn-northd', '-v'] }), spec('nb')]);
    expect(runs()).toEqual(['--unit=od-northd.service']);
    const stops = runner.calls.filter((c) => c.argv[1] === 'stop').map((c) => c.argv.slice(2).sort());
    expect(stops).toEqual([['od-extra.service', 'od-northd.service']]);
    expect(units.get('od-nb.service')?.MainPID).toBe(nbPid);
    expect([...units.keys()].sort()).toEqual(['od-nb.service', 'od-northd.service']);
  });

  it('rejects a unit that fails to start with the tail of its log (mocked)', async () => {
    const { runner } = fakeSystemd({ failing: new Set(['od-bad.service']) });
    const sup = new SystemdSupervisor(runner, 'od-', { pollMs: 1 });
    const bad = spec('bad');
    mkdirSync(path.dirname(bad.logFile), { recursive: true });
    writeFileSync(bad.logFile, 'line 1\novsdb-server: I/O error: no such database\n');
    const err = await sup.ensure([bad]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as Error).message).toMatch(/service bad failed to start/);
    expect((err as Error).message).toContain('no such database');
  });

  it('reports status from systemctl show (mocked)', async () => {
    const { runner, units } = fakeSystemd();
    const sup = new SystemdSupervisor(runner, 'od-', { pollMs: 1 });
    await sup.ensure([spec('nb')]);
    units.set('od-sb.service', {
      Description: 'ovn-deploy sb [x]',
      ActiveState: 'activating',
      MainPID: '0',
      NRestarts: '2',
      ExecMainExitTimestamp: '@1700000100',
      ExecMainCode: '2',
      ExecMainStatus: '9',
    });
    expect(await sup.status()).toEqual([
      { name: 'nb', running: true, pid: 1000, restarts: 0, startedAt: '2023-11-14T22:13:20.000Z' },
      { name: 'sb', running: false, restarts: 2, lastExit: { code: null, signal: 'SIGKILL', at: '2023-11-14T22:15:00.000Z' } },
    ]);
  });

  it('signals the main process and stops every unit with its prefix (mocked)', async () => {
    const { runner, units } = fakeSystemd();
    const sup = new SystemdSupervisor(runner, 'od-', { pollMs: 1 });
    await sup.ensure([spec('stunnel'), spec('nb')]);
    await sup.signal('stunnel', 'SIGHUP');
    expect(runner.calls.at(-1)?.argv).toEqual(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGHUP', 'od-stunnel.service']);
    await expect(sup.signal('absent', 'SIGHUP')).rejects.toThrow(/not running/);
    await sup.stop();
    expect(units.size).toBe(0);
  });

  it('refuses to act when systemd does not answer (mocked)', async () => {
    const { runner } = fakeSystemd({ state: 'offline' });
    const sup = new SystemdSupervisor(runner, 'od-');
    await expect(sup.ensure([spec('nb')])).rejects.toThrow(/systemd does not answer.*offline/);
    expect(runner.calls.some((c) => c.argv[0] === 'systemd-run')).toBe(false);
  });
});
