/**
 * The metadata agent as a podman container ON a test host (site-hosts.ts with `nestedPodman`):
 * podman installed offline from the image's .debs, the agent image (metadata-image.ts) copied in
 * with `podman save | podman load`, and the agent started with the argv the product renders for a
 * host (metadataAgentCommand with hostPaths('/')), the way each manager runs it: the own
 * supervisor through PODMAN_LAUNCHER (plain hosts), a Type=simple unit (systemd hosts). For test
 * assertions: everything goes through `podman exec` of the site.
 *
 * The agent needs the host's Open vSwitch database and a Southbound: agentStage() gives it a
 * bare ovsdb-server of the first on the worker (no vswitchd, no ovn-controller) and of the second
 * on a central (over the management network), with a hand-made Chassis and Chassis_Private for the
 * worker's system-id, so the agent registers and the image's healthcheck can pass without a
 * deployment.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { metadataConfigFiles } from '../../src/metadata/render.js';
import { ownSupervisorCommand } from '../../src/metadata/agent-command.js';
import { hostPaths, hostRenderedPaths } from '../../src/paths.js';
import { DEFAULT_METADATA_CONTAINER, metadataAgentCommand } from '../../src/render/metadata-runtime.js';
import type { ExecResult, TestSite } from './site-hosts.js';

const shQ = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const secs = (t0: number): number => Math.round((Date.now() - t0) / 100) / 10;

async function must(site: TestSite, host: string, script: string, timeoutMs = 120_000): Promise<ExecResult> {
  const r = await site.exec(host, ['sh', '-ec', script], { timeoutMs });
  if (r.code !== 0) throw new Error(`${host}: ${script.slice(0, 200)}\nfailed (${r.code}): ${r.stdout.slice(-1500)}${r.stderr.slice(-1500)}`);
  return r;
}

/** `apt-get install -y PACKAGES` on the host (offline: from the image's .debs); seconds taken. */
export async function installOffline(site: TestSite, host: string, packages: string[], opts: { recommends?: boolean } = {}): Promise<number> {
  const t0 = Date.now();
  await must(
    site,
    host,
    `DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q ${opts.recommends === false ? '--no-install-recommends ' : ''}${packages.join(' ')}`,
    600_000,
  );
  return secs(t0);
}

export interface ImageCopy {
  saveSec: number;
  loadSec: number;
  bytes: number;
}

/**
 * `podman save` of `image` from the store of `env` into a file of the site's directory (removed
 * with the site), then `podman load` of it on the host through `podman exec -i`.
 */
export async function copyImageInto(site: TestSite, host: string, image: string, env: Record<string, string>): Promise<ImageCopy> {
  const archive = path.join(site.dir, 'agent-image.tar');
  let t0 = Date.now();
  await pipe(['podman', 'save', '--format', 'docker-archive', '-o', archive, image], env);
  const saveSec = secs(t0);
  const bytes = (await stat(archive)).size;
  t0 = Date.now();
  await pipe(['podman', 'exec', '-i', site.host(host).container, 'podman', 'load', '-q'], site.podmanEnv, archive);
  return { saveSec, loadSec: secs(t0), bytes };
}

function pipe(argv: string[], env: Record<string, string>, stdinFile?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0] ?? '', argv.slice(1), { env: { ...process.env, ...env }, stdio: [stdinFile === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    if (stdinFile !== undefined && p.stdin !== null) createReadStream(stdinFile).pipe(p.stdin);
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} failed (${String(code)}): ${out.slice(-2000)}`))));
  });
}

/** The argv the product renders for a host's agent container (hostPaths('/')). */
export function renderedAgentArgv(image: string): string[] {
  return metadataAgentCommand({ kind: 'container', image }, hostPaths('/'), hostRenderedPaths('/')).argv;
}

export const STAGE_CHASSIS = 'nested-podman-chassis';
const SB_PORT = 6642;

/**
 * What the agent needs around it on the host: its config (the rendered file names in the rendered
 * conf dir), state and log dirs, the OVS run dir and the ovsdb socket dir it binds; a bare local
 * Open vSwitch database (system-id STAGE_CHASSIS), and a Southbound on `central` (its management
 * address) holding that chassis. Needs openvswitch-switch and ovn-common installed on the worker,
 * ovn-central on the central. /run/netns is not made here: the agent's launcher (and its
 * systemd unit) make it a shared mount point, as a fresh host needs.
 */
const sbRemote = (site: TestSite): string => {
  const c = site.hosts.find((h) => h.role === 'central');
  if (c === undefined) throw new Error('nested-podman: the site has no central for the Southbound');
  return `tcp:${c.mgmtIp}:${SB_PORT}`;
};

export async function agentStage(site: TestSite, host: string): Promise<void> {
  const sb = sbRemote(site);
  const central = site.hosts.find((h) => h.role === 'central');
  const stage = '/var/lib/nested-podman-stage';
  await must(
    site,
    central?.name ?? '',
    [
      `mkdir -p ${stage} && cd ${stage} && rm -f sb.db`,
      'ovsdb-tool create sb.db /usr/share/ovn/ovn-sb.ovsschema',
      `ovsdb-server sb.db --remote=ptcp:${SB_PORT}:${central?.mgmtIp ?? ''} --pidfile=$PWD/sb.pid --unixctl=$PWD/sb.ctl --log-file=$PWD/sb.log --detach`,
      `sb="ovn-sbctl --db=${sb}"`,
      `$sb chassis-add ${STAGE_CHASSIS} geneve 127.0.0.1`,
      `$sb create Chassis_Private name=${STAGE_CHASSIS} chassis=$($sb --bare --columns _uuid find Chassis name=${STAGE_CHASSIS})`,
    ].join('\n'),
  );
  const hp = hostPaths('/');
  const m = hostRenderedPaths('/').metadata;
  const [neutronConf, agentIni, secretIni] = metadataConfigFiles(m.confDir);
  const files: [string | undefined, string][] = [
    [neutronConf, `[DEFAULT]\nstate_path = ${m.statePath}\n[agent]\nroot_helper = sudo\n[oslo_concurrency]\nlock_path = ${m.lockPath}\n`],
    [
      agentIni,
      `[DEFAULT]\nnova_metadata_host = 127.0.0.1\nnova_metadata_port = 8775\nmetadata_workers = 1\n[ovs]\novsdb_connection = unix:${hp.ovs.dbSock}\n[ovn]\novn_sb_connection = ${sb}\n`,
    ],
    [secretIni, '[DEFAULT]\nmetadata_proxy_shared_secret = nested-podman-test\n'],
  ];
  const writes = files.map(([f, c]) => `printf '%s' ${shQ(c)} > ${shQ(f ?? '')}`).join('\n');
  await must(
    site,
    host,
    [
      `mkdir -p ${[hp.ovs.runDir, hp.ovsdbDir, m.confDir, m.statePath, m.lockPath, m.logDir, stage].map(shQ).join(' ')}`,
      writes,
      `cd ${stage} && rm -f conf.db`,
      'ovsdb-tool create conf.db /usr/share/openvswitch/vswitch.ovsschema',
      `ovsdb-server conf.db --remote=punix:${hp.ovs.dbSock} --pidfile=$PWD/ovs.pid --unixctl=$PWD/ovs.ctl --log-file=$PWD/ovs.log --detach`,
      `ovs-vsctl --db=unix:${hp.ovs.dbSock} --no-wait init`,
      `ovs-vsctl --db=unix:${hp.ovs.dbSock} --no-wait set Open_vSwitch . external_ids:system-id=${STAGE_CHASSIS}`,
    ].join('\n'),
  );
}

/** The agent's registration as the healthcheck reads it (empty until it registered). */
export async function agentRegistration(site: TestSite, host: string): Promise<string> {
  const r = await site.exec(host, ['ovn-sbctl', `--db=${sbRemote(site)}`, 'get', 'Chassis_Private', STAGE_CHASSIS, 'external_ids:"neutron:ovn-metadata-id"']);
  return r.code === 0 ? r.stdout.trim().replace(/"/g, '') : '';
}

/**
 * Starts the rendered argv as the host's manager would: `supervisor` = the own supervisor's
 * command (PODMAN_LAUNCHER under sh, detached, output to LOG); `systemd` = a transient
 * Type=simple unit UNIT restarting on failure like the rendered one.
 */
export const AGENT_RUN_LOG = '/var/log/nested-podman-agent.log';
/** supervisor: the pid of the launcher (the own supervisor's child), to signal it as it would. */
export const AGENT_LAUNCHER_PID = '/run/nested-podman-agent.pid';
export const AGENT_UNIT = 'nested-podman-agent.service';

export async function startAgent(site: TestSite, host: string, argv: string[], manager: 'supervisor' | 'systemd'): Promise<void> {
  if (manager === 'supervisor') {
    const cmd = ownSupervisorCommand(argv, {});
    const line = cmd.argv.map(shQ).join(' ');
    await must(site, host, `setsid sh -c ${shQ(`exec ${line} >>${AGENT_RUN_LOG} 2>&1`)} </dev/null >/dev/null 2>&1 & echo $! > ${AGENT_LAUNCHER_PID}`);
  } else {
    await must(
      site,
      host,
      `systemd-run --unit=${AGENT_UNIT} -p Type=simple -p Restart=on-failure -p RestartSec=1 -p TimeoutStopSec=30 ${argv.map(shQ).join(' ')}`,
    );
  }
}

export interface ContainerState {
  running: boolean;
  pid: number;
  startedAt: string;
  health: string;
}

export async function containerState(site: TestSite, host: string, name = DEFAULT_METADATA_CONTAINER): Promise<ContainerState | undefined> {
  const r = await site.exec(host, ['podman', 'inspect', '--format', '{{.State.Running}} {{.State.Pid}} {{.State.StartedAt}}|{{.State.Health.Status}}', name]);
  if (r.code !== 0) return undefined;
  const [head = '', health = ''] = r.stdout.trim().split('|');
  const [running, pid, ...started] = head.split(' ');
  return { running: running === 'true', pid: Number(pid), startedAt: started.join(' '), health };
}

/** Polls until `pred` holds; returns seconds taken, throws after timeoutMs. */
export async function until<T>(what: string, f: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 60_000): Promise<{ sec: number; value: T }> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (pred(v)) return { sec: secs(t0), value: v };
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not after ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Sum of VmRSS (MiB) of the container's processes, read on the host from /proc: `podman stats`
 * fails on the plain hosts (cgroupfs in a container: "unable to load cgroup ... cgroup deleted").
 */
export async function containerRssMb(site: TestSite, host: string, name = DEFAULT_METADATA_CONTAINER): Promise<number> {
  const r = await must(
    site,
    host,
    `id=$(podman inspect --format '{{.Id}}' ${shQ(name)}); for p in $(grep -l "$id" /proc/[0-9]*/cgroup | cut -d/ -f3); do sed -n 's/^VmRSS:[[:space:]]*\\([0-9]*\\).*/\\1/p' /proc/$p/status; done`,
  );
  return Math.round(r.stdout.split('\n').reduce((a, l) => a + (Number(l) || 0), 0) / 1024);
}
