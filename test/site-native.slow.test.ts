/**
 * Native TLS on real hosts: a site file with `tls: { mode: native }` deployed over SSH to 3
 * centrals + 2 workers + 1 cms host in containers (test/helpers/site-hosts.ts). No stunnel on any
 * host; both RAFT clusters formed over ovsdb-server's own TLS (ssl: cluster addresses); status
 * healthy; the seed topology pings vm1 -> vm2; the SB's RBAC refuses worker1 deleting worker2's
 * chassis; a rotation of every certificate under traffic (cms1's NB writes over native TLS, a
 * monitor of the SB on worker1) loses no write and restarts no daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, type Inventory } from '../src/inventory/index.js';
import { hostPaths } from '../src/paths.js';
import { nativeTlsFiles } from '../src/site/native-tls.js';
import { ovsdbRemotes, siteTopology } from '../src/site/topology.js';
import type { SiteStatus } from '../src/site-status/judge.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { expectClean, siteExec, underTraffic, type SiteTraffic } from './helpers/site-traffic.js';
import { seedNetwork } from './helpers/site-vm.js';
import { cli, requireBuiltCli } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('site-native.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;
const hp = hostPaths();

describe.skipIf(notRoot)('native TLS on a site over SSH (3 centrals + 2 workers + 1 cms)', () => {
  let site: TestSite;
  let inv: Inventory;
  let sel: string[];
  const figures: Record<string, unknown> = {};

  const exec = (h: string, argv: string[], allowFailure = false) => siteExec(site, h, argv, allowFailure);
  // Every host's own key, certificate and CA bundle: what its daemons present.
  const tls = nativeTlsFiles();
  const nbArgs = () => [`--db=${ovsdbRemotes(siteTopology(inv), 'nb')}`, ...tls];
  const chassisSb = () => ovsdbRemotes(siteTopology(inv), 'sb');
  const ping = () => exec('worker1', ['ip', 'netns', 'exec', 'vm1', 'ping', '-c', '3', '-i', '0.2', '-W', '2', '192.168.60.22'], true);
  const daemonPids = async () => {
    const out: Record<string, string> = {};
    for (const h of inv.hosts) out[h.name] = (await exec(h.name, ['pgrep', '-d', ',', '-f', '^/usr/(s)?bin/(ovsdb-server|ovn-northd|ovn-controller|ovs-vswitchd) '], true)).stdout.trim();
    return out;
  };

  beforeAll(async () => {
    requireBuiltCli();
    const t0 = Date.now();
    site = await createTestSite({ centrals: 3, workers: 2, cms: 1, inventoryExtra: { tls: { mode: 'native' } } });
    inv = (await loadInventory(site.inventoryFile)).inventory;
    expect(inv.tls.mode).toBe('native');
    sel = ['--inventory', site.inventoryFile, '--pki', site.pkiDir, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    figures.createSiteMs = Date.now() - t0;
  }, 30 * MIN);

  afterAll(async () => {
    console.log(`site-native figures: ${JSON.stringify(figures)}`);
    await site?.cleanup();
  }, 10 * MIN);

  it('deploy converges every host; no host runs or installed stunnel; both clusters have 3 members over ssl:', async () => {
    const t0 = Date.now();
    const d = await cli(['deploy', ...sel, '--json'], { timeoutMs: 20 * MIN });
    figures.deployMs = Date.now() - t0;
    expect(d.code, d.stderr.slice(-3000)).toBe(0);
    for (const h of inv.hosts) {
      expect((await exec(h.name, ['pgrep', '-f', 'stunnel'], true)).stdout.trim(), `${h.name} runs no stunnel`).toBe('');
      const manifest = JSON.parse((await exec(h.name, ['cat', `${hp.bundle}/manifest.json`])).stdout) as { packages: { apt: string[] }; services: { name: string }[] };
      expect(manifest.packages.apt.filter((p) => p.startsWith('stunnel')), h.name).toEqual([]);
      expect(manifest.services.map((s) => s.name).filter((n) => n.startsWith('stunnel')), h.name).toEqual([]);
    }
    for (const c of inv.hosts.filter((h) => h.roles.includes('central'))) {
      for (const [db, ctl] of [['OVN_Northbound', hp.ovn.nbCtl], ['OVN_Southbound', hp.ovn.sbCtl]] as const) {
        const st = (await exec(c.name, ['ovn-appctl', '-t', ctl, 'cluster/status', db])).stdout;
        expect(st, `${c.name} ${db}`).toMatch(new RegExp(`Address: ssl:${c.addresses[0]}:\\d+`));
        expect(st.split('Servers:')[1]?.match(/ssl:/g)?.length, `${c.name} ${db} members`).toBe(3);
      }
    }
  }, 25 * MIN);

  it('status --inventory: healthy; the seed topology pings vm1 -> vm2 across the tunnel', async () => {
    const r = await cli(['status', '--inventory', site.inventoryFile, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile, '--json'], { timeoutMs: 3 * MIN });
    const s = JSON.parse(r.stdout) as SiteStatus;
    expect(r.code, r.stdout.slice(-2000)).toBe(0);
    expect(s.verdict, JSON.stringify(s.problems)).toBe('healthy');
    await seedNetwork(site, (args) => exec('cms1', ['ovn-nbctl', ...nbArgs(), '--timeout=30', ...args]));
    let p = await ping();
    for (let k = 0; k < 30 && p.code !== 0; k++) p = await ping();
    expect(p.code, p.stdout).toBe(0);
  }, 10 * MIN);

  it("RBAC on real hosts: worker1's certificate cannot delete worker2's chassis; its own row takes its writes", async () => {
    const sb = ['ovn-sbctl', `--db=${chassisSb()}`, ...tls, '--timeout=10'];
    const del = await exec('worker1', [...sb, 'chassis-del', 'worker2'], true);
    expect(del.code, del.stdout).not.toBe(0);
    expect(del.stderr).toMatch(/RBAC rules for client \\?"worker1\\?" role \\?"ovn-controller\\?" prohibit row deletion/);
    const own = await exec('worker1', [...sb, 'set', 'Chassis', 'worker1', 'external_ids:rbac-probe=site']);
    expect(own.code).toBe(0);
    const names = (await exec('central1', ['ovn-sbctl', `--db=unix:${hp.ovn.sbSock}`, '--no-leader-only', '--bare', '--columns=name', 'list', 'Chassis'])).stdout.split('\n').filter((l) => l.trim() !== '');
    expect(names.sort()).toEqual(['worker1', 'worker2']);
  }, 5 * MIN);

  it('certs rotate --force --concurrency 3 under traffic: 0 probe writes lost, the monitor survives, new serials served, no daemon restarted, ping works', async () => {
    const traffic: SiteTraffic = { site, nbArgs: nbArgs(), sbArgs: { options: tls, remote: chassisSb() } };
    const pids = await daemonPids();
    const t = await underTraffic(traffic, 'rotate', () => cli(['certs', 'rotate', '--force', '--concurrency', '3', '--json', ...sel], { timeoutMs: 15 * MIN }));
    expect(t.result.code, `${t.result.stdout.slice(-3000)}\n${t.result.stderr.slice(-3000)}`).toBe(0);
    const outcomes = (JSON.parse(t.result.stdout) as { outcomes: { certName: string; action: string }[] }).outcomes;
    expect(outcomes.map((o) => [o.certName, o.action])).toEqual(inv.hosts.map((h) => [h.name, 'renewed']));
    expectClean('rotate', t, figures);
    const st = await cli(['certs', 'status', '--json', ...sel], { timeoutMs: 5 * MIN });
    const report = JSON.parse(st.stdout) as { endpoints: { host: string; side: string; serial: string; served: { serial: string | null; matchesFile: boolean }[] }[] };
    for (const e of report.endpoints.filter((x) => x.side === 'server')) for (const s of e.served) expect(s.matchesFile, `${e.host} serves its new certificate`).toBe(true);
    expect(await daemonPids()).toEqual(pids);
    expect((await ping()).code).toBe(0);
  }, 20 * MIN);
});
