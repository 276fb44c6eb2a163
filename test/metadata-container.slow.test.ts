/**
 * The metadata agent in podman containers built from containers/ovn-metadata-agent
 * (`up --metadata-image`): it reaches the SB only through the workers' stunnel clients (its TCP
 * connections seen by `ss`), the VM is served through an HMAC-checking fake Nova (a wrong secret
 * is rejected), the secret is in no log, config, command line or `podman inspect`, `status` says
 * it runs as a container, the image's HEALTHCHECK follows the registration, and the SB restarted,
 * ovn-controller restarted and the container killed (each proved from /proc or `podman inspect`)
 * all end with the agents following a new nb_cfg and metadata served again.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMetadata, type MetadataSandboxPlan } from '../src/metadata/sandbox-plan.js';
import { sandboxPaths } from '../src/paths.js';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { startFakeNova, type FakeNova } from './helpers/fake-nova.js';
import {
  daemons,
  expectAgentsFollowNbCfg,
  expectSbOnlyThroughStunnel,
  expectSecretOnlyInItsFiles,
  expectWrongSecretRejected,
  filesContaining,
  sbctl,
  statusJson,
  treeRssKb,
  vmCurl,
  type Status,
} from './helpers/metadata-e2e.js';
import { ensureMetadataImage, podman, podmanInWorker, type MetadataImage } from './helpers/metadata-image.js';
import { daemonPid, isRestarted, killVerified } from './helpers/own-pids.js';
import { alive, cli, leftovers, requireBuiltCli, waitFor, type CliResult } from './sandbox-helpers.js';

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
  const agent1 = () => m.agents.find((a) => a.worker === 'worker1') ?? expect.fail('no worker1 agent in the plan');
  const agentOf = (worker: string) => m.agents.find((a) => a.worker === worker) ?? expect.fail(`no ${worker} agent`);
  const healthcheck = (worker: string) => podmanInWorker(agentOf(worker).netns, ['healthcheck', 'run', agentOf(worker).containerName], img.env);
  const startNova = async (secretFile: string): Promise<FakeNova> => {
    await nova?.stop();
    nova = await startFakeNova(sandboxNames(id).nodeNetns('w1'), m.nova.host, m.nova.port, secretFile);
    return nova;
  };
  /** The container as podman records it: its init's pid (on the host) and when it started. */
  const containerState = (name: string) => {
    const r = podman(['inspect', '--format', '{{.State.Pid}} {{.State.StartedAt}} {{.State.Running}}', name], img.env);
    expect(r.code, r.out).toBe(0);
    const [pid, ...rest] = r.out.split(' ');
    const running = rest.pop();
    return { pid: Number(pid), startedAt: rest.join(' '), running: running === 'true' };
  };
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
    await startNova(m.secretFile);
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
    const state = containerState(agent1().containerName);
    expect(state.pid).toBeGreaterThan(1);
    expect(alive(state.pid)).toBe(true);
    timings.agentContainerRssKb = treeRssKb(state.pid);
  });

  it("through TLS only: each containerised agent's SB remote is its worker's stunnel client, and so are all its TCP connections", () => {
    for (const a of m.agents) {
      const agent = daemonPid(daemons.agent(a));
      // The agent found is the container's process (in a pid namespace of its own), not a look-alike on the host.
      expect(readFileSync(`/proc/${agent.pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+\d+/m);
      expectSbOnlyThroughStunnel(a, agent);
    }
  });

  it('the Southbound restarted (killed): the agents reconnect (they follow a new nb_cfg), served again', async () => {
    const sbMatch = daemons.sb(dir, sandboxNames(id).nodeNetns('central'));
    const sb = daemonPid(sbMatch);
    killVerified(sb, sbMatch);
    await waitFor(() => !alive(sb.pid), 5000, 'SB dead');
    await waitHealthy('after SB restart');
    expect(isRestarted(sb, daemonPid(sbMatch))).toBe(true);
    timings.sbRestartNbCfg = await expectAgentsFollowNbCfg(dir, ['worker1', 'worker2']);
    await waitServed('after SB restart');
    expectSbOnlyThroughStunnel(agent1(), daemonPid(daemons.agent(agent1())));
  });

  it('ovn-controller exits (its chassis deleted): the agent re-registers and follows a new nb_cfg, served again', async () => {
    const ctlMatch = daemons.controller(dir, 'worker1', sandboxNames(id).nodeNetns('w1'));
    const ctl = daemonPid(ctlMatch);
    const exit = spawnSync('ovn-appctl', ['-t', sandboxPaths(dir).worker('worker1').controllerCtl(ctl.pid), 'exit'], { encoding: 'utf8' });
    expect(exit.status, exit.stderr).toBe(0);
    await waitHealthy('after ovn-controller restart');
    expect(isRestarted(ctl, daemonPid(ctlMatch))).toBe(true);
    await expectAgentsFollowNbCfg(dir, ['worker1', 'worker2']);
    await waitServed('after ovn-controller restart');
  });

  it('HEALTHCHECK is unhealthy while not registered; the container killed is restarted, re-registers and serves', async () => {
    const name = agent1().containerName;
    const rm = sbctl(dir, ['remove', 'Chassis_Private', 'worker1', 'external_ids', '"neutron:ovn-metadata-id"']);
    expect(rm.code, rm.out).toBe(0);
    const hc = healthcheck('worker1');
    expect(hc.code).not.toBe(0);
    expect(podmanInWorker(agentOf('worker1').netns, ['exec', name, '/usr/local/bin/ovn-deploy-healthcheck'], img.env).out).toMatch(/unhealthy: chassis worker1 not registered/);
    const lost = await statusJson(dir, img.env);
    expect(lost.json.metadataAgents?.find((a) => a.chassis === 'worker1')).toMatchObject({ runsAs: 'container', registered: false, healthy: false });
    const before = containerState(name);
    const agentBefore = daemonPid(daemons.agent(agent1()));
    expect(before).toMatchObject({ running: true });
    expect(before.pid).toBeGreaterThan(1);
    const t = Date.now();
    const kill = podman(['kill', name], img.env);
    expect(kill.code, kill.out).toBe(0);
    await waitHealthy('after the container was killed');
    // A new container run, as podman records it, and a new agent process in it.
    const after = containerState(name);
    expect(after.running).toBe(true);
    expect(after.pid).toBeGreaterThan(1);
    expect(after.pid).not.toBe(before.pid);
    expect(after.startedAt).not.toBe(before.startedAt);
    expect(isRestarted(agentBefore, daemonPid(daemons.agent(agent1())))).toBe(true);
    await expectAgentsFollowNbCfg(dir, ['worker1']);
    await waitServed('after the container was killed');
    timings.containerKillToServedMs = Date.now() - t;
  });

  it('a wrong shared secret: nova rejects the containerised agent\'s signature, the VM gets 403 and the agent log names the cause', async () => {
    await expectWrongSecretRejected(m, parent, startNova);
  });

  it('the shared secret is only in its own 0600 files: no log, config, command line, container config or `podman inspect` holds it', () => {
    const secret = readFileSync(m.secretFile, 'utf8').trim();
    expectSecretOnlyInItsFiles(dir, m, secret);
    for (const a of m.agents) {
      const inspect = podman(['inspect', a.containerName], img.env);
      expect(inspect.code, inspect.out).toBe(0);
      const [c] = JSON.parse(inspect.out) as { Args: string[]; Config: { Env: string[] }; StaticDir: string; LogPath: string }[];
      expect(c?.Config.Env.length).toBeGreaterThan(0);
      expect(c?.Args.length).toBeGreaterThan(0);
      expect(inspect.out.includes(secret), `podman inspect ${a.containerName}`).toBe(false);
      // The container's own files in podman's store: its OCI config (env, args) and its log.
      const staticDir = c?.StaticDir ?? expect.fail('no StaticDir');
      expect(readFileSync(path.join(staticDir, 'config.json'), 'utf8')).toContain(a.confDir);
      expect(filesContaining(staticDir, secret)).toEqual([]);
      if (c?.LogPath !== undefined && c.LogPath !== '' && existsSync(c.LogPath)) expect(readFileSync(c.LogPath, 'utf8').includes(secret), c.LogPath).toBe(false);
    }
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
