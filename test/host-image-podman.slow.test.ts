/**
 * Issue #16's base: a worker test host (plain variant, PID 1 sshd) runs the metadata agent IN A
 * PODMAN CONTAINER ON IT, with the argv the product renders for a host, started the way the own
 * supervisor starts it (PODMAN_LAUNCHER under sh). podman comes offline from the host image's
 * .debs, the agent image by `podman save | podman load`; the Southbound is a bare ovsdb-server on
 * the central (helpers/nested-podman.ts). Everything it makes goes with the site's cleanup.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMetadataImage, type MetadataImage } from './helpers/metadata-image.js';
import {
  agentRegistration,
  agentStage,
  AGENT_LAUNCHER_PID,
  containerState,
  copyImageInto,
  installOffline,
  renderedAgentArgv,
  startAgent,
  until,
} from './helpers/nested-podman.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';

const notRoot = process.getuid?.() !== 0;
const missing = ['podman', 'mmdebstrap'].filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0);
if (notRoot) console.warn('host-image-podman.slow.test.ts: skipped, needs root');
else if (missing.length > 0) console.warn(`host-image-podman.slow.test.ts: skipped, missing ${missing.join(', ')}`);

const W = 'worker1';

describe.skipIf(notRoot || missing.length > 0)('test hosts: the metadata agent in podman on a worker (nested podman)', () => {
  let site: TestSite;
  let img: MetadataImage;
  let argv: string[];

  beforeAll(async () => {
    img = ensureMetadataImage();
    site = await createTestSite({ centrals: 1, workers: 1, nestedPodman: true });
  }, 1_800_000);

  afterAll(async () => {
    const dir = site?.dir;
    await site?.cleanup();
    if (dir !== undefined) {
      expect(existsSync(dir)).toBe(false);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    }
  }, 300_000);

  it('installs podman offline (no route off the site) and loads the agent image', async () => {
    expect((await site.exec(W, ['ip', 'route', 'get', '1.1.1.1'])).code).not.toBe(0);
    await installOffline(site, W, ['openvswitch-switch', 'ovn-common'], { recommends: false });
    await installOffline(site, 'central1', ['ovn-central'], { recommends: false });
    await installOffline(site, W, ['podman']);
    const info = await site.exec(W, ['podman', 'info', '--format', '{{.Store.GraphDriverName}} {{.Host.CgroupManager}}']);
    expect(info.stdout.trim()).toBe('overlay cgroupfs');
    await copyImageInto(site, W, img.image, img.env);
    expect((await site.exec(W, ['podman', 'image', 'exists', img.image])).code).toBe(0);
  }, 600_000);

  it('runs the rendered argv under PODMAN_LAUNCHER: registers, healthcheck passes', async () => {
    await agentStage(site, W);
    argv = renderedAgentArgv(img.image);
    expect(argv.slice(0, 2)).toEqual(['/usr/bin/podman', 'run']);
    expect(argv.join(' ')).toContain('--network host --privileged --volume /run/netns:/run/netns:shared');
    await startAgent(site, W, argv, 'supervisor');
    await until('agent container running', () => containerState(site, W), (s) => s?.running === true, 90_000);
    await until('agent registered in the Southbound', () => agentRegistration(site, W), (id) => id !== '', 90_000);
    const hc = await site.exec(W, ['podman', 'healthcheck', 'run', 'ovn-metadata-agent']);
    expect(hc.code, hc.stdout + hc.stderr).toBe(0);
    expect((await containerState(site, W))?.health).toBe('healthy');
  }, 300_000);

  it('a namespace the container mounts under /run/netns is the host\'s, and outlives the container', async () => {
    const add = await site.exec(W, ['podman', 'exec', 'ovn-metadata-agent', 'ip', 'netns', 'add', 'ovnmeta-nested-test']);
    expect(add.code, add.stderr).toBe(0);
    expect((await site.exec(W, ['ip', 'netns', 'list'])).stdout).toContain('ovnmeta-nested-test');
    const use = await site.exec(W, ['ip', 'netns', 'exec', 'ovnmeta-nested-test', 'ip', 'link', 'show', 'lo']);
    expect(use.code, use.stderr).toBe(0);
    // Within the host only: this machine never sees it.
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain('ovnmeta-nested-test');

    const before = await containerState(site, W);
    expect((await site.exec(W, ['podman', 'kill', 'ovn-metadata-agent'])).code).toBe(0);
    // The own supervisor starts its service again: the same command (--replace, --rm).
    await startAgent(site, W, argv, 'supervisor');
    const again = await until('a new agent container', () => containerState(site, W), (s) => s?.running === true && s.pid !== before?.pid, 90_000);
    expect(again.value?.startedAt).not.toBe(before?.startedAt);
    expect((await site.exec(W, ['ip', 'netns', 'exec', 'ovnmeta-nested-test', 'true'])).code).toBe(0);
  }, 300_000);

  it('SIGTERM to the launcher (the own supervisor\'s stop) stops and removes the container', async () => {
    await until('agent container running', () => containerState(site, W), (s) => s?.running === true, 90_000);
    expect((await site.exec(W, ['sh', '-c', `kill -TERM $(cat ${AGENT_LAUNCHER_PID})`])).code).toBe(0);
    await until('agent container removed', () => containerState(site, W), (s) => s === undefined, 60_000);
  }, 120_000);
});
