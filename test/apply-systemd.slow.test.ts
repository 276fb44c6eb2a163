/**
 * apply's systemd backend for real: a 1 central + 1 worker site whose hosts run systemd as PID 1
 * (podman --systemd=always, test/helpers/host-image.ts's systemd variant), reached by `deploy`
 * (the built CLI) only over SSH. On such a host apply must run the bundle's own units
 * (/etc/systemd/system/ovn-deploy-*.service): daemon-reload, enable --now, reload on a changed
 * stunnel file, and systemd restarts a killed daemon (Restart=on-failure) — no own supervisor.
 * The distribution's units stay disabled and their drop-ins keep them from starting; after a host
 * restart systemd alone brings the enabled units back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SiteStatus } from '../src/site-status/judge.js';
import { DISTRIBUTION_UNITS } from '../src/render/systemd.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { cli, requireBuiltCli, type CliResult } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('apply-systemd.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;

interface DeployJson {
  ok: boolean;
  hosts: { host: string; status: string; changeCount: number; signed: boolean; error?: string; changes: { kind: string; target: string; action: string }[] }[];
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
  const timings: Record<string, number> = {};
  /** Every host's services as its applied bundle lists them: name -> unit. */
  const units = new Map<string, { name: string; unit: string }[]>();

  const exec = async (host: string, argv: string[], allowFailure = false) => {
    const r = await site.exec(host, argv);
    if (!allowFailure && r.code !== 0) throw new Error(`${host}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const show = async (host: string, unit: string): Promise<Record<string, string>> => {
    const r = await exec(host, ['systemctl', 'show', '--property=ActiveState,SubState,UnitFileState,MainPID,NRestarts,ExecMainStatus', unit]);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  const deployCli = () => cli(['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json'], { timeoutMs: 20 * MIN });
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
  }, 30 * MIN);

  afterAll(async () => {
    console.log(`apply-systemd.slow timings (ms): ${JSON.stringify(timings)}`);
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
      const manifest = JSON.parse((await exec(h.name, ['cat', '/var/lib/ovn-deploy/bundle/manifest.json'])).stdout) as { services: { name: string; unit: string }[] };
      const svcs = manifest.services.map((s) => ({ name: s.name, unit: s.unit }));
      units.set(h.name, svcs);
      expect(svcs.length).toBeGreaterThan(0);
      // The units systemd knows under our prefix are exactly the bundle's.
      const listed = (await exec(h.name, ['systemctl', 'list-unit-files', '--no-legend', '--type=service', 'ovn-deploy-*'])).stdout;
      const known = listed.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((u): u is string => u !== undefined && u !== '' && u !== 'ovn-deploy-test-hostkeys.service');
      expect(known.sort()).toEqual(svcs.map((s) => s.unit).sort());
      for (const s of svcs) {
        expect((await exec(h.name, ['systemctl', 'is-active', s.unit], true)).stdout.trim(), `${h.name} ${s.unit}`).toBe('active');
        expect((await exec(h.name, ['systemctl', 'is-enabled', s.unit], true)).stdout.trim(), `${h.name} ${s.unit}`).toBe('enabled');
        // The daemon is systemd's: its main process sits in the unit's cgroup.
        const pid = (await show(h.name, s.unit)).MainPID ?? '0';
        expect(Number(pid), `${h.name} ${s.unit} MainPID`).toBeGreaterThan(0);
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
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const worker = site.hosts.find((h) => h.role === 'worker')?.name as string;
    const chassis = await waitFor('the worker chassis in the SB', 60_000, async () => {
      const out = (await exec(central, ['ovn-sbctl', '--db=unix:/var/run/ovn/ovnsb_db.sock', '--timeout=10', '--bare', '--columns=hostname', 'list', 'Chassis'], true)).stdout;
      return out.split('\n').includes(worker) ? out : undefined;
    });
    expect(chassis).toContain(worker);
  }, 30 * MIN);

  it('a second deploy changes nothing and restarts nothing', async () => {
    const before = new Map<string, string>();
    for (const [host, svcs] of units) for (const s of svcs) before.set(`${host}/${s.unit}`, (await show(host, s.unit)).MainPID ?? '');
    const r = await deployCli();
    timings.secondDeploy = r.ms;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const j = json<DeployJson>(r);
    expect(j.hosts.map((h) => [h.host, h.status, h.changeCount, h.changes])).toEqual(site.hosts.map((h) => [h.name, 'converged', 0, []]));
    for (const [host, svcs] of units) for (const s of svcs) expect((await show(host, s.unit)).MainPID, `${host} ${s.unit}`).toBe(before.get(`${host}/${s.unit}`));
  }, 20 * MIN);

  it("the distro units' drop-ins hold: `systemctl start ovn-central` on the central starts nothing, ours keep running", async () => {
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const ours = units.get(central) ?? [];
    const before = await Promise.all(ours.map(async (s) => (await show(central, s.unit)).MainPID));
    const r = await exec(central, ['systemctl', 'start', 'ovn-central.service'], true);
    expect(r.code, r.stderr).toBe(0); // a failed ConditionPathExists= skips the unit, it is no error
    for (const d of ['ovn-central.service', 'ovn-northd.service', 'ovn-ovsdb-server-nb.service', 'ovn-ovsdb-server-sb.service']) {
      const p = await show(central, d);
      expect(p.ActiveState, `${d} ${JSON.stringify(p)}`).not.toMatch(/^(active|activating|reloading)$/);
    }
    expect(await Promise.all(ours.map(async (s) => (await show(central, s.unit)).MainPID))).toEqual(before);
  }, 5 * MIN);

  it('a changed stunnel file on the central: the next deploy rewrites it and `systemctl reload`s stunnel (same MainPID)', async () => {
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const svc = units.get(central)?.find((s) => s.name === 'stunnel-server');
    expect(svc).toBeDefined();
    const unit = (svc as { unit: string }).unit;
    const manifest = JSON.parse((await exec(central, ['cat', '/var/lib/ovn-deploy/bundle/manifest.json'])).stdout) as { files: { dest: string }[] };
    const conf = manifest.files.map((f) => f.dest).find((d) => /stunnel.*server.*\.conf$/.test(d));
    expect(conf).toBeDefined();
    const original = (await exec(central, ['cat', conf as string])).stdout;
    await exec(central, ['sh', '-c', `printf '# drift\\n' >> ${conf as string}`]);
    const before = await show(central, unit);
    const r = await deployCli();
    timings.reloadDeploy = r.ms;
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const hr = json<DeployJson>(r).hosts.find((h) => h.host === central);
    expect(hr?.changes.map((c) => `${c.kind}:${c.action}:${c.target}`)).toEqual([`file:update:${conf as string}`, 'service:reload:stunnel-server']);
    expect((await exec(central, ['cat', conf as string])).stdout).toBe(original);
    const after = await show(central, unit);
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).toBe(before.MainPID);
    expect(after.NRestarts).toBe(before.NRestarts);
    // systemd ran the unit's ExecReload (journal: "Reloading"/"Reloaded"), not a restart.
    const journal = (await exec(central, ['journalctl', '--no-pager', '-u', unit, '-o', 'cat'], true)).stdout;
    expect(journal).toMatch(/Reload(ing|ed)/);
    const others = json<DeployJson>(r).hosts.filter((h) => h.host !== central);
    expect(others.every((h) => h.changeCount === 0)).toBe(true);
  }, 20 * MIN);

  it('systemctl kill -s KILL ovn-northd: systemd restarts it (Restart=on-failure); status --inventory is healthy', async () => {
    const central = site.hosts.find((h) => h.role === 'central')?.name as string;
    const unit = units.get(central)?.find((s) => s.name === 'ovn-northd')?.unit as string;
    expect(unit).toBeDefined();
    const before = await show(central, unit);
    expect(Number(before.MainPID)).toBeGreaterThan(0);
    const t0 = Date.now();
    await exec(central, ['systemctl', 'kill', '-s', 'KILL', unit]);
    const after = await waitFor('ovn-northd restarted by systemd', 60_000, async () => {
      const p = await show(central, unit);
      return p.ActiveState === 'active' && Number(p.MainPID) > 0 && p.MainPID !== before.MainPID ? p : undefined;
    });
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

  it('hosts restarted (container stop/start = reboot): systemd starts the enabled units at boot, the site is healthy, deploy starts nothing', async () => {
    const t0 = Date.now();
    for (const h of site.hosts) {
      await site.stop(h.name);
      await site.start(h.name);
    }
    for (const h of site.hosts) {
      for (const s of units.get(h.name) ?? []) {
        await waitFor(`${h.name} ${s.unit} active after boot`, 60_000, async () => ((await show(h.name, s.unit)).ActiveState === 'active' ? true : undefined));
      }
    }
    timings.rebootToActive = Date.now() - t0;
    const st = await waitFor('status --inventory healthy after the restart', 2 * MIN, async () => {
      const r = await cli(['status', '--inventory', site.inventoryFile, ...sshArgs, '--json'], { timeoutMs: 3 * MIN });
      return r.code === 0 ? json<SiteStatus>(r) : undefined;
    });
    expect(st.chassis.filter((c) => c.registered).map((c) => c.hostname)).toEqual(site.hosts.filter((h) => h.role === 'worker').map((h) => h.name));
    const r = await deployCli();
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    // Nothing to start, restart or reload, no directory to make again: systemd already did it.
    for (const h of json<DeployJson>(r).hosts) expect(h.changes, h.host).toEqual([]);
  }, 10 * MIN);
});
