/**
 * Issue 16 on real hosts: the containerized neutron OVN metadata agent, deployed by `deploy` over
 * SSH on the 3-central + 2-worker (+ cms) container site, worker1 with the metadata-agent role and
 * the site file's `metadataAgent.image` (the image built by test/helpers/metadata-image.ts from
 * containers/ovn-metadata-agent, in the admin's podman store).
 *
 * - deploy installs podman on worker1 (offline, from the host image's .debs), ships the image (the
 *   host lacked it) and starts the agent in a container after ovn-controller; a VM namespace on a
 *   Neutron-shaped network (made through the cms host's tunnel, as neutron-server would) gets
 *   HTTP 200 from 169.254.169.254, proxied to a metadata server that checks the HMAC;
 * - status --inventory shows worker1's agent registered and healthy, in a container;
 * - the agent reaches the SB only through the host's stunnel client;
 * - the SB leader's host stopped: the agent follows a new nb_cfg through a survivor (it failed
 *   over) and metadata is still served;
 * - its registration removed: the image's healthcheck and status say unhealthy; the container
 *   killed: restarted (a new container), registered again, healthy, serving;
 * - a second deploy changes nothing and ships no image;
 * - the secret is only in its two 0600 files on worker1 (installed + bundle), on no other host, in
 *   no container config, no CLI output, and in the SSH traffic only inside worker1's bundle push.
 * - then the image dropped from the site file (an operator leaving containers): deploy installs
 *   the distribution's agent offline (neutron-ovn-metadata-agent, haproxy; iptables came with podman), the own
 *   supervisor runs it in place of the container, status says process and healthy, and the same
 *   VM gets 200 from it. (This site replaced a 1 central + 1 worker site of its own for the
 *   distribution's agent: one site less per run.)
 * A second, smaller site (1 central + 1 worker, systemd as PID 1): the agent's unit starts after
 * ovn-controller's and is stopped with it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { loadInventory, type Inventory } from '../src/inventory/index.js';
import type { MetadataNetwork } from '../src/metadata/sandbox-network.js';
import { metadataNetworkArgs } from '../src/metadata/sandbox-network.js';
import { bundleSource, hostPaths, hostRenderedPaths } from '../src/paths.js';
import { DEFAULT_METADATA_CONTAINER } from '../src/render/metadata-runtime.js';
import { SERVICE } from '../src/render/services.js';
import { ovsdbRemotes, siteTopology } from '../src/site/topology.js';
import type { SiteStatus } from '../src/site-status/judge.js';
import { startFakeNova, type FakeNova } from './helpers/fake-nova.js';
import { freePort } from './helpers/tls-daemons.js';
import { ensureMetadataImage, podman, type MetadataImage } from './helpers/metadata-image.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { plugVm } from './helpers/site-vm.js';
import { sshRecorder, tarMembers, unpack, type SshRecorder } from './helpers/ssh-record.js';
import { cli, requireBuiltCli, type CliResult } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('site-metadata.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;
const rp = hostRenderedPaths();
const CONTAINER = DEFAULT_METADATA_CONTAINER;
const METADATA_URL = 'http://169.254.169.254/openstack/latest/meta_data.json';
/** The VM's HTTP client: python3 is on every test host (no curl there). Prints the status code, 000 when nothing answered. */
const HTTP_GET = [
  'import sys, urllib.request, urllib.error',
  'try:',
  '    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)',
  'except urllib.error.HTTPError as e:',
  '    print(e.code)',
  'except Exception:',
  "    print('000')",
].join('\n');

interface DeployJson {
  ok: boolean;
  durationMs: number;
  hosts: { host: string; status: string; changeCount: number; imageShipped?: boolean; error?: string; changes: { kind: string; target: string; action: string }[] }[];
}

const json = <T>(r: CliResult): T => {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr.slice(-3000)}`);
  }
};

/**
 * Sum of VmRSS (MiB) of the container's processes, read on the host from /proc (by the container
 * id in their cgroup): `podman stats` cannot read the nested cgroups of a host that is a container.
 */
async function containerRssMb(site: TestSite, host: string, name: string): Promise<number> {
  const script = `id=$(podman inspect --format '{{.Id}}' "$1"); for p in $(grep -l "$id" /proc/[0-9]*/cgroup | cut -d/ -f3); do sed -n 's/^VmRSS:[[:space:]]*\\([0-9]*\\).*/\\1/p' /proc/$p/status; done`;
  const r = await site.exec(host, ['sh', '-c', script, 'rss', name], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${host}: RSS of ${name}: ${r.stderr}`);
  return Math.round(r.stdout.split('\n').reduce((a, l) => a + (Number(l) || 0), 0) / 1024);
}


/** Adds the metadata-agent role to `worker` and the metadataAgent section to the site file (as an operator edits it). */
async function withMetadataAgent(file: string, worker: string, section: Record<string, unknown>): Promise<void> {
  const doc = parse(await fs.readFile(file, 'utf8')) as { hosts: { name: string; roles: string[] }[] } & Record<string, unknown>;
  const h = doc.hosts.find((x) => x.name === worker);
  if (h === undefined) throw new Error(`no ${worker} in ${file}`);
  h.roles = [...h.roles, 'metadata-agent'];
  doc.metadataAgent = section;
  await fs.writeFile(`${file}.tmp`, stringify(doc));
  await fs.rename(`${file}.tmp`, file);
}

/** Where `secret` occurs in the recorded SSH traffic: a tar's members named one by one, other blobs by file. */
async function secretInTraffic(rec: SshRecorder, secret: Buffer): Promise<string[]> {
  const found: string[] = [];
  for (const f of await rec.files()) {
    for (const b of unpack(f, await fs.readFile(f))) {
      if (!b.data.includes(secret)) continue;
      const members = b.data.length >= 512 && b.data.subarray(257, 262).toString('latin1') === 'ustar' ? tarMembers(b.data) : undefined;
      if (members === undefined) {
        // A gzip's bytes are scanned through its unpacked child; anything else is a finding.
        if (!(b.data[0] === 0x1f && b.data[1] === 0x8b)) found.push(b.where);
        continue;
      }
      for (const m of members) if (m.data.includes(secret)) found.push(`${b.where}!${m.name}`);
    }
  }
  return [...new Set(found)].sort();
}

/** A fresh Neutron-shaped network with one VM port on `worker` (uuids as Neutron names them). */
function neutronNetwork(worker: string, third: number): MetadataNetwork {
  const net = `192.168.${third}`;
  return {
    switchName: `neutron-${randomUUID()}`,
    cidr: `${net}.0/24`,
    prefixLen: 24,
    localport: { lsp: randomUUID(), mac: `fa:16:3e:00:${third.toString(16)}:02`, ip: `${net}.2` },
    // plugVm names the port's namespace after the port.
    vm: { iface: 'mvm1', lsp: randomUUID(), netns: 'mvm1', worker, mac: `fa:16:3e:00:${third.toString(16)}:11`, ip: `${net}.11`, deviceId: randomUUID(), projectId: randomUUID().replace(/-/g, '') },
  };
}

/** What neutron-server writes for the network (through `nbctl`), then the VM on its worker with the route Neutron's DHCP gives it. */
async function addNeutronVm(site: TestSite, net: MetadataNetwork, nbctl: (args: string[]) => Promise<unknown>): Promise<void> {
  await nbctl(metadataNetworkArgs(net));
  const vm = net.vm;
  await plugVm(site, { worker: vm.worker, name: vm.iface, lsp: vm.lsp, mac: vm.mac, ip: vm.ip, prefixLen: net.prefixLen, routes: [['169.254.169.254/32', 'via', net.localport.ip]] });
}

/** The VM's metadata request until it gets 200: milliseconds it took. */
async function untilServed0(site: TestSite, net: MetadataNetwork, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < timeoutMs) {
    last = await vmGet0(site, net);
    if (last === '200') return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the VM got no metadata within ${timeoutMs} ms (last status ${last})`);
}

async function vmGet0(site: TestSite, net: MetadataNetwork): Promise<string> {
  return (await site.exec(net.vm.worker, ['ip', 'netns', 'exec', net.vm.netns, 'python3', '-c', HTTP_GET, METADATA_URL], { timeoutMs: 60_000 })).stdout.trim();
}

describe.skipIf(notRoot)('the metadata agent in a container on real hosts (3 centrals + 2 workers + 1 cms, worker1 with the role)', () => {
  let site: TestSite;
  let inv: Inventory;
  let img: MetadataImage;
  let nova: FakeNova;
  let rec: SshRecorder;
  let sel: string[];
  let secretFile: string;
  let secret: string;
  let calls = 0;
  const figures: Record<string, unknown> = {};
  const net1 = neutronNetwork('worker1', 70);

  const exec = async (h: string, argv: string[], allowFailure = false, input?: string) => {
    const r = await site.exec(h, argv, { timeoutMs: 2 * MIN, ...(input === undefined ? {} : { input }) });
    if (!allowFailure && r.code !== 0) throw new Error(`${h}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** Every CLI call through the recording ssh, with the admin's podman store (where the image is). */
  const run = async (args: string[], timeoutMs = 20 * MIN) => cli(args, { timeoutMs, env: { ...img.env, ...(await rec.env(`${String(++calls).padStart(2, '0')}-${args[0] ?? ''}`)) } });
  const deploy = async () => {
    const r = await run(['deploy', ...sel, '--metadata-secret-file', secretFile, '--json']);
    return { r, j: json<DeployJson>(r) };
  };
  const status = async () => {
    const r = await run(['status', '--inventory', site.inventoryFile, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile, '--json'], 5 * MIN);
    return { code: r.code, s: json<SiteStatus>(r) };
  };
  const db = (which: 'nb' | 'sb') => ovsdbRemotes(siteTopology(inv), which);
  /** A central that is down: the CLI clients below use only the others (a one-shot ovn-nbctl gives up on the first remote that resets). */
  let down: string | undefined;
  const through = (which: 'nb' | 'sb') => `unix:${inv.hosts.filter((h) => h.roles.includes('central') && h.name !== down).map((h) => hostPaths().ovsdbSocket(h.name, which)).join(',unix:')}`;
  const nbctl = (args: string[], allowFailure = false) => exec('cms1', ['ovn-nbctl', `--db=${through('nb')}`, '--timeout=60', ...args], allowFailure);
  const sbctl = (args: string[], allowFailure = false) => exec('cms1', ['ovn-sbctl', `--db=${through('sb')}`, '--no-leader-only', '--timeout=30', ...args], allowFailure);
  const vmGet = () => vmGet0(site, net1);
  const untilServed = (timeoutMs: number) => untilServed0(site, net1, timeoutMs);
  const chassis = () => inv.hosts.find((h) => h.name === 'worker1')?.systemId ?? 'worker1';
  const metadataIds = async (): Promise<Record<string, string>> => {
    const r = await sbctl(['--format=json', '--columns=external_ids', 'find', 'Chassis_Private', `name=${chassis()}`]);
    const t = JSON.parse(r.stdout) as { data: [[string, [string, string][]]][] };
    return Object.fromEntries(t.data[0]?.[0]?.[1] ?? []);
  };
  const healthcheck = () => exec('worker1', ['podman', 'healthcheck', 'run', CONTAINER], true);
  const container = async () => {
    const r = await exec('worker1', ['podman', 'inspect', '--format', '{{.Id}} {{.State.StartedAt}} {{.State.Running}} {{.ImageName}}', CONTAINER], true);
    const [id = '', ...rest] = r.stdout.trim().split(' ');
    return { code: r.code, id, running: rest.at(-2) === 'true', image: rest.at(-1) ?? '', started: rest.slice(0, -2).join(' ') };
  };
  const agentView = (s: SiteStatus) => s.metadataAgents.find((a) => a.host === 'worker1');

  beforeAll(async () => {
    requireBuiltCli();
    const t0 = Date.now();
    img = ensureMetadataImage();
    figures.imageBuildSec = img.builtSec;
    figures.imageSizeMb = img.sizeMb;
    site = await createTestSite({ centrals: 3, workers: 2, cms: 1, nestedPodman: true });
    rec = await sshRecorder(site.dir);
    secret = randomBytes(32).toString('hex');
    secretFile = path.join(site.dir, 'metadata-secret');
    await fs.writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
    const novaPort = await freePort(site.adminIp);
    await withMetadataAgent(site.inventoryFile, 'worker1', { novaMetadataHost: site.adminIp, novaMetadataPort: novaPort, image: img.image });
    inv = (await loadInventory(site.inventoryFile)).inventory;
    nova = await startFakeNova(undefined, site.adminIp, novaPort, secretFile);
    sel = ['--inventory', site.inventoryFile, '--pki', site.pkiDir, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    figures.siteSec = Math.round((Date.now() - t0) / 1000);
  }, 40 * MIN);

  afterAll(async () => {
    await nova?.stop();
    await site?.cleanup();
    console.log(`site-metadata figures: ${JSON.stringify(figures)}`);
  }, 5 * MIN);

  it('deploy installs podman, ships the image to worker1 only and starts the agent in a container; a VM on a Neutron network gets 200 through the HMAC-checking metadata server', async () => {
    const t0 = Date.now();
    const { r, j } = await deploy();
    expect(r.code, `${r.stdout}\n${r.stderr.slice(-3000)}`).toBe(0);
    figures.deploySec = Math.round(j.durationMs / 100) / 10;
    const w1 = j.hosts.find((h) => h.host === 'worker1');
    expect(w1?.imageShipped).toBe(true);
    expect(w1?.changes).toContainEqual({ kind: 'image', target: img.image, action: 'load' });
    expect(w1?.changes).toContainEqual({ kind: 'package', target: 'podman', action: 'install' });
    expect(w1?.changes.map((c) => c.target)).not.toContain('neutron-ovn-metadata-agent');
    for (const h of j.hosts.filter((x) => x.host !== 'worker1')) expect(h.imageShipped, h.host).toBeUndefined();
    // The host's copy is the admin's image (same ID), and deploy removed the archive it sent.
    const localId = podman(['image', 'inspect', '--format', '{{.Id}}', img.image], img.env).out;
    expect((await exec('worker1', ['podman', 'image', 'inspect', '--format', '{{.Id}}', img.image])).stdout.trim()).toBe(localId);
    expect((await exec('worker1', ['sh', '-c', 'ls -A /var/lib/ovn-deploy/images 2>/dev/null || true'])).stdout.trim()).toBe('');
    const c = await container();
    expect(c).toMatchObject({ code: 0, running: true });
    expect(c.image).toBe(img.image);

    // What neutron-server writes for a network with a subnet and a VM port, through cms1's tunnel.
    await addNeutronVm(site, net1, nbctl);
    const vm = net1.vm;
    const served = await untilServed(2 * MIN);
    figures.vmPortToFirstReplySec = Math.round(served / 100) / 10;
    figures.deployToFirstReplySec = Math.round((Date.now() - t0) / 100) / 10;
    // The agent made ovnmeta-<network> on the host itself (from inside its container).
    expect((await exec('worker1', ['ip', 'netns', 'list'])).stdout).toContain(`ovnmeta-${net1.switchName.replace(/^neutron-/, '')}`);
    const req = nova.requests().at(-1);
    expect(req).toMatchObject({ path: '/openstack/latest/meta_data.json', instanceId: vm.deviceId, projectId: vm.projectId, status: 200, forwardedFor: vm.ip });

    // Memory of the agent: every process of its container, from /proc (podman stats cannot read nested cgroups here).
    figures.agentRssMb = await containerRssMb(site, 'worker1', CONTAINER);
  }, 30 * MIN);

  it('status --inventory: worker1 agent registered and healthy, in a container; the agent reaches the SB only through the host stunnel client', async () => {
    const { code, s } = await status();
    expect(code, JSON.stringify(s.problems)).toBe(0);
    expect(s.metadataAgents).toEqual([
      { chassis: chassis(), host: 'worker1', runsAs: 'container', running: true, pid: expect.any(Number) as number, restarts: expect.any(Number) as number, registered: true, healthy: true, detail: expect.stringMatching(/^registered as [0-9a-f-]{36}$/) as string },
    ]);
    expect((await healthcheck()).code).toBe(0);
    // The agent's SB remotes are the stunnel client's unix sockets; every TCP connection to an SB
    // port on worker1 belongs to stunnel.
    const ini = (await exec('worker1', ['cat', path.join(rp.metadata.confDir, 'neutron_ovn_metadata_agent.ini')])).stdout;
    expect(/^ovn_sb_connection = (.*)$/m.exec(ini)?.[1]).toBe(db('sb'));
    const ss = (await exec('worker1', ['ss', '-Htnp', 'state', 'established', `( dport = :${inv.ports.sb} )`])).stdout.trim().split('\n').filter((l) => l !== '');
    expect(ss.length).toBeGreaterThan(0);
    for (const l of ss) expect(l).toMatch(/users:\(\("stunnel4?"/);
  }, 10 * MIN);

  it('the SB leader host stopped: the agent follows a new nb_cfg through a survivor and metadata is still served; back and deployed, healthy', async () => {
    const { s } = await status();
    const leader = s.raft.find((d) => d.db === 'OVN_Southbound')?.leader?.host;
    expect(leader).toMatch(/^central\d$/);
    await site.stop(leader as string);
    down = leader;
    try {
      const t0 = Date.now();
      // A new leader of each database among the survivors (ovn-nbctl and --wait=sb need them).
      for (let k = 0; ; k++) {
        const { s: now } = await status();
        if (now.raft.every((d) => d.leader !== undefined && d.leader.host !== leader)) break;
        if (k > 60) throw new Error(`no new leaders: ${JSON.stringify(now.raft.map((d) => [d.db, d.leader]))}`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      figures.newLeadersSec = Math.round((Date.now() - t0) / 100) / 10;
      // The agent writes back every nb_cfg it sees: proof it talks to the cluster now, not before.
      await nbctl(['--wait=sb', 'sync']);
      const nbCfg = Number((await nbctl(['get', 'NB_Global', '.', 'nb_cfg'])).stdout.trim());
      let seen = -1;
      while (Date.now() - t0 < 2 * MIN) {
        seen = Number((await metadataIds())['neutron:ovn-metadata-sb-cfg'] ?? -1);
        if (seen >= nbCfg) break;
        await new Promise((res) => setTimeout(res, 1000));
      }
      expect(seen, `worker1's agent wrote neutron:ovn-metadata-sb-cfg ${seen}, want ${nbCfg}`).toBeGreaterThanOrEqual(nbCfg);
      figures.agentFollowedAfterLeaderLossSec = Math.round((Date.now() - t0) / 100) / 10;
      expect((await metadataIds())['neutron:ovn-metadata-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(await vmGet()).toBe('200');
      expect((await healthcheck()).code).toBe(0);
    } finally {
      // Back and converged whatever happened above: the next tests start from a healthy site.
      down = undefined;
      await site.start(leader as string);
      const { r } = await deploy();
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
    }
    const back = await status();
    expect(back.code, JSON.stringify(back.s.problems)).toBe(0);
  }, 20 * MIN);

  it('registration removed: healthcheck and status say unhealthy; the container killed: a new one, registered, healthy, serving', async () => {
    const before = await container();
    await sbctl(['remove', 'Chassis_Private', chassis(), 'external_ids', '"neutron:ovn-metadata-id"']);
    const hc = await healthcheck();
    expect(hc.code).not.toBe(0);
    expect(hc.stdout.trim()).toBe('unhealthy');
    // The image's check says why (podman healthcheck run prints only the verdict).
    expect((await exec('worker1', ['podman', 'exec', CONTAINER, '/usr/local/bin/ovn-deploy-healthcheck'], true)).stdout).toMatch(/unhealthy: chassis \S+ not registered/);
    const { code, s } = await status();
    expect(code).toBe(1);
    expect(agentView(s)).toMatchObject({ registered: false, healthy: false });

    await exec('worker1', ['podman', 'kill', CONTAINER]);
    const t0 = Date.now();
    let now = before;
    while (Date.now() - t0 < 3 * MIN) {
      now = await container();
      if (now.code === 0 && now.running && now.id !== before.id && (await healthcheck()).code === 0) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
    expect(now.id, 'a new container').not.toBe(before.id);
    expect(now.running).toBe(true);
    expect((await healthcheck()).code).toBe(0);
    figures.killedToHealthySec = Math.round((Date.now() - t0) / 100) / 10;
    expect((await metadataIds())['neutron:ovn-metadata-id']).toMatch(/^[0-9a-f-]{36}$/);
    await untilServed(MIN);
    const after = await status();
    expect(after.code, JSON.stringify(after.s.problems)).toBe(0);
    expect(agentView(after.s)).toMatchObject({ registered: true, healthy: true });
  }, 15 * MIN);

  it('a second deploy changes nothing and ships no image', async () => {
    const { r, j } = await deploy();
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    for (const h of j.hosts) {
      expect(h.changes, h.host).toEqual([]);
      expect(h.imageShipped, h.host).toBeUndefined();
    }
  }, 15 * MIN);

  it('the secret: only in its two 0600 files on worker1, nowhere else on any host, in no container config or CLI output, and over SSH only inside worker1 bundle pushes', async () => {
    const grep = async (h: string) =>
      (await exec(h, ['sh', '-c', 'grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -f /dev/stdin / 2>/dev/null || true'], false, `${secret}\n`)).stdout.trim().split('\n').filter((l) => l !== '').sort();
    const installed = path.join(rp.metadata.confDir, 'metadata-secret.ini');
    const inBundle = path.join(hostPaths().bundle, bundleSource(installed));
    expect(await grep('worker1')).toEqual([inBundle, installed].sort());
    for (const f of [installed, inBundle]) expect((await exec('worker1', ['stat', '-c', '%a', f])).stdout.trim(), f).toBe('600');
    for (const h of inv.hosts.filter((x) => x.name !== 'worker1')) expect(await grep(h.name), h.name).toEqual([]);
    expect((await exec('worker1', ['podman', 'inspect', CONTAINER])).stdout).not.toContain(secret);
    const traffic = await secretInTraffic(rec, Buffer.from(secret));
    expect(traffic.length).toBeGreaterThan(0);
    for (const where of traffic) expect(where.endsWith(`.stdin!gunzip!./${bundleSource(installed)}`) || where.endsWith(`.stdin!gunzip!${bundleSource(installed)}`), where).toBe(true);
    // Each one is a bundle push to worker1 (the recorded argv names the host).
    for (const where of traffic) {
      const argv = await fs.readFile(where.replace(/\.stdin!.*$/, '.argv'), 'utf8');
      expect(argv).toContain(site.host('worker1').mgmtIp);
    }
  }, 10 * MIN);

  it("the image dropped from the site file: deploy installs the distribution's agent offline and stops the container; status says process and healthy; the VM gets 200 from it", async () => {
    const doc = parse(await fs.readFile(site.inventoryFile, 'utf8')) as { metadataAgent: Record<string, unknown> };
    delete doc.metadataAgent.image;
    await fs.writeFile(`${site.inventoryFile}.tmp`, stringify(doc));
    await fs.rename(`${site.inventoryFile}.tmp`, site.inventoryFile);
    const { r, j } = await deploy();
    expect(r.code, `${r.stdout}\n${r.stderr.slice(-3000)}`).toBe(0);
    const w1 = j.hosts.find((h) => h.host === 'worker1');
    for (const p of ['neutron-ovn-metadata-agent', 'haproxy']) expect(w1?.changes).toContainEqual({ kind: 'package', target: p, action: 'install' });
    // iptables came with podman: installed either way, never twice.
    expect(w1?.changes.filter((c) => c.kind === 'package').map((c) => c.target)).not.toContain('iptables');
    expect((await exec('worker1', ['dpkg-query', '-W', '-f=${Status}', 'iptables'])).stdout).toBe('install ok installed');
    expect(w1?.changes).toContainEqual({ kind: 'service', target: SERVICE.metadataAgent, action: 'restart' });
    expect(w1?.imageShipped).toBeUndefined();
    for (const h of j.hosts.filter((x) => x.host !== 'worker1')) expect(h.changes, h.host).toEqual([]);
    expect((await exec('worker1', ['podman', 'container', 'exists', CONTAINER], true)).code, 'the container is gone').not.toBe(0);
    const { code, s } = await status();
    expect(code, JSON.stringify(s.problems)).toBe(0);
    expect(s.metadataAgents).toMatchObject([{ host: 'worker1', runsAs: 'process', registered: true, healthy: true }]);
    const served = nova.requests().length;
    try {
      await untilServed(2 * MIN);
    } catch (e) {
      const log = await site.exec('worker1', ['sh', '-c', `tail -n 40 ${rp.metadata.logFile}; ip netns list; ps -eo pid,args | grep -E 'haproxy|metadata' | grep -v grep`], { timeoutMs: 60_000 });
      throw new Error(`${(e as Error).message}\n${log.stdout}${log.stderr}`, { cause: e });
    }
    expect(nova.requests().length, 'a new request reached the metadata server').toBeGreaterThan(served);
    expect(nova.requests().at(-1)).toMatchObject({ instanceId: net1.vm.deviceId, status: 200 });
  }, 20 * MIN);
});

describe.skipIf(notRoot)('the metadata agent in a container on a systemd host (1 central + 1 worker, systemd as PID 1)', () => {
  let site: TestSite;
  let img: MetadataImage;
  let sel: string[];
  let secretFile: string;
  const unit = (service: string) => rp.unitName(service);
  const exec = async (h: string, argv: string[], allowFailure = false) => {
    const r = await site.exec(h, argv, { timeoutMs: 2 * MIN });
    if (!allowFailure && r.code !== 0) throw new Error(`${h}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const show = async (u: string, props: string[]) =>
    Object.fromEntries(
      (await exec('worker1', ['systemctl', 'show', u, ...props.map((p) => `--property=${p}`)])).stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ) as Record<string, string>;

  beforeAll(async () => {
    requireBuiltCli();
    img = ensureMetadataImage();
    site = await createTestSite({ centrals: 1, workers: 1, systemd: true, nestedPodman: true });
    secretFile = path.join(site.dir, 'metadata-secret');
    await fs.writeFile(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    await withMetadataAgent(site.inventoryFile, 'worker1', { novaMetadataHost: site.adminIp, image: img.image });
    sel = ['--inventory', site.inventoryFile, '--pki', site.pkiDir, '--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
  }, 40 * MIN);

  afterAll(async () => {
    await site?.cleanup();
  }, 5 * MIN);

  it('the agent unit requires and starts after ovn-controller, runs the container, and is stopped with ovn-controller', async () => {
    const d = await cli(['deploy', ...sel, '--metadata-secret-file', secretFile, '--json'], { timeoutMs: 20 * MIN, env: img.env });
    expect(d.code, `${d.stdout}\n${d.stderr.slice(-3000)}`).toBe(0);
    const agent = unit(SERVICE.metadataAgent);
    const controller = unit(SERVICE.controller);
    const a = await show(agent, ['Requires', 'After', 'ActiveState', 'ExecMainStartTimestampMonotonic']);
    const c = await show(controller, ['ActiveState', 'ExecMainStartTimestampMonotonic']);
    expect(a.Requires?.split(' ')).toContain(controller);
    expect(a.After?.split(' ')).toContain(controller);
    expect(a.ActiveState).toBe('active');
    expect(c.ActiveState).toBe('active');
    expect(Number(a.ExecMainStartTimestampMonotonic)).toBeGreaterThan(Number(c.ExecMainStartTimestampMonotonic));
    expect((await exec('worker1', ['podman', 'inspect', '--format', '{{.State.Running}}', CONTAINER])).stdout.trim()).toBe('true');
    await exec('worker1', ['systemctl', 'stop', controller]);
    expect((await show(agent, ['ActiveState'])).ActiveState).toMatch(/^(inactive|deactivating)$/);
    for (let k = 0; k < 30 && (await exec('worker1', ['podman', 'container', 'exists', CONTAINER], true)).code === 0; k++) await new Promise((res) => setTimeout(res, 1000));
    expect((await exec('worker1', ['podman', 'container', 'exists', CONTAINER], true)).code, 'the container is gone with its unit').not.toBe(0);
    // deploy brings both back, in order.
    const again = await cli(['deploy', ...sel, '--metadata-secret-file', secretFile, '--json'], { timeoutMs: 20 * MIN, env: img.env });
    expect(again.code, again.stderr.slice(-3000)).toBe(0);
    expect((await show(agent, ['ActiveState'])).ActiveState).toBe('active');
  }, 30 * MIN);
});
