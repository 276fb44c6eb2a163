/**
 * End to end through the built CLI: `up --metadata-agent` runs neutron-ovn-metadata-agent on both
 * workers as supervised processes (after ovn-controller), they register in the Southbound through
 * the workers' stunnel clients, and a VM on the Neutron-shaped demo network gets HTTP 200 for
 * meta_data.json from a fake Nova that checks the HMAC signature of the shared secret. Then the
 * restart cases (SB, ovn-controller, the agent killed), each proved by a new pid read from /proc
 * and ended by the agent following a new nb_cfg (it is connected now, not just registered
 * earlier), a lost registration seen by `status`, a wrong secret, where the secret may appear,
 * and `down`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMetadata, type MetadataSandboxPlan } from '../src/metadata/sandbox-plan.js';
import { sandboxPaths } from '../src/paths.js';
import { sandboxId, sandboxNames } from '../src/sandbox/naming.js';
import { startFakeNova, type FakeNova } from './helpers/fake-nova.js';
import { daemons, expectAgentsFollowNbCfg, expectSbOnlyThroughStunnel, expectSecretOnlyInItsFiles, expectWrongSecretRejected, sbctl, statusJson, treeRssKb, vmCurl, type Status } from './helpers/metadata-e2e.js';
import { daemonPid, isRestarted, killVerified } from './helpers/own-pids.js';
import { alive, cli, cliOk, inNetns, leftovers, requireBuiltCli, waitFor } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
const noAgent = spawnSync('sh', ['-c', 'command -v neutron-ovn-metadata-agent && command -v haproxy && command -v curl']).status !== 0;
if (notRoot) console.warn('metadata.slow.test.ts: skipped, needs root (network namespaces, daemons)');
else if (noAgent) console.warn('metadata.slow.test.ts: skipped, neutron-ovn-metadata-agent, haproxy or curl missing (scripts/install-deps.sh metadata)');

describe.skipIf(notRoot || noAgent)('up --metadata-agent: Neutron OVN metadata agent in the sandbox (supervised process)', () => {
  let parent: string;
  let dir: string;
  let id: string;
  let m: MetadataSandboxPlan;
  let nova: FakeNova | undefined;
  let secret: string;
  const timings: Record<string, number> = {};

  const worker1Ns = () => sandboxNames(id).nodeNetns('w1');
  const agent1 = () => m.agents.find((a) => a.worker === 'worker1') ?? expect.fail('no worker1 agent in the plan');
  const startNova = async (secretFile: string): Promise<FakeNova> => {
    await nova?.stop();
    nova = await startFakeNova(worker1Ns(), m.nova.host, m.nova.port, secretFile);
    return nova;
  };
  const waitServed = async (what: string, timeoutMs = 90_000) => {
    await waitFor(() => vmCurl(m) === '200', timeoutMs, `metadata served again (${what})`);
  };
  const waitHealthy = async (what: string, timeoutMs = 90_000) => {
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = (await statusJson(dir)).json;
        return last.healthy;
      },
      timeoutMs,
      `status healthy (${what}); last problems: ${JSON.stringify(last?.problems)}`,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; problems: ${JSON.stringify(last?.problems)}`);
    });
  };

  beforeAll(async () => {
    requireBuiltCli();
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'od-md-'));
    dir = path.join(parent, 'sandbox');
    id = sandboxId(dir);
    m = planMetadata({ id, stateDir: dir, paths: sandboxPaths(dir), names: sandboxNames(id), workers: [1, 2].map((i) => ({ name: `worker${i}`, netns: sandboxNames(id).nodeNetns(`w${i}`) })) });
  });

  afterAll(async () => {
    await nova?.stop();
    await cli(['down', '--dir', dir]);
    await fs.rm(parent, { recursive: true, force: true });
    console.log(`metadata.slow timings (ms) and sizes: ${JSON.stringify(timings)}`);
  });

  it('up --metadata-agent: agents after ovn-controller, registered through stunnel; the VM gets 200 from an HMAC-checking nova', async () => {
    const started = Date.now();
    const r = await cliOk(['up', '--metadata-agent', '--dir', dir, '--workers', '2']);
    timings.up = r.ms;
    expect(r.stdout).toMatch(/sandbox [0-9a-f]{4} up in/);
    secret = readFileSync(m.secretFile, 'utf8').trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(m.secretFile).mode & 0o777).toBe(0o600);
    await startNova(m.secretFile);
    await waitServed('first reply', 30_000);
    timings.upToFirstMetadataReply = Date.now() - started;
    // The server's request log arrives through a pipe: possibly just after curl's answer.
    await waitFor(() => nova?.requests().some((q) => q.status === 200) === true, 5000, "fake nova's request log");
    const served = nova?.requests().find((q) => q.status === 200);
    expect(served).toMatchObject({ path: '/openstack/latest/meta_data.json', instanceId: m.vm.deviceId, projectId: m.vm.projectId, forwardedFor: m.vm.ip });
    const body = inNetns(m.vm.netns, ['curl', '-s', '-m', '5', m.url]).out;
    expect(JSON.parse(body)).toMatchObject({ uuid: m.vm.deviceId, project_id: m.vm.projectId });

    // Each agent started after its worker's ovn-controller (the start order of the worker's own supervisor).
    for (const a of m.agents) {
      const log = readFileSync(a.supervisorLog, 'utf8').split('\n');
      const ctl = log.findIndex((l) => l.includes('ovn-controller: started'));
      const agent = log.findIndex((l) => l.includes('ovn-metadata-agent: started'));
      expect(ctl, a.worker).toBeGreaterThanOrEqual(0);
      expect(agent, a.worker).toBeGreaterThan(ctl);
    }
    // Registered in the SB.
    for (const w of ['worker1', 'worker2']) {
      const reg = sbctl(dir, ['get', 'Chassis_Private', w, 'external_ids:"neutron:ovn-metadata-id"']);
      expect(reg.code, reg.out).toBe(0);
      expect(reg.out).toMatch(/^"?[0-9a-f-]{36}"?$/);
    }
    // Through TLS only: the agent's SB remote is the worker's stunnel client, and every TCP
    // connection of the agent goes to it (nothing to the central's plaintext loopback port).
    const ini = readFileSync(path.join(agent1().confDir, 'neutron_ovn_metadata_agent.ini'), 'utf8');
    // The worker's stunnel client: plaintext only on a unix socket of the worker's root-only socket directory.
    expect(ini).toMatch(new RegExp(`^ovn_sb_connection = unix:${dir}/hosts/worker1/var/run/ovn-deploy/ovsdb/central\\.sb$`, 'm'));
    const agent = daemonPid(daemons.agent(agent1()));
    expect((await statusJson(dir)).json.metadataAgents?.find((a) => a.chassis === 'worker1')?.pid).toBe(agent.pid);
    expectSbOnlyThroughStunnel(agent1(), agent);
    timings.agentRssKb = treeRssKb(agent.pid);
  });

  it('status --json: per chassis, its metadata agent runs as a process, registered and healthy', async () => {
    const { code, json } = await statusJson(dir);
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(json.metadataAgents?.map((a) => [a.chassis, a.runsAs, a.running, a.registered, a.healthy])).toEqual([
      ['worker1', 'process', true, true, true],
      ['worker2', 'process', true, true, true],
    ]);
    const table = await cliOk(['status', '--dir', dir]);
    expect(table.stdout).toMatch(/METADATA AGENT\s+HOST\s+RUNS AS/);
    expect(table.stdout).toMatch(/worker1\s+worker1\s+process\s+yes\s+ok: registered as/);
  });

  it('the Southbound restarted (killed): the agents reconnect through stunnel (they follow a new nb_cfg) and metadata is served again', async () => {
    const sbMatch = daemons.sb(dir, sandboxNames(id).nodeNetns('central'));
    const sb = daemonPid(sbMatch);
    const t = Date.now();
    killVerified(sb, sbMatch);
    await waitFor(() => !alive(sb.pid), 5000, 'SB dead');
    await waitHealthy('after SB restart');
    expect(isRestarted(sb, daemonPid(sbMatch))).toBe(true);
    // New traffic after the restart: the registration lives on in the SB file, a new nb_cfg
    // reaches an agent only over a live connection, and only a live one writes it back.
    timings.sbRestartNbCfg = await expectAgentsFollowNbCfg(dir, ['worker1', 'worker2']);
    await waitServed('after SB restart');
    expectSbOnlyThroughStunnel(agent1(), daemonPid(daemons.agent(agent1())));
    timings.sbRestartToServed = Date.now() - t;
  });

  it('ovn-controller exits (deleting its chassis): the agent re-registers on the new Chassis_Private and serves again', async () => {
    const ctlMatch = daemons.controller(dir, 'worker1', worker1Ns());
    const ctl = daemonPid(ctlMatch);
    const before = sbctl(dir, ['get', 'Chassis_Private', 'worker1', '_uuid']).out;
    expect(before).toMatch(/^[0-9a-f-]{36}$/);
    const t = Date.now();
    // A clean exit removes the chassis and its Chassis_Private row (and the registration in it).
    const exit = spawnSync('ovn-appctl', ['-t', sandboxPaths(dir).worker('worker1').controllerCtl(ctl.pid), 'exit'], { encoding: 'utf8' });
    expect(exit.status, exit.stderr).toBe(0);
    await waitFor(() => sbctl(dir, ['get', 'Chassis_Private', 'worker1', '_uuid']).out !== before, 30_000, 'a new Chassis_Private row');
    await waitFor(() => sbctl(dir, ['get', 'Chassis_Private', 'worker1', 'external_ids:"neutron:ovn-metadata-id"']).code === 0, 60_000, 'the agent registered again');
    await waitHealthy('after ovn-controller restart');
    expect(isRestarted(ctl, daemonPid(ctlMatch))).toBe(true);
    await expectAgentsFollowNbCfg(dir, ['worker1', 'worker2']);
    await waitServed('after ovn-controller restart');
    timings.controllerRestartToServed = Date.now() - t;
  });

  it('a lost registration makes status unhealthy; the agent killed -9 is restarted, re-registers and serves again', async () => {
    const rm = sbctl(dir, ['remove', 'Chassis_Private', 'worker1', 'external_ids', '"neutron:ovn-metadata-id"']);
    expect(rm.code, rm.out).toBe(0);
    const lost = await statusJson(dir);
    expect(lost.code).toBe(1);
    const a1 = lost.json.metadataAgents?.find((a) => a.chassis === 'worker1');
    expect(a1).toMatchObject({ running: true, registered: false, healthy: false });
    // Its host's problem: the agent runs, but the check of its registration fails.
    expect(lost.json.problems.join('\n')).toMatch(/worker1: ovn-metadata-agent: metadata-registered worker1: /);
    const agentMatch = daemons.agent(agent1());
    const agent = daemonPid(agentMatch);
    expect(a1?.pid).toBe(agent.pid);
    const t = Date.now();
    killVerified(agent, agentMatch);
    await waitHealthy('after the agent was killed');
    expect(isRestarted(agent, daemonPid(agentMatch))).toBe(true);
    await expectAgentsFollowNbCfg(dir, ['worker1']);
    await waitServed('after the agent was killed');
    timings.agentKillToServed = Date.now() - t;
  });

  it('a wrong shared secret: nova rejects the signature, the VM gets 403 and the agent log names the cause', async () => {
    await expectWrongSecretRejected(m, parent, startNova);
  });

  it('the shared secret appears only in its own 0600 files: no log, rendered file or command line holds it', () => {
    expectSecretOnlyInItsFiles(dir, m, secret);
    for (const a of m.agents) {
      expect(readFileSync(path.join(a.confDir, 'neutron_ovn_metadata_agent.ini'), 'utf8')).toContain('# generated by ovn-deploy');
      expect(readFileSync(path.join(a.confDir, 'neutron.conf'), 'utf8')).toContain('# generated by ovn-deploy');
    }
  });

  it('up --no-metadata-agent: agents, their haproxy, ovnmeta-<uuid>, the VM and the demo network go; the rest stays healthy', async () => {
    await nova?.stop();
    nova = undefined;
    const r = await cliOk(['up', '--no-metadata-agent', '--dir', dir, '--workers', '2']);
    expect(r.stdout).not.toContain('metadata agents on');
    const haproxies = spawnSync('pgrep', ['-f', `^haproxy -f ${dir}/`], { encoding: 'utf8' }).stdout.trim();
    expect(haproxies).toBe('');
    expect(spawnSync('pgrep', ['-f', `neutron-ovn-metadata-agent --config-file ${dir}/`], { encoding: 'utf8' }).stdout.trim()).toBe('');
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(ns).not.toContain(m.ovnmetaNetns);
    expect(ns).not.toContain(m.vm.netns);
    const nb = spawnSync('ovn-nbctl', [`--db=unix:${sandboxPaths(dir).central.nbSock}`, 'ls-list'], { encoding: 'utf8' }).stdout;
    expect(nb).not.toContain(m.switchName);
    const { code, json } = await statusJson(dir);
    expect(json.problems).toEqual([]);
    expect(code).toBe(0);
    expect(json.metadataAgents).toBeUndefined();
  });

  it('down: removes ovnmeta-<uuid>, haproxy, the agents and everything else of the sandbox', async () => {
    const d = await cliOk(['down', '--dir', dir]);
    expect(d.stdout).toMatch(/down in/);
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(ns).not.toContain(m.ovnmetaNetns);
    expect(leftovers(id, dir)).toEqual({ namespaces: [], links: [], processes: [], unixListeners: [] });
    expect(existsSync(dir)).toBe(false);
  });
});
