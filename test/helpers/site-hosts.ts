/**
 * A site of real test hosts on this machine: one podman container per host (the fresh-host image
 * of host-image.ts), each in its own network namespace and with its own filesystem, reachable by
 * the admin (this process) only over SSH with checked host keys.
 *
 * Network, all in names prefixed with the site's random prefix so concurrent or stale sites never
 * collide:
 *  - management: a Linux bridge in the root namespace holding the admin address (x.y.z.1/24) and
 *    one veth per host whose other end is `eth0` in the host's netns;
 *  - underlay (workers only): a second bridge and veth, `eth1` in the host, encap IP on it.
 * MTU 1600 everywhere (Geneve over a 1500 underlay hangs bulk TCP).
 *
 * Everything created is registered as it is created, so cleanup() (or a failure half-way through
 * createTestSite) removes exactly what this site made and nothing else.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { initPki } from '../../src/pki/index.js';
import { ZxRunner, type Runner } from '../../src/runner.js';
import { Ssh } from '../../src/tools/ssh.js';
import { ensureHostImage, SYSTEMD_RUN_ARGS } from './host-image.js';
import { defaultSiteRegistryDir, processStart, reapStaleSites, removeRecord, saveRecord, TEST_SITE_PREFIX, type SiteRecord } from './site-registry.js';

export type TestHostRole = 'central' | 'worker' | 'cms';

export interface TestHost {
  /** Host name in the inventory and the container's hostname (`central1`, `worker2`). */
  name: string;
  role: TestHostRole;
  /** podman container name. */
  container: string;
  /** The host's network namespace (`ip netns` name; the container joins it). */
  netns: string;
  /** Management address (eth0), reachable from the admin; what `deploy` connects to. */
  mgmtIp: string;
  /** Workers: the encap address on eth1 (the underlay). */
  underlayIp?: string;
  /**
   * With `nestedPodman`, workers: the directory on this machine's file system mounted as the
   * host's /var/lib/containers (inside the site's directory, removed with it).
   */
  containerStorage?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestSite {
  prefix: string;
  /** The admin's private directory (mkdtemp): inventory, keys, known_hosts, PKI. */
  dir: string;
  hosts: TestHost[];
  inventoryFile: string;
  knownHostsFile: string;
  /** The admin's SSH private key (ed25519), authorized for root on every host. */
  identityFile: string;
  /** initPki'd with 2048-bit keys. */
  pkiDir: string;
  /** Environment for `podman` (private storage and containers.conf). */
  podmanEnv: Record<string, string>;
  /** Admin address on the management bridge and the /24 both sides use. */
  adminIp: string;
  mgmtCidr: string;
  underlayCidr: string;
  host(name: string): TestHost;
  /** `podman exec` for test ASSERTIONS only (deploy itself must go through SSH). */
  exec(hostName: string, argv: string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /**
   * Host down: the container stops (all its processes die); its netns and addresses stay, so a
   * connection is refused at once. With `unplug`, its cables are pulled too (the root-side veths
   * go down): packets vanish and connections time out, like a powered-off machine.
   */
  stop(hostName: string, opts?: { unplug?: boolean }): Promise<void>;
  /** Host back: cables in, container started again, sshd listening, same host key and filesystem. */
  start(hostName: string): Promise<void>;
  /** An Ssh to the host as the admin (checked host key, admin key); closed by cleanup(). */
  ssh(hostName: string, opts?: { connectTimeoutSec?: number; runner?: Runner }): Ssh;
  cleanup(): Promise<void>;
}

export interface CreateTestSiteOptions {
  centrals: number;
  workers: number;
  /** Hosts with the `cms` role only (an NB client such as neutron-server): none unless given. */
  cms?: number;
  /** Default: `od` + 5 random hex digits (names must fit 15-char interface names); a given one must have that shape too. */
  prefix?: string;
  /** Extra inventory fields merged at the top level (e.g. ports). */
  inventoryExtra?: Record<string, unknown>;
  /** Hosts whose PID 1 is systemd (host-image.ts's systemd variant; sshd is its ssh.service). */
  systemd?: boolean;
  /**
   * Workers can run podman themselves (the metadata agent as a container): each gets its own
   * /var/lib/containers bound from a directory of the site's on this machine's file system, since
   * the kernel refuses an overlay (podman's storage) whose layers sit on an overlay (the host
   * container's root). The image makes its mounts shared for `-v /run/netns:/run/netns:shared`.
   */
  nestedPodman?: boolean;
}

const MTU = 1600;
/** Label put on every container so a stale one can be told apart from anything else. */
export const SITE_LABEL = 'ovn-deploy-test-site';

const runner: Runner = new ZxRunner();

async function sh(argv: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; allowFailure?: boolean } = {}): Promise<ExecResult> {
  const r = await runner.run(argv, {
    ...(opts.env === undefined ? {} : { env: opts.env }),
    ...(opts.input === undefined ? {} : { input: opts.input }),
    timeoutMs: opts.timeoutMs ?? 60_000,
    allowFailure: opts.allowFailure ?? false,
  });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** /24 networks already routed here (any route overlapping 10.a.b.0/24). */
async function routedPrefixes(): Promise<string[]> {
  const r = await sh(['ip', '-j', 'route', 'show', 'table', 'all'], { allowFailure: true });
  const out: string[] = [];
  try {
    for (const route of JSON.parse(r.stdout || '[]') as { dst?: string }[]) if (route.dst !== undefined && route.dst !== 'default') out.push(route.dst);
  } catch {
    // no JSON: treat as nothing routed
  }
  return out;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function overlaps(a: string, b: string): boolean {
  const [ai, ap] = a.includes('/') ? a.split('/') : [a, '32'];
  const [bi, bp] = b.includes('/') ? b.split('/') : [b, '32'];
  if (ai === undefined || bi === undefined || !/^\d+\.\d+\.\d+\.\d+$/.test(ai) || !/^\d+\.\d+\.\d+\.\d+$/.test(bi)) return false;
  const len = Math.min(Number(ap), Number(bp));
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipToInt(ai) & mask) >>> 0) === ((ipToInt(bi) & mask) >>> 0);
}

/** Two distinct random 10.a.b.0/24 networks that nothing on this machine routes yet. */
async function pickNetworks(): Promise<[string, string]> {
  const used = await routedPrefixes();
  const picked: string[] = [];
  for (let i = 0; i < 500 && picked.length < 2; i++) {
    // 10.100-249.x: away from podman's 10.88 and the usual low ranges.
    const net24 = `10.${randomInt(100, 250)}.${randomInt(0, 256)}.0/24`;
    if (!used.some((u) => overlaps(u, net24)) && !picked.includes(net24)) picked.push(net24);
  }
  if (picked.length < 2) throw new Error('no free 10.x.y.0/24 network found for the test site');
  return [picked[0] as string, picked[1] as string];
}

const hostAddr = (cidr24: string, n: number): string => cidr24.replace(/\.0\/24$/, `.${n}`);

async function waitForPort(ip: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: ip, port, timeout: 1000 });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.once('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${ip}:${port} not reachable after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const siteRegistryDir = defaultSiteRegistryDir;

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Removes everything a record lists (whatever of it still exists), then the record. */
async function destroySite(rec: SiteRecord, podmanEnv: Record<string, string>): Promise<void> {
  if (rec.containers.length > 0) await sh(['podman', 'rm', '-f', '-t', '1', ...rec.containers], { env: podmanEnv, allowFailure: true, timeoutMs: 120_000 });
  // A host's nested podman mounts (overlays, shm) live in its container's mount namespace and end
  // with it; one that reached this namespace all the same is unmounted, never deleted through.
  for (const m of await mountsUnder(rec.dir)) await sh(['umount', '-l', m], { allowFailure: true });
  const left = await mountsUnder(rec.dir);
  if (left.length > 0) throw new Error(`test site ${rec.prefix}: still mounted under ${rec.dir}, not removed: ${left.join(', ')}`);
  for (const ns of rec.netnses) await sh(['ip', 'netns', 'del', ns], { allowFailure: true });
  // Root-side veth ends die with their netns peer; bridges (and any veth left) are deleted here.
  for (const l of [...rec.links].reverse()) {
    const r = await sh(['ip', 'link', 'show', 'dev', l], { allowFailure: true });
    if (r.code === 0) await sh(['ip', 'link', 'del', 'dev', l], { allowFailure: true });
  }
  await rm(rec.dir, { recursive: true, force: true });
  await removeRecord(rec.prefix);
}

/**
 * Removes the sites of dead creators (site-registry.ts says which records are trusted); returns
 * the prefixes it removed. createTestSite calls it first.
 */
export async function reapStaleTestSites(podmanEnv: Record<string, string>): Promise<string[]> {
  const { reaped, refused } = await reapStaleSites({ destroy: (r) => destroySite(r, podmanEnv) });
  if (refused.length > 0) console.warn(`test site: left records that are not test sites of ours:\n  ${refused.join('\n  ')}`);
  return reaped;
}

export async function createTestSite(opts: CreateTestSiteOptions): Promise<TestSite> {
  const img = ensureHostImage({ systemd: opts.systemd === true });
  const podmanEnv = img.env;
  const prefix = opts.prefix ?? `od${randomBytes(3).toString('hex').slice(0, 5)}`;
  // The reaper acts only on this shape of prefix (site-registry.ts).
  if (!TEST_SITE_PREFIX.test(prefix)) throw new Error(`test site prefix ${prefix}: expected ${String(TEST_SITE_PREFIX)}`);
  const reaped = await reapStaleTestSites(podmanEnv);
  if (reaped.length > 0) console.warn(`test site: removed stale sites of dead test runs: ${reaped.join(', ')}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-site-`));

  // Everything this site creates, registered before it is created (see SiteRecord).
  const rec: SiteRecord = { prefix, pid: process.pid, pidStart: processStart(process.pid) ?? '', dir, containers: [], netnses: [], links: [] };
  const register = (kind: 'containers' | 'netnses' | 'links', name: string): void => {
    rec[kind].push(name);
    saveRecord(rec);
  };
  saveRecord(rec);
  let cleaned = false;

  const sshs: Ssh[] = [];
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const s of sshs) await s.close().catch(() => undefined);
    await destroySite(rec, podmanEnv);
  };

  try {
    const [mgmtCidr, underlayCidr] = await pickNetworks();
    const adminIp = hostAddr(mgmtCidr, 1);
    const mgmtBr = `${prefix}-m`;
    const underBr = `${prefix}-u`;
    for (const [br, addr] of [
      [mgmtBr, `${adminIp}/24`],
      [underBr, undefined],
    ] as const) {
      register('links', br);
      await sh(['ip', 'link', 'add', 'name', br, 'mtu', String(MTU), 'type', 'bridge']);
      if (addr !== undefined) await sh(['ip', 'addr', 'add', addr, 'dev', br]);
      await sh(['ip', 'link', 'set', 'dev', br, 'up']);
    }

    const hosts: TestHost[] = [];
    for (let i = 1; i <= opts.centrals; i++) hosts.push({ name: `central${i}`, role: 'central', container: '', netns: '', mgmtIp: '' });
    for (let i = 1; i <= opts.workers; i++) hosts.push({ name: `worker${i}`, role: 'worker', container: '', netns: '', mgmtIp: '' });
    for (let i = 1; i <= (opts.cms ?? 0); i++) hosts.push({ name: `cms${i}`, role: 'cms', container: '', netns: '', mgmtIp: '' });
    hosts.forEach((h, idx) => {
      h.container = `${prefix}-${h.name}`;
      h.netns = `${prefix}-${h.name}`;
      h.mgmtIp = hostAddr(mgmtCidr, 10 + idx);
      if (h.role === 'worker') h.underlayIp = hostAddr(underlayCidr, 10 + idx);
      if (h.role === 'worker' && opts.nestedPodman === true) h.containerStorage = path.join(dir, 'containers', h.name);
    });

    // Network namespaces and veths (one `ip -batch` per host keeps this fast).
    for (const [idx, h] of hosts.entries()) {
      register('netnses', h.netns);
      await sh(['ip', 'netns', 'add', h.netns]);
      const vm = `${prefix}m${idx}`;
      const vu = `${prefix}u${idx}`;
      const lines = [
        `link add name ${vm} mtu ${MTU} type veth peer name eth0 netns ${h.netns} mtu ${MTU}`,
        `link set dev ${vm} master ${mgmtBr} up`,
      ];
      register('links', vm);
      if (h.underlayIp !== undefined) {
        lines.push(`link add name ${vu} mtu ${MTU} type veth peer name eth1 netns ${h.netns} mtu ${MTU}`, `link set dev ${vu} master ${underBr} up`);
        register('links', vu);
      }
      await sh(['ip', '-batch', '-'], { input: `${lines.join('\n')}\n` });
      const inner = ['link set dev lo up', `addr add ${h.mgmtIp}/24 dev eth0`, 'link set dev eth0 up'];
      if (h.underlayIp !== undefined) inner.push(`addr add ${h.underlayIp}/24 dev eth1`, 'link set dev eth1 up');
      await sh(['ip', '-n', h.netns, '-batch', '-'], { input: `${inner.join('\n')}\n` });
    }

    // Admin key.
    const identityFile = path.join(dir, 'id_ed25519');
    await sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${prefix}-admin`, '-f', identityFile]);
    const adminPub = await readFile(`${identityFile}.pub`, 'utf8');

    // Containers, started in parallel (each generates its host keys on first start).
    await Promise.all(
      hosts.map(async (h) => {
        register('containers', h.container);
        // Inside the site's directory (registered already): removed with it.
        if (h.containerStorage !== undefined) await mkdir(h.containerStorage, { recursive: true, mode: 0o700 });
        await sh(
          [
            'podman',
            'run',
            '-d',
            '--privileged',
            ...(opts.systemd === true ? SYSTEMD_RUN_ARGS : []),
            '--network',
            `ns:/run/netns/${h.netns}`,
            '--hostname',
            h.name,
            // Names resolve through /etc/hosts only. The resolver is a closed local port: a
            // lookup fails at once instead of waiting for this machine's unreachable nameserver.
            '--dns',
            '127.0.0.1',
            ...hosts.flatMap((o) => ['--add-host', `${o.name}:${o.mgmtIp}`]),
            // Private propagation (podman's default): nothing the host mounts there reaches this machine.
            ...(h.containerStorage === undefined ? [] : ['--volume', `${h.containerStorage}:/var/lib/containers:rprivate`]),
            '--name',
            h.container,
            '--label',
            `${SITE_LABEL}=${prefix}`,
            img.image,
          ],
          { env: podmanEnv, timeoutMs: 120_000 },
        );
      }),
    );

    const exec = async (hostName: string, argv: string[], o: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> => {
      const h = hosts.find((x) => x.name === hostName);
      if (h === undefined) throw new Error(`no host ${hostName} in test site ${prefix}`);
      return sh(['podman', 'exec', ...(o.input === undefined ? [] : ['-i']), h.container, ...argv], {
        env: podmanEnv,
        ...(o.input === undefined ? {} : { input: o.input }),
        timeoutMs: o.timeoutMs ?? 120_000,
        allowFailure: true,
      });
    };

    const knownHostsFile = path.join(dir, 'known_hosts');
    const known: string[] = [];
    await Promise.all(
      hosts.map(async (h) => {
        const put = await exec(h.name, ['sh', '-c', 'umask 077; mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys'], {
          input: adminPub,
        });
        if (put.code !== 0) throw new Error(`authorizing the admin key on ${h.name}: ${put.stderr}`);
        // Host keys appear once the entrypoint's ssh-keygen -A ran; sshd listens right after.
        await waitForPort(h.mgmtIp, 22, 30_000);
        const keys = await exec(h.name, ['sh', '-c', 'cat /etc/ssh/ssh_host_*_key.pub']);
        if (keys.code !== 0) throw new Error(`reading host keys of ${h.name}: ${keys.stderr}`);
        for (const line of keys.stdout.split('\n')) {
          const [type, key] = line.trim().split(/\s+/);
          if (type !== undefined && key !== undefined) known.push(`${h.mgmtIp},${h.name} ${type} ${key}`);
        }
      }),
    );
    await writeFile(knownHostsFile, `${known.sort().join('\n')}\n`, { mode: 0o600 });

    const pkiDir = path.join(dir, 'pki');
    await initPki(pkiDir, { keyBits: 2048, commonName: prefix });

    const inventory = {
      site: prefix,
      certificates: { caKeyBits: 2048, leafKeyBits: 2048 },
      ...opts.inventoryExtra,
      hosts: hosts.map((h) => ({
        name: h.name,
        addresses: [h.mgmtIp],
        roles: [h.role],
        ...(h.role === 'worker'
          ? { datapath: 'netdev', encap: { type: 'geneve', ip: h.underlayIp, interface: 'eth1' } }
          : {}),
        ssh: { user: 'root', port: 22 },
      })),
    };
    const inventoryFile = path.join(dir, 'site.yaml');
    await writeFile(inventoryFile, `# test site ${prefix} (test/helpers/site-hosts.ts)\n${stringify(inventory)}`);

    const rootVeths = (h: TestHost): string[] => {
      const idx = hosts.indexOf(h);
      return h.underlayIp === undefined ? [`${prefix}m${idx}`] : [`${prefix}m${idx}`, `${prefix}u${idx}`];
    };
    const hostByName = (name: string): TestHost => {
      const h = hosts.find((x) => x.name === name);
      if (h === undefined) throw new Error(`no host ${name} in test site ${prefix}`);
      return h;
    };

    return {
      prefix,
      dir,
      hosts,
      inventoryFile,
      knownHostsFile,
      identityFile,
      pkiDir,
      podmanEnv,
      adminIp,
      mgmtCidr,
      underlayCidr,
      host: hostByName,
      ssh: (name, o = {}) => {
        const h = hostByName(name);
        const s = new Ssh(
          { name: h.name, user: 'root', host: h.mgmtIp, port: 22 },
          { knownHostsFile, identityFile, connectTimeoutSec: o.connectTimeoutSec ?? 3, ...(o.runner === undefined ? {} : { runner: o.runner }) },
        );
        sshs.push(s);
        return s;
      },
      exec,
      stop: async (name, o = {}) => {
        const h = hostByName(name);
        await sh(['podman', 'stop', '-t', '2', h.container], { env: podmanEnv, timeoutMs: 60_000 });
        if (o.unplug === true) for (const v of rootVeths(h)) await sh(['ip', 'link', 'set', 'dev', v, 'down']);
      },
      start: async (name) => {
        const h = hostByName(name);
        for (const v of rootVeths(h)) await sh(['ip', 'link', 'set', 'dev', v, 'up']);
        await sh(['podman', 'start', h.container], { env: podmanEnv, timeoutMs: 60_000 });
        await waitForPort(h.mgmtIp, 22, 30_000);
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
