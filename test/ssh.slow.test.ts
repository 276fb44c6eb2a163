/**
 * Real test hosts (podman containers, each in its own netns with its own filesystem) reached
 * only over SSH with checked host keys: the Ssh wrapper's error kinds, pushDirectory, shipping
 * the tool, and a fresh host installing OVN's packages offline.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remote } from '../src/deploy/remote.js';
import { buildToolArchive, shipTool } from '../src/deploy/tool-archive.js';
import { packageRoot } from '../src/paths.js';
import { Ssh, SshError } from '../src/tools/ssh.js';
import { ensureHostImage } from './helpers/host-image.js';
import { createTestSite, reapStaleTestSites, siteRegistryDir, type TestHost, type TestSite } from './helpers/site-hosts.js';

const haveTools = ['podman', 'mmdebstrap', 'ssh', 'ssh-keygen'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
const isRoot = process.getuid?.() === 0;
const skip = !haveTools || !isRoot;
if (skip) console.warn('ssh.slow: skipped (needs root, podman, mmdebstrap and the OpenSSH client)');

const timings: Record<string, number> = {};
async function timed<T>(step: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await f();
  } finally {
    timings[step] = Date.now() - t;
    console.log(`[ssh.slow] ${step}: ${timings[step]} ms`);
  }
}

describe.skipIf(skip)('test hosts over ssh', () => {
  let site: TestSite;
  let central: TestHost;
  let worker: TestHost;
  let tmp: string;
  const sshs: Ssh[] = [];

  const sshTo = (h: TestHost, over: { knownHostsFile?: string; connectTimeoutSec?: number } = {}): Ssh => {
    const s = new Ssh(
      { name: h.name, user: 'root', host: h.mgmtIp, port: 22 },
      { knownHostsFile: over.knownHostsFile ?? site.knownHostsFile, identityFile: site.identityFile, connectTimeoutSec: over.connectTimeoutSec ?? 3 },
    );
    sshs.push(s);
    return s;
  };

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'od-ssh-test-'));
    const img = await timed('host image (0 = cached)', async () => ensureHostImage());
    console.log(`[ssh.slow] image ${img.image}, built now: ${img.builtSec} s`);
    site = await timed('site create (1 central + 1 worker)', () => createTestSite({ centrals: 1, workers: 1 }));
    central = site.host('central1');
    worker = site.host('worker1');
  }, 1_800_000);

  afterAll(async () => {
    for (const s of sshs) await s.close();
    if (site !== undefined) await timed('site cleanup', () => site.cleanup());
    rmSync(tmp, { recursive: true, force: true });
    console.log(`[ssh.slow] timings (ms): ${JSON.stringify(timings)}`);
  }, 120_000);

  it('each host answers over ssh with its checked host key, in its own netns and filesystem', async () => {
    for (const h of [central, worker]) {
      const s = sshTo(h);
      const r = await timed(`first ssh ${h.name}`, () => s.run(['hostname']));
      expect(r.stdout.trim()).toBe(h.name);
      const again = await timed(`multiplexed ssh ${h.name}`, () => s.run(['sh', '-c', 'echo "$1"', 'x', "it's a \"quoted\" $arg; `x`"]));
      expect(again.stdout).toBe("it's a \"quoted\" $arg; `x`\n");
      const addrs = await s.run(['ip', '-o', '-4', 'addr', 'show']);
      expect(addrs.stdout).toContain(h.mgmtIp);
      if (h.underlayIp !== undefined) expect(addrs.stdout).toMatch(new RegExp(`eth1\\s+inet ${h.underlayIp.replace(/\./g, '\\.')}/24`));
      expect(await s.reachable()).toBe(true);
      expect((await site.ssh(h.name).run(['hostname'])).stdout.trim()).toBe(h.name);
    }
    // Own filesystem: a file written on one host is not on the other.
    await sshTo(central).run(['sh', '-c', 'echo mine > /root/marker']);
    const other = await sshTo(worker).run(['cat', '/root/marker'], { allowFailure: true });
    expect(other.exitCode).not.toBe(0);
    // Nothing of OVN is preinstalled: apply must install it.
    const dpkg = await sshTo(worker).run(['dpkg-query', '-W', '-f=${Status}', 'ovn-host'], { allowFailure: true });
    expect(dpkg.stdout).not.toContain('ok installed');
  });

  it('a remote command failure is command-failed with its exit code', async () => {
    const s = sshTo(central);
    const err = await s.run(['sh', '-c', 'echo boom >&2; exit 7']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('command-failed');
    expect((err as SshError).result?.exitCode).toBe(7);
    expect((err as SshError).message).toContain('boom');
    const allowed = await s.run(['sh', '-c', 'exit 3'], { allowFailure: true });
    expect(allowed.exitCode).toBe(3);
  });

  it('a wrong host key in known_hosts is refused as host-key', async () => {
    // The worker's keys listed under the central's address: a machine that is not who it claims.
    const kh = path.join(tmp, 'known_hosts.wrong');
    const keys = await site.exec(worker.name, ['sh', '-c', 'cat /etc/ssh/ssh_host_*_key.pub']);
    const lines = keys.stdout
      .trim()
      .split('\n')
      .map((l) => `${central.mgmtIp} ${l.split(/\s+/).slice(0, 2).join(' ')}`);
    writeFileSync(kh, `${lines.join('\n')}\n`);
    const s = sshTo(central, { knownHostsFile: kh });
    const err = await timed('wrong host key refused', () => s.run(['true']).catch((e: unknown) => e));
    expect(err).toBeInstanceOf(SshError);
    expect((err as SshError).kind).toBe('host-key');
    expect((err as SshError).message).toMatch(/host key/i);
    await expect(s.reachable()).rejects.toMatchObject({ kind: 'host-key' });
    // An empty known_hosts (host unknown) is refused the same way: never trust on first use.
    const empty = path.join(tmp, 'known_hosts.empty');
    writeFileSync(empty, '');
    const err2 = await sshTo(central, { knownHostsFile: empty })
      .run(['true'])
      .catch((e: unknown) => e);
    expect((err2 as SshError).kind).toBe('host-key');
  });

  it('a stopped host is unreachable within the connect timeout and answers again after start', async () => {
    const s = sshTo(worker, { connectTimeoutSec: 2 });
    expect(await s.reachable()).toBe(true);
    await timed('stop worker1', () => site.stop(worker.name));
    const t = Date.now();
    const down = await s.run(['true'], { timeoutMs: 20_000 }).catch((e: unknown) => e);
    const took = Date.now() - t;
    console.log(`[ssh.slow] unreachable reported after ${took} ms`);
    expect(down).toBeInstanceOf(SshError);
    expect(['unreachable', 'timeout']).toContain((down as SshError).kind);
    expect((down as SshError).kind).toBe('unreachable');
    expect(took).toBeLessThan(10_000);
    expect(await timed('reachable() on a stopped host', () => s.reachable())).toBe(false);
    await timed('start worker1', () => site.start(worker.name));
    expect(await timed('reachable() after start', () => s.reachable())).toBe(true);
    // Same host key (known_hosts unchanged) and same filesystem.
    const r = await s.run(['hostname']);
    expect(r.stdout.trim()).toBe(worker.name);
  });

  it('an unplugged host (packets vanish) is unreachable after the connect timeout; a hung command times out', async () => {
    const s = sshTo(worker, { connectTimeoutSec: 2 });
    await s.close(); // no multiplexed master: a fresh connection must be attempted
    const hung = await timed('command past its timeout', () => sshTo(central).run(['sleep', '30'], { timeoutMs: 1500 }).catch((e: unknown) => e));
    expect((hung as SshError).kind).toBe('timeout');
    await timed('stop worker1 --unplug', () => site.stop(worker.name, { unplug: true }));
    const t = Date.now();
    const down = await s.run(['true'], { timeoutMs: 20_000 }).catch((e: unknown) => e);
    const took = Date.now() - t;
    console.log(`[ssh.slow] unplugged host reported after ${took} ms (ConnectTimeout=2)`);
    expect((down as SshError).kind).toBe('unreachable');
    expect((down as SshError).message).toMatch(/unreachable/);
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(8_000);
    await timed('start worker1 (plugged in)', () => site.start(worker.name));
    expect(await s.reachable()).toBe(true);
  });

  it('pushDirectory replaces a remote directory with a local one, modes kept', async () => {
    const local = path.join(tmp, 'push');
    mkdirSync(path.join(local, 'sub'), { recursive: true });
    writeFileSync(path.join(local, 'a.txt'), 'alpha\n');
    writeFileSync(path.join(local, 'sub', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    writeFileSync(path.join(local, 'secret'), 'x', { mode: 0o600 });
    const s = sshTo(central);
    await s.run(['sh', '-c', 'mkdir -p /var/lib/pushtest && echo stale > /var/lib/pushtest/old.txt']);
    await timed('pushDirectory', () => s.pushDirectory(local, '/var/lib/pushtest'));
    const ls = await s.run(['sh', '-c', 'cd /var/lib/pushtest && find . -type f | sort && stat -c "%a %n" secret sub/run.sh && ./sub/run.sh && ls -d /var/lib/pushtest.* 2>/dev/null | wc -l']);
    expect(ls.stdout).toBe('./a.txt\n./secret\n./sub/run.sh\n600 secret\n755 sub/run.sh\nran\n0\n');
  });

  it('ships the tool once and runs it from /opt/ovn-deploy/current on the host', async () => {
    const archive = await timed('buildToolArchive', () => buildToolArchive({ cacheDir: path.join(tmp, 'tool-cache') }));
    const s = sshTo(worker);
    const first = await timed('shipTool (first)', () => shipTool(s, archive));
    expect(first).toEqual({ id: archive.id, shipped: true, previous: '' });
    const second = await timed('shipTool (again)', () => shipTool(s, archive));
    expect(second.shipped).toBe(false);
    const version = await timed('remote cli --version', () => s.run(['node', remote.cli, '--version']));
    const pkg = execFileSync(process.execPath, ['-p', `require(${JSON.stringify(path.join(packageRoot, 'package.json'))}).version`], { encoding: 'utf8' });
    expect(version.stdout.trim()).toBe(pkg.trim());
    const link = await s.run(['readlink', '/opt/ovn-deploy/current']);
    expect(link.stdout.trim()).toBe(archive.id);
    // A new version becomes current and the old one stays as previous.
    await s.run(['sh', '-c', `mkdir -p /opt/ovn-deploy/0.0.0-older && touch /opt/ovn-deploy/0.0.0-older/.complete`]);
    const viaOther = await shipTool(s, { id: '0.0.0-older', file: archive.file });
    expect(viaOther).toEqual({ id: '0.0.0-older', shipped: false, previous: archive.id });
    expect((await s.run(['readlink', '/opt/ovn-deploy/previous'])).stdout.trim()).toBe(archive.id);
    const back = await shipTool(s, archive);
    expect(back).toEqual({ id: archive.id, shipped: false, previous: '0.0.0-older' });
  });

  it('cleanup removes exactly what a site made; a dead run\'s site is reaped by the next one', async () => {
    const names = (argv: string[]): string => execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...site.podmanEnv } });
    const extra = await timed('site create (1 central)', () => createTestSite({ centrals: 1, workers: 0 }));
    const h = extra.host('central1');
    expect(names(['ip', 'netns', 'list'])).toContain(h.netns);
    await timed('site cleanup (1 central)', () => extra.cleanup());
    expect(names(['ip', 'netns', 'list'])).not.toContain(h.netns);
    expect(names(['ip', '-br', 'link'])).not.toMatch(new RegExp(`^${extra.prefix}`, 'm'));
    expect(names(['podman', 'ps', '-a', '--format', '{{.Names}}'])).not.toContain(h.container);
    // Our own site is untouched by that.
    expect(await sshTo(central).reachable()).toBe(true);

    // A site whose creator died: its record names a finished pid.
    const deadPid = spawnSync('true').pid as number;
    const prefix = `zz${Math.random().toString(36).slice(2, 7)}`;
    execFileSync('ip', ['netns', 'add', `${prefix}-x`]);
    execFileSync('ip', ['link', 'add', 'name', `${prefix}-m`, 'type', 'bridge']);
    const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-site-`));
    mkdirSync(siteRegistryDir, { recursive: true });
    writeFileSync(
      path.join(siteRegistryDir, `${prefix}.json`),
      JSON.stringify({ prefix, pid: deadPid, pidStart: '1', dir, containers: [`${prefix}-x`], netnses: [`${prefix}-x`], links: [`${prefix}-m`] }),
    );
    const reaped = await reapStaleTestSites(site.podmanEnv);
    expect(reaped).toContain(prefix);
    expect(reaped).not.toContain(site.prefix);
    expect(names(['ip', 'netns', 'list'])).not.toContain(`${prefix}-x`);
    expect(names(['ip', '-br', 'link'])).not.toContain(`${prefix}-m`);
    expect(existsSync(dir)).toBe(false);
    expect(await sshTo(central).reachable()).toBe(true);
  });

  it('a fresh host installs OVN, OVS and stunnel offline from its pre-downloaded packages', async () => {
    const s = sshTo(central);
    const r = await timed('offline apt-get install stunnel4', () =>
      s.run(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', 'stunnel4'], { timeoutMs: 300_000 }),
    );
    expect(r.exitCode).toBe(0);
    expect((await s.run(['stunnel4', '-version'], { allowFailure: true })).stderr).toMatch(/stunnel 5\./);
    // No route off the site: the packages cannot have come from a mirror.
    const route = await s.run(['ip', 'route', 'show', 'default']);
    expect(route.stdout.trim()).toBe('');
  });
});
