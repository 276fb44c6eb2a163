/**
 * apply's systemd backend for real: a 1 central + 1 worker site whose hosts run systemd as PID 1
 * (podman --systemd=always, test/helpers/host-image.ts's systemd variant), reached by `deploy`
 * (the built CLI) only over SSH. On such a host apply must run the bundle's own units
 * (/etc/systemd/system/ovn-deploy-*.service): daemon-reload, enable --now, reload on a changed
 * stunnel file, and systemd restarts a killed daemon (Restart=on-failure) — no own supervisor.
 * The distribution's units stay disabled and their drop-ins keep them from starting; after a host
 * restart systemd alone brings the enabled units back, with the OVSDB socket directory (tmpfiles.d)
 * and the central's local-access rules (the units' ExecStartPre) in place before any apply. A certificate renewal (`deploy
 * --renew-certificates`) reloads the stunnel units in place: an `ovsdb-client monitor` of the SB open
 * through the worker's tunnel (a unix socket) survives it, the new serial is served, the units' MainPID stays.
 *
 * Every pid, start time and reload is read from systemd or the journal (after a cursor taken just
 * before), never from the tool's own reports; every test reads the units it checks itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, type Inventory } from '../src/inventory/index.js';
import type { Runner } from '../src/runner.js';
import type { SiteStatus } from '../src/site-status/judge.js';
import { DISTRIBUTION_UNITS } from '../src/render/systemd.js';
import { hostPaths } from '../src/paths.js';
import { centralLoopback } from '../src/site/topology.js';
import { servedSerial } from '../src/tools/tls.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { probeTcp } from './helpers/site-least-privilege.js';
import { cli, requireBuiltCli, type CliResult } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('apply-systemd.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;
/** templates/host/local-access.nft.hbs's table. */
const LOCAL_ACCESS_TABLE = 'ovn_deploy_local';

interface DeployJson {
  ok: boolean;
  hosts: { host: string; status: string; changeCount: number; signed: boolean; renewed?: boolean; error?: string; changes: { kind: string; target: string; action: string }[] }[];
}

function json<T>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

describe.skipIf(notRoot)('apply under systemd as PID 1 (1 central + 1 worker in systemd containers, deploy over SSH)', () => {
  let site: TestSite;
  let sshArgs: string[];
  let inv: Inventory;
  const timings: Record<string, number> = {};
  let monitor: ChildProcess | undefined;

  const exec = async (host: string, argv: string[], allowFailure = false) => {
    const r = await site.exec(host, argv);
    if (!allowFailure && r.code !== 0) throw new Error(`${host}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const show = async (host: string, unit: string): Promise<Record<string, string>> => {
    const r = await exec(host, ['systemctl', 'show', '--property=ActiveState,SubState,UnitFileState,MainPID,NRestarts,ExecMainStatus,ExecMainStartTimestampMonotonic,InvocationID', unit]);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  /** The host's services as its applied bundle lists them, read now; never empty. */
  const bundleUnits = async (host: string): Promise<{ name: string; unit: string; argv: string[] }[]> => {
    const manifest = JSON.parse((await exec(host, ['cat', '/var/lib/ovn-deploy/bundle/manifest.json'])).stdout) as { services: { name: string; unit: string; argv: string[] }[] };
    const svcs = manifest.services.map((s) => ({ name: s.name, unit: s.unit, argv: s.argv }));
    expect(svcs.length, `${host}: services in the bundle`).toBeGreaterThan(0);
    return svcs;
  };
  /** systemd's view of a running unit's main process: `MainPID@start time`, the pid checked to be a real one. */
  const mainProcess = async (host: string, unit: string): Promise<string> => {
    const p = await show(host, unit);
    expect(p.ActiveState, `${host} ${unit}`).toBe('active');
    expect(Number(p.MainPID), `${host} ${unit} MainPID`).toBeGreaterThan(1);
    expect(Number(p.ExecMainStartTimestampMonotonic), `${host} ${unit} start time`).toBeGreaterThan(0);
    return `${p.MainPID}@${p.ExecMainStartTimestampMonotonic}`;
  };
  const everyMainProcess = async (filter: (s: { name: string }) => boolean = () => true): Promise<string[]> => {
    const out: string[] = [];
    for (const h of site.hosts) for (const s of (await bundleUnits(h.name)).filter(filter)) out.push(`${h.name} ${s.unit} ${await mainProcess(h.name, s.unit)}`);
    expect(out.length).toBeGreaterThan(0);
    return out;
  };
  /** A journal position: what is logged after it happened after this call. */
  const journalCursor = async (host: string): Promise<string> => {
    const out = (await exec(host, ['journalctl', '--no-pager', '-n', '0', '--show-cursor'])).stdout;
    const cursor = /-- cursor: (\S+)/.exec(out)?.[1];
    expect(cursor, out).toBeDefined();
    return cursor as string;
  };
  const journalSince = async (host: string, cursor: string, unit: string): Promise<string> =>
    (await exec(host, ['journalctl', '--no-pager', `--after-cursor=${cursor}`, '-u', unit, '-o', 'cat'], true)).stdout;
  const deployCli = (extra: string[] = []) => cli(['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json', ...extra], { timeoutMs: 20 * MIN });
  const central = (): string => site.hosts.find((h) => h.role === 'central')?.name as string;
  const worker = (): string => site.hosts.find((h) => h.role === 'worker')?.name as string;
  const waitFor = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  beforeAll(async () => {
    requireBuiltCli();
    const t0 = Date.now();
    site = await createTestSite({ centrals: 1, workers: 1, systemd: true });
    timings.createSite = Date.now() - t0;
    sshArgs = ['--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    inv = (await loadInventory(site.inventoryFile)).inventory;
  }, 30 * MIN);

  afterAll(async () => {
    console.log(`apply-systemd.slow timings (ms): ${JSON.stringify(timings)}`);
    monitor?.kill('SIGKILL'); // our own podman exec child; the container (and its ovsdb-client) goes with cleanup
    await site?.cleanup();
  }, 10 * MIN);

  it('the test hosts really run systemd as PID 1 (booted, nothing failed)', async () => {
    for (const h of site.hosts) {
      expect((await exec(h.name, ['cat', '/proc/1/comm'])).stdout.trim()).toBe('systemd');
      const state = await waitFor(`${h.name} booted`, 60_000, async () => {
        const s = (await exec(h.name, ['systemctl', 'is-system-running'], true)).stdout.trim();
        return s === 'starting' || s === 'initializing' ? undefined : s;
      });
      expect(state, (await exec(h.name, ['systemctl', '--failed', '--no-legend'], true)).stdout).toBe('running');
    }
  }, 2 * MIN);

  it('deploy (CLI, over SSH) converges both hosts with the bundle units enabled and active; no own supervisor, no distro unit', async () => {
    const r = await deployCli();
    timings.firstDeploy = r.ms;
    expect(r.code, `${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`).toBe(0);
    const j = json<DeployJson>(r);
    expect(j.hosts.map((h) => [h.host, h.status, h.signed])).toEqual(site.hosts.map((h) => [h.name, 'converged', true]));
    for (const hr of j.hosts) {
      const placed = hr.changes.filter((c) => c.kind === 'file' && /^\/etc\/systemd\/system\/ovn-deploy-[a-z0-9-]+\.service$/.test(c.target));
      expect(placed.length, hr.host).toBeGreaterThan(0);
      expect(hr.changes.some((c) => c.kind === 'service' && c.action === 'daemon-reload'), JSON.stringify(hr.changes)).toBe(true);
    }
    for (const h of site.hosts) {
      const svcs = await bundleUnits(h.name);
      // The units systemd knows under our prefix are exactly the bundle's.
      const listed = (await exec(h.name, ['systemctl', 'list-unit-files', '--no-legend', '--type=service', 'ovn-deploy-*'])).stdout;
      const known = listed.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((u): u is string => u !== undefined && u !== '' && u !== 'ovn-deploy-test-hostkeys.service');
      expect(known.sort()).toEqual(svcs.map((s) => s.unit).sort());
      for (const s of svcs) {
        expect((await exec(h.name, ['systemctl', 'is-active', s.unit], true)).stdout.trim(), `${h.name} ${s.unit}`).toBe('active');
        expect((await exec(h.name, ['systemctl', 'is-enabled', s.unit], true)).stdout.trim(), `${h.name} ${s.unit}`).toBe('enabled');
        // The daemon is systemd's: its main process sits in the unit's cgroup.
        const pid = (await show(h.name, s.unit)).MainPID ?? '0';
        expect(Number(pid), `${h.name} ${s.unit} MainPID`).toBeGreaterThan(1);
        // ... and runs the bundle's argv (no stale or foreign process behind the pid).
        expect((await exec(h.name, ['cat', `/proc/${pid}/cmdline`])).stdout.split('\0').filter((a) => a !== ''), `${h.name} ${s.unit}`).toEqual(s.argv);
        expect((await exec(h.name, ['cat', `/proc/${pid}/cgroup`])).stdout).toContain(`/system.slice/${s.unit}`);
      }
      // The distribution's units (installed and enabled by the packages apply installed) are
      // disabled and not running.
      expect((await exec(h.name, ['systemctl', 'cat', h.role === 'central' ? 'ovn-central.service' : 'ovn-host.service'], true)).code, `${h.name}: the distro unit is installed`).toBe(0);
      for (const d of DISTRIBUTION_UNITS) {
        const active = (await exec(h.name, ['systemctl', 'is-active', d], true)).stdout.trim();
        expect(active, `${h.name}: distro unit ${d}`).not.toMatch(/^(active|activating|reloading)$/);
        const enabled = (await exec(h.name, ['systemctl', 'is-enabled', d], true)).stdout.trim();
        expect(enabled, `${h.name}: distro unit ${d}`).not.toBe('enabled');
      }
      // The own supervisor never ran: no `ovn-deploy supervise` process, no supervisor state.
      expect((await exec(h.name, ['pgrep', '-af', 'supervise'], true)).stdout.trim(), h.name).toBe('');
      expect((await exec(h.name, ['test', '-e', '/var/lib/ovn-deploy/supervisor/supervisor.pid'], true)).code, h.name).not.toBe(0);
    }
    // The worker's chassis is in the Southbound.
    const chassis = await waitFor('the worker chassis in the SB', 60_000, async () => {
      const out = (await exec(central(), ['ovn-sbctl', '--db=unix:/var/run/ovn/ovnsb_db.sock', '--timeout=10', '--bare', '--columns=hostname', 'list', 'Chassis'], true)).stdout;
      return out.split('\n').includes(worker()) ? out : undefined;
    });
    expect(chassis).toContain(worker());
  }, 30 * MIN);

  it('a second deploy changes nothing and restarts nothing (same MainPID and start time of every unit)', async () => {
    const before = await everyMainProcess();
    const r = await deployCli();
    timings.secondDeploy = r.ms;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const j = json<DeployJson>(r);
    expect(j.hosts.map((h) => [h.host, h.status, h.changeCount, h.changes])).toEqual(site.hosts.map((h) => [h.name, 'converged', 0, []]));
    expect(await everyMainProcess()).toEqual(before);
  }, 20 * MIN);

  it("the distro units' drop-ins hold: `systemctl start ovn-central` on the central starts nothing, ours keep running", async () => {
    const c = central();
    const ours = await bundleUnits(c);
    const before = await Promise.all(ours.map((s) => mainProcess(c, s.unit)));
    const r = await exec(c, ['systemctl', 'start', 'ovn-central.service'], true);
    expect(r.code, r.stderr).toBe(0); // a failed ConditionPathExists= skips the unit, it is no error
    for (const d of ['ovn-central.service', 'ovn-northd.service', 'ovn-ovsdb-server-nb.service', 'ovn-ovsdb-server-sb.service']) {
      const p = await show(c, d);
      expect(p.ActiveState, `${d} ${JSON.stringify(p)}`).not.toMatch(/^(active|activating|reloading)$/);
    }
    expect(await Promise.all(ours.map((s) => mainProcess(c, s.unit)))).toEqual(before);
  }, 5 * MIN);

  it('a changed stunnel file on the central: the next deploy rewrites it and `systemctl reload`s stunnel (same MainPID)', async () => {
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const svc = (await bundleUnits(central)).find((s) => s.name === 'stunnel-server');
    expect(svc).toBeDefined();
    const unit = (svc as { unit: string }).unit;
    const manifest = JSON.parse((await exec(central, ['cat', '/var/lib/ovn-deploy/bundle/manifest.json'])).stdout) as { files: { dest: string }[] };
    const conf = manifest.files.map((f) => f.dest).find((d) => /stunnel.*server.*\.conf$/.test(d));
    expect(conf).toBeDefined();
    const original = (await exec(central, ['cat', conf as string])).stdout;
    await exec(central, ['sh', '-c', `printf '# drift\\n' >> ${conf as string}`]);
    const before = await show(central, unit);
    const main = await mainProcess(central, unit);
    const cursor = await journalCursor(central);
    const r = await deployCli();
    timings.reloadDeploy = r.ms;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const hr = json<DeployJson>(r).hosts.find((h) => h.host === central);
    expect(hr?.changes.map((c) => `${c.kind}:${c.action}:${c.target}`)).toEqual([`file:update:${conf as string}`, 'service:reload:stunnel-server']);
    expect((await exec(central, ['cat', conf as string])).stdout).toBe(original);
    const after = await show(central, unit);
    expect(after.ActiveState).toBe('active');
    expect(await mainProcess(central, unit)).toBe(main);
    expect(after.InvocationID).toBe(before.InvocationID);
    expect(after.NRestarts).toBe(before.NRestarts);
    // systemd ran the unit's ExecReload during THIS deploy (journal after the cursor; systemd logs
    // the finished reload job) and stunnel re-read its file; no restart.
    // stunnel's own lines reach the journal through its stderr stream, after systemd's: wait for
    // them (CI once read the journal between the two). Its "Configuration successful" ends a
    // re-read; the "Reading configuration from file" line before it was once missing from the
    // journal of a CI run while the rest of the re-read was there, so it is not required.
    const reread = 'Configuration successful';
    const journal = await waitFor('stunnel re-reading its file in the journal', 15_000, async () => {
      const j = await journalSince(central, cursor, unit);
      return j.includes(reread) ? j : undefined;
    }).catch(async () => journalSince(central, cursor, unit));
    expect(journal).toMatch(new RegExp(`^Reloaded ${unit.replace(/\./g, '\\.')}`, 'm'));
    expect(journal).toContain(reread);
    expect(journal).not.toMatch(/^(Stopping|Started) /m);
    const others = json<DeployJson>(r).hosts.filter((h) => h.host !== central);
    expect(others.every((h) => h.changeCount === 0)).toBe(true);
  }, 20 * MIN);

  it('systemctl kill -s KILL ovn-northd: systemd restarts it (Restart=on-failure); status --inventory is healthy', async () => {
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const unit = (await bundleUnits(central)).find((s) => s.name === 'ovn-northd')?.unit as string;
    expect(unit).toBeDefined();
    const before = await show(central, unit);
    expect(Number(before.MainPID)).toBeGreaterThan(1);
    const t0 = Date.now();
    await exec(central, ['systemctl', 'kill', '-s', 'KILL', unit]);
    const after = await waitFor('ovn-northd restarted by systemd', 60_000, async () => {
      const p = await show(central, unit);
      return p.ActiveState === 'active' && Number(p.MainPID) > 1 && p.MainPID !== before.MainPID ? p : undefined;
    });
    expect(Number(after.ExecMainStartTimestampMonotonic)).toBeGreaterThan(Number(before.ExecMainStartTimestampMonotonic));
    timings.northdRestart = Date.now() - t0;
    expect(Number(after.NRestarts)).toBe(Number(before.NRestarts) + 1);
    const st = await waitFor('status --inventory healthy', 2 * MIN, async () => {
      const r = await cli(['status', '--inventory', site.inventoryFile, ...sshArgs, '--json'], { timeoutMs: 3 * MIN });
      const s = json<SiteStatus>(r);
      return r.code === 0 ? s : undefined;
    });
    expect(st.verdict).toBe('healthy');
    expect(st.problems).toEqual([]);
    // northd is back at work: an NB switch reaches the SB datapaths.
    await exec(central, ['ovn-nbctl', '--db=unix:/var/run/ovn/ovnnb_db.sock', '--timeout=20', 'ls-add', 'after-kill']);
    await waitFor('after-kill in the SB', 30_000, async () => {
      const out = (await exec(central, ['ovn-sbctl', '--db=unix:/var/run/ovn/ovnsb_db.sock', '--timeout=10', '--bare', '--columns=external_ids', 'list', 'Datapath_Binding'], true)).stdout;
      return out.includes('after-kill') ? true : undefined;
    });
  }, 10 * MIN);

  it('deploy --renew-certificates: an ovsdb-client monitor open through the worker\'s SB tunnel survives, the new serial is served, the stunnel units keep their MainPID', async () => {
    const c = central();
    const w = worker();
    // A chassis has the SB only (#20: its certificate is refused on the NB): the monitor watches
    // the SB rows northd makes from NB switches, through the worker's stunnel client, which
    // accepts on a unix socket in the root-only socket directory.
    const sbPort = inv.ports.sb;
    const centralIp = site.host(c).mgmtIp;
    const tunnel = hostPaths().ovsdbSocket(c, 'sb');
    const pki = '/etc/ovn-deploy/pki';
    // openssl s_client on the worker with the worker's own (current) identity.
    const onWorker: Runner = {
      run: async (argv, o) => {
        const r = await site.exec(w, [...argv], o?.input === undefined ? {} : { input: o.input });
        return { stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
      },
    };
    const norm = (hex: string): string => hex.toLowerCase().replace(/^0+/, '');
    const served = async (): Promise<string> => norm(await servedSerial(onWorker, { host: centralIp, port: sbPort, cert: `${pki}/host.pem`, key: `${pki}/host.key`, caFile: `${pki}/ca-bundle.pem` }));
    const certSerial = async (): Promise<string> => norm(new X509Certificate((await exec(c, ['cat', `${pki}/host.pem`])).stdout).serialNumber);
    // The worker's sessions: TLS to the central's SB port (its stunnel client's), and the local
    // unix connections at the tunnel socket (stunnel's end: `path inode * peer-inode`, one per client).
    const sessions = async (): Promise<string[]> => {
      const tcp = (await exec(w, ['ss', '-Htn', 'state', 'established', `( dport = :${sbPort} )`])).stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/).slice(2, 4).join(' '))
        .filter((l) => l !== '');
      const unix = (await exec(w, ['ss', '-Hxn', 'state', 'established'])).stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.includes(tunnel))
        .map((f) => f.slice(f.indexOf(tunnel)).join(' '));
      return [...tcp, ...unix].sort();
    };

    const oldSerial = await certSerial();
    expect(await served()).toBe(oldSerial);
    const baseline = await sessions(); // ovn-controller's
    let out = '';
    const pidFile = '/run/od-test-monitor.pid';
    const argv = ['exec', site.host(w).container, 'sh', '-c', `echo $$ > ${pidFile}; exec ovsdb-client monitor unix:${tunnel} OVN_Southbound Datapath_Binding external_ids`];
    monitor = spawn('podman', argv, { env: { ...process.env, ...site.podmanEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    monitor.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    monitor.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const nbctl = (args: string[]) => exec(c, ['ovn-nbctl', '--db=unix:/var/run/ovn/ovnnb_db.sock', '--timeout=20', ...args]);
    await nbctl(['ls-add', 'before-renewal']);
    await waitFor('the monitor to see before-renewal', 30_000, async () => (out.includes('before-renewal') ? true : undefined)).catch((e: unknown) => {
      throw new Error(`${String(e)}; monitor output:\n${out}`);
    });
    const before = await sessions();
    // The monitor's own: a new unix connection at the tunnel and a new TLS session to the central.
    const mine = before.filter((l) => !baseline.includes(l));
    expect(mine.some((l) => l.endsWith(`${centralIp}:${sbPort}`)), `${mine.join('\n')}\n(before the monitor: ${baseline.join(', ')})`).toBe(true);
    expect(mine.some((l) => l.startsWith(`${tunnel} `)), `${mine.join('\n')}\n(before the monitor: ${baseline.join(', ')})`).toBe(true);
    const stunnels = (s: { name: string }) => s.name.startsWith('stunnel-');
    const mains = await everyMainProcess(stunnels);
    const cursors = new Map<string, string>();
    for (const h of site.hosts) cursors.set(h.name, await journalCursor(h.name));

    const r = await deployCli(['--renew-certificates']);
    timings.renewDeploy = r.ms;
    expect(r.code, `${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`).toBe(0);
    const j = json<DeployJson>(r);
    expect(j.hosts.map((h) => [h.host, h.status, h.signed, h.renewed])).toEqual(site.hosts.map((h) => [h.name, 'converged', true, true]));

    const newSerial = await certSerial();
    expect(newSerial).not.toBe(oldSerial);
    await waitFor('the new serial served', 30_000, async () => ((await served()) === newSerial ? true : undefined));
    // Reloaded in place: same main processes (pid and start time from systemd), ExecReload in the journal since the cursor.
    expect(await everyMainProcess(stunnels)).toEqual(mains);
    for (const h of site.hosts) {
      for (const s of (await bundleUnits(h.name)).filter(stunnels)) {
        expect(await journalSince(h.name, cursors.get(h.name) as string, s.unit), `${h.name} ${s.unit}`).toMatch(new RegExp(`^Reloaded ${s.unit.replace(/\./g, '\\.')}`, 'm'));
      }
    }
    // The session opened before: the same process and TCP connections, and it still gets updates.
    expect(monitor.exitCode, out).toBe(null);
    expect(await sessions()).toEqual(expect.arrayContaining(before));
    await nbctl(['ls-add', 'after-renewal']);
    await waitFor('the monitor to see after-renewal', 30_000, async () => (out.includes('after-renewal') ? true : undefined)).catch((e: unknown) => {
      throw new Error(`${String(e)}; monitor output:\n${out}`);
    });
    expect(await sessions()).toEqual(expect.arrayContaining(before));

    // Our monitor only: the pid it wrote, checked to be that ovsdb-client, then the podman exec child.
    const pid = (await exec(w, ['cat', pidFile])).stdout.trim();
    expect(Number(pid)).toBeGreaterThan(1);
    expect((await exec(w, ['cat', `/proc/${pid}/cmdline`])).stdout.split('\0')).toContain('monitor');
    await exec(w, ['kill', pid]);
    monitor.kill('SIGTERM');
    monitor = undefined;
  }, 20 * MIN);

  it('hosts restarted (container stop/start = reboot): systemd starts the enabled units at boot, the site is healthy, deploy starts nothing', async () => {
    const units = new Map<string, { unit: string }[]>();
    const invocations = new Map<string, string>();
    for (const h of site.hosts) {
      units.set(h.name, await bundleUnits(h.name));
      for (const s of units.get(h.name) ?? []) invocations.set(`${h.name} ${s.unit}`, (await show(h.name, s.unit)).InvocationID ?? '');
    }
    // A reboot empties the kernel's nftables ruleset; the test's network namespace outlives the
    // container, so drop the central's local-access table by hand: the units must load it again.
    const c = central();
    await exec(c, ['nft', 'delete', 'table', 'inet', LOCAL_ACCESS_TABLE]);
    const t0 = Date.now();
    for (const h of site.hosts) {
      await site.stop(h.name);
      await site.start(h.name);
    }
    for (const h of site.hosts) {
      for (const s of units.get(h.name) ?? []) {
        const p = await waitFor(`${h.name} ${s.unit} active after boot`, 60_000, async () => {
          const q = await show(h.name, s.unit);
          return q.ActiveState === 'active' ? q : undefined;
        });
        // Started by this boot: a new invocation and a live main process.
        expect(p.InvocationID, `${h.name} ${s.unit}`).not.toBe(invocations.get(`${h.name} ${s.unit}`));
        expect(Number(p.MainPID), `${h.name} ${s.unit}`).toBeGreaterThan(1);
      }
    }
    timings.rebootToActive = Date.now() - t0;
    const st = await waitFor('status --inventory healthy after the restart', 2 * MIN, async () => {
      const r = await cli(['status', '--inventory', site.inventoryFile, ...sshArgs, '--json'], { timeoutMs: 3 * MIN });
      return r.code === 0 ? json<SiteStatus>(r) : undefined;
    });
    expect(st.chassis.filter((c) => c.registered).map((c) => c.hostname)).toEqual(site.hosts.filter((h) => h.role === 'worker').map((h) => h.name));
    // /run is new at boot: the OVSDB socket directory is the bundle's tmpfiles.d entry's, root only.
    for (const h of site.hosts) expect((await exec(h.name, ['stat', '-c', '%a %U', hostPaths().ovsdbDir])).stdout.trim(), h.name).toBe('700 root');
    // Before any apply: the RAFT ports are root only again (the units' ExecStartPre loaded the table).
    expect((await exec(c, ['nft', 'list', 'tables'])).stdout.split('\n').map((l) => l.trim())).toContain(`table inet ${LOCAL_ACCESS_TABLE}`);
    for (const port of [inv.loopbackPorts.nbRaft, inv.loopbackPorts.sbRaft]) {
      expect(await probeTcp((h, argv) => site.exec(h, argv), c, `${centralLoopback(inv.site, c)}:${port}`)).toEqual([]);
    }
    const r = await deployCli();
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    // Nothing to start, restart or reload, no directory to make again: systemd already did it.
    for (const h of json<DeployJson>(r).hosts) expect(h.changes, h.host).toEqual([]);
  }, 10 * MIN);
});
