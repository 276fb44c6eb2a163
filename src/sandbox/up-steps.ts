/**
 * The steps of `up` and what each depends on. Every step is idempotent: it checks what exists
 * and makes only what is missing, so the same list creates, re-asserts and repairs a sandbox.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { applyFiles } from '../fsx.js';
import { metadataSteps } from '../metadata/sandbox-steps.js';
import { ensurePackages, sandboxRequirements } from '../packages.js';
import { renderHostStunnel } from '../stunnel/index.js';
import type { ServiceSpec } from '../supervisor/types.js';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { OvsdbTool } from '../tools/ovs.js';
import { reloadServiceConfirmed } from '../tools/stunnel.js';
import type { Step } from '../ui/dag.js';
import { ensureSandboxPki, stunnelTls } from './certs.js';
import { ensureNamespaces, ensureUnderlay } from './network.js';
import { ensurePhase } from './phases.js';
import { waitForControllerConnected, waitForDatabase, waitForSocket } from './ready.js';
import { allServices, databaseFiles, databaseSockets, runningByPidFile, runtimeDirs, serviceName, type SandboxServices } from './services.js';
import { acquireLock, mkdirpTracked, writeState } from './state.js';
import { applyTopology, topologyArgs, waitPortsUp } from './topology.js';
import { formatTracePath, traceMicroflow } from './trace.js';
import type { UpContext, UpOptions } from './up-context.js';
import { pingVm, traceVm, vmByName } from './verify.js';
import { bindVm, configureUnderlayIp, configureWorkerDb, ensureVmPorts, seedTunnelNeighbours, waitVswitchdReady } from './worker.js';

const SOCKET_TIMEOUT_MS = 15_000;
const VSWITCHD_TIMEOUT_SEC = 15;
const SB_PATH_TIMEOUT_MS = 20_000;
/** ovn-controller reconnects with a backoff of up to 8 s after the SB restarted. */
const CONTROLLER_CONNECT_TIMEOUT_MS = 30_000;

export function upSteps(opts: UpOptions): Step<UpContext>[] {
  return [
    {
      id: 'packages',
      title: 'Check system packages',
      run: async (ctx, task) => {
        if (!opts.installPackages) return 'System packages: not checked (--no-install)';
        const r = await ensurePackages(ctx.runner, { dryRun: ctx.dryRun, say: (l) => (task.output = l), requirements: sandboxRequirements(ctx.plan.metadata !== undefined) });
        return r.installed.length === 0 ? 'System packages present' : `Installed ${r.installed.join(' ')}`;
      },
    },
    {
      id: 'prepare',
      title: 'Prepare the state directory',
      deps: ['packages'],
      run: async (ctx) => prepare(ctx),
    },
    {
      id: 'pki',
      title: 'Certificates (CA, central, workers)',
      deps: ['prepare'],
      run: async (ctx) => {
        if (ctx.dryRun) return 'Certificates: would create the CA and issue missing certificates';
        ctx.pki = await ensureSandboxPki(ctx.plan, ctx.inv);
        for (const name of ctx.pki.issued) ctx.stunnelChanged.add(name === ctx.plan.central.name ? serviceName.centralStunnel : serviceName.workerStunnel(name));
        if (ctx.pki.crlRefreshed) for (const s of stunnelServices(ctx.services)) ctx.stunnelChanged.add(s.name);
        ctx.tlsFilesReady.pki = true;
        const { issued, reused } = ctx.pki;
        return `Certificates: ${issued.length} issued${reused.length > 0 ? `, ${reused.length} reused` : ''}${ctx.pki.caCreated ? ' (new CA)' : ''}`;
      },
    },
    {
      id: 'stunnel',
      title: 'Render stunnel configs',
      deps: ['prepare'],
      run: async (ctx) => {
        const title = await renderStunnel(ctx);
        ctx.tlsFilesReady.configs = true;
        return title;
      },
    },
    {
      id: 'namespaces',
      title: 'Network namespaces',
      deps: ['prepare'],
      run: async (ctx) => {
        const { created, existing } = await ensureNamespaces(ctx.runner, ctx.plan, async (names) => {
          ctx.state.namespaces = [...new Set([...ctx.state.namespaces, ...names])];
          if (!ctx.dryRun) await writeState(ctx.plan.paths, ctx.state);
        });
        ctx.namespacesBefore = existing;
        return `Network namespaces: ${created.length} ${ctx.dryRun ? 'to create' : 'created'}, ${ctx.plan.namespaces.length - created.length} present`;
      },
    },
    {
      id: 'underlay',
      title: 'Underlay bridge and veths',
      deps: ['namespaces'],
      run: async (ctx) => {
        await ensureUnderlay(ctx.runner, ctx.plan);
        return `Underlay ${ctx.plan.subnet} on ${ctx.plan.underlay.bridge} (MTU ${ctx.plan.underlay.mtu})`;
      },
    },
    {
      id: 'dbfiles',
      title: 'Database files',
      deps: ['prepare'],
      run: async (ctx) => {
        const tool = new OvsdbTool(ctx.runner);
        const created = await Promise.all(databaseFiles(ctx.plan).map((f) => tool.createIfMissing(f.db, f.schema)));
        return `Database files: ${created.filter(Boolean).length} ${ctx.dryRun ? 'to create' : 'created'}, ${created.filter((c) => !c).length} present`;
      },
    },
    {
      id: 'databases',
      title: 'Start NB, SB and Open_vSwitch databases',
      deps: ['dbfiles', 'namespaces'],
      run: async (ctx) => {
        await ensurePhase(ctx, ctx.services.databases);
        if (!ctx.dryRun) {
          const logs = ctx.services.databases.map((s) => s.logFile);
          await Promise.all(databaseSockets(ctx.plan).map((sock, i) => waitForSocket(sock, SOCKET_TIMEOUT_MS, logs[i])));
        }
      },
    },
    {
      id: 'central-init',
      title: 'Initialise the SB',
      deps: ['databases'],
      run: async (ctx) => {
        // The NB's `init` rides along with the topology transaction.
        await sbctl(ctx).init();
      },
    },
    {
      id: 'topology',
      title: 'Logical topology: network1, network2, router1',
      deps: ['central-init'],
      run: async (ctx) => {
        if (ctx.dryRun) {
          await nbctl(ctx).run(topologyArgs(ctx.plan));
          return;
        }
        await applyTopology(nbctl(ctx), ctx.plan);
        return `Logical topology: network1, network2, router1, ${ctx.plan.vms.map((v) => v.name).join(', ')}`;
      },
    },
    {
      id: 'worker-db',
      title: 'Configure the workers (chassis, encap, bridges)',
      deps: ['databases', 'underlay'],
      run: async (ctx) => {
        await Promise.all(ctx.plan.workers.map((w) => configureWorkerDb(ctx.runner, ctx.plan, w, ctx.inv.ports.sb)));
      },
    },
    {
      id: 'switching',
      title: 'Start ovn-northd and ovs-vswitchd',
      deps: ['central-init', 'worker-db'],
      run: async (ctx) => {
        // Certificates usually arrive about now: then stunnel starts in the same round trip.
        const tlsToo = ctx.tlsFilesReady.pki && ctx.tlsFilesReady.configs;
        await ensurePhase(ctx, [...ctx.services.databases, ...ctx.services.switching, ...(tlsToo ? ctx.services.tls : [])]);
      },
    },
    {
      id: 'tls',
      title: 'Start stunnel (server on the central, clients on the workers)',
      deps: ['switching', 'pki', 'stunnel', 'underlay'],
      run: async (ctx) => {
        await ensurePhase(ctx, [...ctx.services.databases, ...ctx.services.switching, ...ctx.services.tls]);
        // A stunnel that was already running keeps its old certificates/config until reloaded.
        for (const spec of stunnelServices(ctx.services)) {
          if (!ctx.stunnelChanged.has(spec.name) || !ctx.runningBefore.has(spec.name) || ctx.dryRun) continue;
          await reloadServiceConfirmed(spec.argv, () => ctx.supervisor.signal(spec.name, 'SIGHUP'), (conf) => fs.readFile(conf, 'utf8'));
        }
      },
    },
    {
      id: 'worker-net',
      title: 'Worker underlay addresses and tunnel neighbours',
      deps: ['switching'],
      run: async (ctx) => {
        await Promise.all(
          ctx.plan.workers.map(async (w) => {
            if (!ctx.dryRun) await waitVswitchdReady(ctx.runner, ctx.plan, w, VSWITCHD_TIMEOUT_SEC);
            await configureUnderlayIp(ctx.runner, ctx.plan, w);
            await seedTunnelNeighbours(ctx.runner, ctx.plan, w);
          }),
        );
      },
    },
    {
      id: 'vms',
      title: 'Bind the VMs',
      deps: ['worker-net'],
      run: async (ctx) => {
        await Promise.all(ctx.plan.workers.map((w) => ensureVmPorts(ctx.runner, ctx.plan, w)));
        const outcomes = await Promise.all(ctx.plan.vms.map((vm) => bindVm(ctx.runner, ctx.plan, vm, ctx.dryRun)));
        const moved = ctx.plan.vms.filter((_, i) => outcomes[i] === 'moved').map((v) => v.name);
        return `VMs bound: ${ctx.plan.vms.map((v) => `${v.name}@${v.worker}`).join(', ')}${moved.length > 0 ? ` (tap moved: ${moved.join(', ')})` : ''}`;
      },
    },
    {
      id: 'sb-path',
      title: 'Southbound reachable through stunnel (TLS)',
      deps: ['worker-net', 'tls'],
      run: async (ctx) => {
        if (ctx.dryRun) return;
        await Promise.all(
          ctx.plan.workers.map((w) =>
            waitForDatabase(ctx.runner, `tcp:127.0.0.1:${ctx.inv.ports.sb}`, 'OVN_Southbound', {
              netns: w.netns,
              timeoutMs: SB_PATH_TIMEOUT_MS,
              logFiles: [path.join(ctx.plan.paths.node(w.name).log, 'stunnel-client.log'), path.join(ctx.plan.paths.node('central').log, 'stunnel-server.log')],
            }),
          ),
        );
      },
    },
    {
      id: 'controllers',
      title: 'Start ovn-controller on every worker',
      deps: ['sb-path', 'worker-net', 'metadata-config'],
      run: async (ctx) => {
        await ensurePhase(ctx, allServices(ctx.services));
      },
    },
    {
      id: 'controllers-connected',
      title: 'ovn-controllers connected to the SB',
      deps: ['controllers'],
      run: async (ctx) => {
        if (ctx.dryRun) return;
        await Promise.all(
          ctx.plan.workers.map((w) => {
            const wp = ctx.plan.paths.worker(w.name);
            return waitForControllerConnected(ctx.runner, { pidFile: wp.controllerPid, ctl: wp.controllerCtl, logFile: wp.controllerLog }, CONTROLLER_CONNECT_TIMEOUT_MS);
          }),
        );
      },
    },
    {
      id: 'leftovers',
      title: 'Remove what a previous larger sandbox left',
      deps: ['controllers', 'topology'],
      run: async (ctx) => removeLeftovers(ctx),
    },
    {
      id: 'ports-up',
      title: 'Wait for the VM ports to come up',
      deps: ['controllers', 'vms', 'topology'],
      run: async (ctx) => {
        if (ctx.dryRun) return;
        await waitPortsUp(nbctl(ctx), ctx.plan.vms, opts.portsUpTimeoutSec ?? 30);
        return `Ports up: ${ctx.plan.vms.map((v) => v.name).join(', ')}`;
      },
    },
    {
      id: 'ping',
      title: 'Ping across the router and the tunnel',
      deps: ['ports-up', 'controllers-connected'],
      run: async (ctx) => {
        if (ctx.dryRun) {
          for (const c of ctx.plan.checks) ctx.opts.print(`would ping ${c.from} -> ${c.to} (ip netns exec ${vmByName(ctx.plan, c.from).netns} ping ${vmByName(ctx.plan, c.to).ip})`);
          return;
        }
        ctx.pings = await Promise.all(ctx.plan.checks.map((c) => pingVm(ctx.runner, vmByName(ctx.plan, c.from), vmByName(ctx.plan, c.to))));
        return `Ping ${ctx.pings.map((p) => `${p.from} -> ${p.to} ${p.received}/${p.transmitted}`).join(', ')}`;
      },
    },
    {
      id: 'trace',
      title: 'ovn-trace the same flows',
      deps: ['ports-up'],
      run: async (ctx) => {
        if (ctx.dryRun) {
          for (const c of ctx.plan.checks) ctx.opts.print(`would run: ovn-trace --summary ${vmByName(ctx.plan, c.from).network} '${traceMicroflow(ctx.plan, vmByName(ctx.plan, c.from), vmByName(ctx.plan, c.to))}'`);
          return;
        }
        ctx.traces = await Promise.all(ctx.plan.checks.map((c) => traceVm(ctx.runner, ctx.plan, vmByName(ctx.plan, c.from), vmByName(ctx.plan, c.to))));
        return `ovn-trace ${ctx.traces.map((t) => formatTracePath(t.path)).join('; ')}`;
      },
    },
    {
      id: 'done',
      title: 'Record the sandbox',
      deps: ['ping', 'trace', 'leftovers', 'metadata-ready'],
      run: async (ctx) => {
        if (ctx.dryRun) return;
        ctx.state.phase = 'up';
        ctx.state.workers = ctx.plan.workers.length;
        ctx.state.vms = ctx.plan.vms.map((v) => v.name);
        ctx.state.datapath = ctx.plan.datapath;
        ctx.state.supervisor = ctx.supervisor.kind;
        await writeState(ctx.plan.paths, ctx.state);
      },
    },
    ...metadataSteps(),
  ];
}

async function prepare(ctx: UpContext): Promise<string> {
  const { plan } = ctx;
  if (ctx.dryRun) {
    ctx.opts.print(`would create ${plan.stateDir} and write ${plan.paths.state}`);
    return `State directory ${plan.stateDir} (dry run)`;
  }
  const created = await mkdirpTracked(plan.stateDir);
  // Only directories this `up` created may ever be removed by `down`.
  ctx.state.createdDirs = [...new Set([...ctx.state.createdDirs, ...created])];
  ctx.lock = await acquireLock(plan.paths.lock, 'up');
  ctx.state.phase = 'starting';
  ctx.state.supervisor = ctx.supervisor.kind;
  await writeState(plan.paths, ctx.state);
  await Promise.all(runtimeDirs(plan).map((d) => fs.mkdir(d, { recursive: true })));
  const status = await ctx.supervisor.status().catch(() => []);
  ctx.runningBefore = new Set([...status.filter((s) => s.running).map((s) => s.name), ...runningByPidFile(ctx.services, plan.stateDir)]);
  if (ctx.runningBefore.size === 0 && ctx.supervisor.kind === 'own') {
    // Nothing of ours runs, so an empty service list stops nothing; it only gets the supervisor
    // process loading now, in parallel with namespaces and certificates, instead of later.
    ctx.supervisorWarm = ctx.supervisor.ensure([]);
    ctx.supervisorWarm.catch(() => undefined);
  }
  return `State directory ${plan.stateDir} (sandbox ${plan.id}, ${plan.datapath === 'netdev' ? 'userspace' : 'kernel'} datapath, ${ctx.supervisor.kind} supervisor)`;
}

async function renderStunnel(ctx: UpContext): Promise<string> {
  const { plan, inv } = ctx;
  const written: string[] = [];
  for (const node of [plan.central.name, ...plan.workers.map((w) => w.name)]) {
    const dirs = plan.paths.node(node);
    const files = renderHostStunnel(inv, node, { tls: stunnelTls(plan, node), runDir: dirs.run, logDir: dirs.log, foreground: true });
    if (ctx.dryRun) {
      for (const name of files.keys()) ctx.opts.print(`would write ${path.join(dirs.etc, name)}`);
      written.push(node);
      continue;
    }
    const report = await applyFiles(dirs.etc, files);
    if (report.written.length > 0) {
      written.push(node);
      ctx.stunnelChanged.add(node === plan.central.name ? serviceName.centralStunnel : serviceName.workerStunnel(node));
    }
  }
  return `stunnel configs: ${written.length} ${ctx.dryRun ? 'to write' : 'written'}, ${plan.workers.length + 1 - written.length} unchanged`;
}

function stunnelServices(s: SandboxServices): ServiceSpec[] {
  return s.tls;
}

async function removeLeftovers(ctx: UpContext): Promise<string | void> {
  const { plan } = ctx;
  if (ctx.dryRun) return;
  const ours = (ns: string) => ctx.state.namespaces.includes(ns) || ns.startsWith(`${plan.names.prefix}-`);
  const stale = ctx.namespacesBefore.filter((ns) => ours(ns) && !plan.namespaces.includes(ns));
  await new Ip(ctx.runner).deleteNetnsAll(stale);
  ctx.state.namespaces = ctx.state.namespaces.filter((ns) => !stale.includes(ns));
  // Chassis of workers a larger sandbox had: only worth asking the SB when there were more.
  let gone: string[] = [];
  if (stale.length > 0 || ctx.workersBefore > plan.workers.length) {
    const chassis = (await sbctl(ctx).list('Chassis', ['name'])).map((r) => String(r.name));
    gone = chassis.filter((c) => /^worker\d+$/.test(c) && !plan.workers.some((w) => w.systemId === c));
    for (const c of gone) await sbctl(ctx).chassisDel(c);
  }
  if (stale.length === 0 && gone.length === 0) return 'Nothing left over from a larger sandbox';
  await writeState(plan.paths, ctx.state);
  return `Removed ${[...stale, ...gone.map((c) => `chassis ${c}`)].join(', ')}`;
}

function nbctl(ctx: UpContext): Nbctl {
  return new Nbctl(ctx.runner, `unix:${ctx.plan.paths.central.nbSock}`);
}

function sbctl(ctx: UpContext): Sbctl {
  return new Sbctl(ctx.runner, `unix:${ctx.plan.paths.central.sbSock}`);
}
