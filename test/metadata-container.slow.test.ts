/**
 * The metadata agent in podman containers built from containers/ovn-metadata-agent
 * (`up --metadata-image`): registered through the workers' stunnel clients, the VM served through
 * an HMAC-checking fake Nova, `status` says it runs as a container, the image's HEALTHCHECK
 * follows the registration (unhealthy while not registered), and the SB restarted, ovn-controller
 * restarted and the container killed all end with metadata served again.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMetadata, type MetadataSandboxPlan } from '../src/metadata/sandbox-plan.js';
import { sandboxPaths } from '../src/paths.js';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { startFakeNova, type FakeNova } from './helpers/fake-nova.js';
import { sbctl, statusJson, treeRssKb, vmCurl, type Status } from './helpers/metadata-e2e.js';
import { ensureMetadataImage, podman, type MetadataImage } from './helpers/metadata-image.js';
import { cli, leftovers, requireBuiltCli, waitFor, type CliResult } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
const missing = ['neutron-ovn-metadata-agent', 'haproxy', 'curl', 'podman', 'mmdebstrap', 'runc'].filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0);
if (notRoot) console.warn('metadata-container.slow.test.ts: skipped, needs root');
else if (missing.length > 0) console.warn(`metadata-container.slow.test.ts: skipped, missing ${missing.join(', ')} (scripts/install-deps.sh build metadata)`);

describe.skipIf(notRoot || missing.length > 0)('up --metadata-image: the metadata agent in podman containers', () => {
  let parent: string;
  let dir: string;
  let id: string;
  let m: MetadataSandboxPlan;
  let img: MetadataImage;
  let nova: FakeNova | undefined;
  const timings: Record<string, number | string> = {};

  const run = async (args: string[]): Promise<CliResult> => {
    const r = await cli(args, { env: img.env, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`ovn-deploy ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const healthcheck = (worker: string) => podman(['healthcheck', 'run', m.agents.find((a) => a.worker === worker)?.containerName ?? ''], img.env);
  const waitServed = (what: string) => waitFor(() => vmCurl(m) === '200', 90_000, `metadata served (${what})`);
  const waitHealthy = async (what: string) => {
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = (await statusJson(dir, img.env)).json;
        return last.healthy && healthcheck('worker1').code === 0;
      },
      120_000,
      `healthy (${what})`,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; problems: ${JSON.stringify(last?.problems)}; healthcheck: ${healthcheck('worker1').out}`);
    });
  };

  beforeAll(async () => {
    requireBuiltCli();
    img = ensureMetadataImage();
    timings.imageBuildSec = img.builtSec;
    timings.imageSizeMb = img.sizeMb;
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'od-mdc-'));
    dir = path.join(parent, 'sandbox');
    id = sandboxId(dir);
    const names = sandboxNames(id);
    m = planMetadata({ id, stateDir: dir, paths: sandboxPaths(dir), names, image: img.image, workers: [1, 2].map((i) => ({ name: `worker${i}`, netns: names.nodeNetns(`w${i}`) })) });
  }, 30 * 60_000);

  afterAll(async () => {
    await nova?.stop();
    if (dir !== undefined) await cli(['down', '--dir', dir], { env: img.env });
    if (parent !== undefined) await fs.rm(parent, { recursive: true, force: true });
    console.log(`metadata-container.slow timings and sizes: ${JSON.stringify(timings)}`);
  });

  it('up --metadata-image: containers registered through stunnel, the VM gets 200, status says container, HEALTHCHECK healthy', async () => {
    const started = Date.now();
    const r = await run(['up', '--metadata-image', img.image, '--dir', dir, '--workers', '2']);
    timings.upMs = r.ms;
    nova = await startFakeNova(sandboxNames(id).nodeNetns('w1'), m.nova.host, m.nova.port, m.secretFile);
    await waitServed('first reply');
    timings.upToFirstMetadataReplyMs = Date.now() - started;
    await waitFor(() => nova?.requests().some((q) => q.status === 200 && q.instanceId === m.vm.deviceId) === true, 5000, "fake nova's request log");
    const ps = podman(['ps', '--format', '{{.Names}} {{.Image}}'], img.env).out;
    for (const a of m.agents) expect(ps).toContain(`${a.containerName} ${img.image}`);
    for (const w of ['worker1', 'worker2']) {
      expect(sbctl(dir, ['get', 'Chassis_Private', w, 'external_ids:"neutron:ovn-metadata-id"']).out).toMatch(/[0-9a-f-]{36}/);
    }
    const { code, json } = await statusJson(dir, img.env);
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(json.metadataAgents?.map((a) => [a.chassis, a.runsAs, a.registered, a.healthy])).toEqual([
      ['worker1', 'container', true, true],
      ['worker2', 'container', true, true],
    ]);
    const hc = healthcheck('worker1');
    expect(hc.code, hc.out).toBe(0);
    const pid = Number(podman(['inspect', '--format', '{{.State.Pid}}', m.agents[0]?.containerName ?? ''], img.env).out);
    timings.agentContainerRssKb = treeRssKb(pid);
  });

  it('the Southbound restarted: served again', async () => {
    const { json } = await statusJson(dir, img.env);
    const sbPid = json.daemons.find((d) => d.name === 'central-sb-ovsdb')?.pid ?? 0;
    process.kill(sbPid, 'SIGKILL');
    await waitHealthy('after SB restart');
    await waitServed('after SB restart');
  });

  it('ovn-controller exits (its chassis deleted): the agent re-registers, served again', async () => {
    const { json } = await statusJson(dir, img.env);
    const ctlPid = json.daemons.find((d) => d.name === 'worker1-ovn-controller')?.pid ?? 0;
    const exit = spawnSync('ovn-appctl', ['-t', path.join(dir, 'run', 'worker1', `ovn-controller.${ctlPid}.ctl`), 'exit'], { encoding: 'utf8' });
    expect(exit.status, exit.stderr).toBe(0);
    await waitHealthy('after ovn-controller restart');
    await waitServed('after ovn-controller restart');
  });

  it('HEALTHCHECK is unhealthy while not registered; the container killed is restarted, re-registers and serves', async () => {
    const rm = sbctl(dir, ['remove', 'Chassis_Private', 'worker1', 'external_ids', '"neutron:ovn-metadata-id"']);
    expect(rm.code, rm.out).toBe(0);
    const hc = healthcheck('worker1');
    expect(hc.code).not.toBe(0);
    expect(podman(['exec', m.agents[0]?.containerName ?? '', '/usr/local/bin/ovn-deploy-healthcheck'], img.env).out).toMatch(/unhealthy: chassis worker1 not registered/);
    const lost = await statusJson(dir, img.env);
    expect(lost.json.metadataAgents?.find((a) => a.chassis === 'worker1')).toMatchObject({ runsAs: 'container', registered: false, healthy: false });
    const t = Date.now();
    const kill = podman(['kill', m.agents[0]?.containerName ?? ''], img.env);
    expect(kill.code, kill.out).toBe(0);
    await waitHealthy('after the container was killed');
    await waitServed('after the container was killed');
    timings.containerKillToServedMs = Date.now() - t;
  });

  it('down: no container, no ovnmeta namespace, nothing of the sandbox left', async () => {
    await nova?.stop();
    nova = undefined;
    await run(['down', '--dir', dir]);
    expect(podman(['ps', '-a', '--format', '{{.Names}}'], img.env).out).not.toContain(sandboxNames(id).prefix);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(m.ovnmetaNetns);
    expect(leftovers(id, dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
  });
});
