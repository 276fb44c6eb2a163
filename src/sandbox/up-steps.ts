/**
 * The steps of `up` and what each depends on. The hosts (central and workers) are a site: their
 * bundles rendered and applied by the real code (hosts.ts); the sandbox adds only what a real
 * site has already: the network between its hosts, and what proves it works (topology, VMs,
 * ping, trace). Every step is idempotent, so the same list creates, re-asserts and repairs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { metadataRenderOptions, metadataSteps } from '../metadata/sandbox-steps.js';
import { hostPaths } from '../paths.js';
import { OwnSupervisor } from '../supervisor/own.js';
import { Ip } from '../tools/netns.js';
import { Nbctl, Sbctl } from '../tools/ovn.js';
import { ensurePackages, sandboxRequirements } from '../packages.js';
import type { Step } from '../ui/dag.js';
import { ensureSandboxCa } from './certs.js';
import { convergeHosts, describeHosts } from './hosts.js';
import { ensureNamespaces, ensureUnderlay } from './network.js';
import { siteHost } from './site.js';
import { acquireLock, mkdirpTracked, writeState } from './state.js';
import { applyTopology, topologyArgs, waitPortsUp } from './topology.js';
import { formatTracePath, traceMicroflow } from './trace.js';
import type { UpContext, UpOptions } from './up-context.js';
import { pingVm, traceVm, vmByName } from './verify.js';
import { bindVm, ensureVmPorts, seedTunnelNeighbours } from './worker.js';

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
      id: 'ca',
      title: 'The sandbox CA and its CRL',
      deps: ['prepare'],
      run: async (ctx) => {
        if (ctx.dryRun) return 'CA: would create it when missing';
        ctx.pki = await ensureSandboxCa(ctx.plan, ctx.inv);
        return `CA ${ctx.pki.caCreated ? 'created' : 'present'}${ctx.pki.crlRefreshed ? ', CRL refreshed' : ''}`;
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
      id: 'hosts',
      title: 'Render and apply every host (central, workers)',
      deps: ['ca', 'underlay', 'metadata-prepare'],
      run: async (ctx, task) => {
        if (ctx.dryRun) {
          for (const line of describeHosts(ctx.site, metadataRenderOptions(ctx))) ctx.opts.print(line);
          return 'Hosts: would render and apply every bundle';
        }
        ctx.hosts = await convergeHosts(ctx.site, { pkiDir: ctx.plan.paths.pki, ...metadataRenderOptions(ctx), log: (host, line) => (task.output = `${host}: ${line}`) });
        const changed = ctx.hosts.results.filter((r) => r.changes.length > 0).map((r) => r.host);
        if (ctx.pki !== undefined) ctx.pki = { ...ctx.pki, issued: ctx.hosts.issued, reused: ctx.hosts.reused };
        return `Hosts converged: ${changed.length === 0 ? 'no change on any host' : `changed ${changed.join(', ')}`}; Certificates: ${ctx.hosts.issued.length} issued, ${ctx.hosts.reused.length} reused`;
      },
    },
    {
      id: 'topology',
      title: 'Logical topology: network1, network2, router1',
      deps: ['hosts'],
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
      id: 'vms',
      title: 'Bind the VMs',
      deps: ['hosts'],
      run: async (ctx) => {
        await Promise.all(ctx.plan.workers.map((w) => ensureVmPorts(ctx.runner, ctx.plan, w)));
        await Promise.all(ctx.plan.workers.map((w) => seedTunnelNeighbours(ctx.runner, ctx.plan, w)));
        const outcomes = await Promise.all(ctx.plan.vms.map((vm) => bindVm(ctx.runner, ctx.plan, vm, ctx.dryRun)));
        const moved = ctx.plan.vms.filter((_, i) => outcomes[i] === 'moved').map((v) => v.name);
        return `VMs bound: ${ctx.plan.vms.map((v) => `${v.name}@${v.worker}`).join(', ')}${moved.length > 0 ? ` (tap moved: ${moved.join(', ')})` : ''}`;
      },
    },
    {
      id: 'leftovers',
      title: 'Remove what a previous larger sandbox left',
      deps: ['hosts', 'topology'],
      run: async (ctx) => removeLeftovers(ctx),
    },
    {
      id: 'ports-up',
      title: 'Wait for the VM ports to come up',
      deps: ['vms', 'topology'],
      run: async (ctx) => {
        if (ctx.dryRun) return;
        await waitPortsUp(nbctl(ctx), ctx.plan.vms, opts.portsUpTimeoutSec ?? 30);
        return `Ports up: ${ctx.plan.vms.map((v) => v.name).join(', ')}`;
      },
    },
    {
      id: 'ping',
      title: 'Ping across the router and the tunnel',
      deps: ['ports-up'],
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
        ctx.state.supervisor = 'own';
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
  ctx.state.supervisor = 'own';
  await writeState(plan.paths, ctx.state);
  return `State directory ${plan.stateDir} (sandbox ${plan.id}, ${plan.datapath === 'netdev' ? 'userspace' : 'kernel'} datapath, ${ctx.site.hosts.length} hosts)`;
}

async function removeLeftovers(ctx: UpContext): Promise<string | void> {
  const { plan } = ctx;
  if (ctx.dryRun) return;
  const ours = (ns: string) => ctx.state.namespaces.includes(ns) || plan.names.owns(ns);
  const stale = ctx.namespacesBefore.filter((ns) => ours(ns) && !plan.namespaces.includes(ns));
  // Hosts of a larger sandbox: their supervisors (and so their daemons) go before their namespaces.
  const goneHosts = await removeGoneHosts(ctx);
  await new Ip(ctx.runner).deleteNetnsAll(stale);
  ctx.state.namespaces = ctx.state.namespaces.filter((ns) => !stale.includes(ns));
  // Chassis of workers a larger sandbox had: only worth asking the SB when there were more.
  let gone: string[] = [];
  if (stale.length > 0 || ctx.workersBefore > plan.workers.length) {
    const chassis = (await sbctl(ctx).list('Chassis', ['name'])).map((r) => String(r.name));
    gone = chassis.filter((c) => /^worker\d+$/.test(c) && !plan.workers.some((w) => w.systemId === c));
    for (const c of gone) await sbctl(ctx).chassisDel(c);
  }
  if (stale.length === 0 && gone.length === 0 && goneHosts.length === 0) return 'Nothing left over from a larger sandbox';
  await writeState(plan.paths, ctx.state);
  return `Removed ${[...goneHosts.map((h) => `host ${h}`), ...stale, ...gone.map((c) => `chassis ${c}`)].join(', ')}`;
}

/** Host roots under hosts/ that this sandbox no longer has: supervisor stopped, root and report removed. */
async function removeGoneHosts(ctx: UpContext): Promise<string[]> {
  const { plan } = ctx;
  const dir = path.dirname(plan.paths.hostRoot('x'));
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const keep = new Set(ctx.site.hosts.map((h) => h.name));
  const gone = entries.filter((e) => e.isDirectory() && !e.isSymbolicLink() && !keep.has(e.name) && /^worker\d+$/.test(e.name)).map((e) => e.name);
  for (const name of gone) {
    const root = plan.paths.hostRoot(name);
    await new OwnSupervisor(hostPaths(root).state).stop();
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(plan.paths.report(name), { force: true });
  }
  return gone;
}

function nbctl(ctx: UpContext): Nbctl {
  return new Nbctl(ctx.runner, `unix:${siteHost(ctx.site, ctx.plan.central.name).paths.ovn.nbSock}`);
}

function sbctl(ctx: UpContext): Sbctl {
  return new Sbctl(ctx.runner, `unix:${siteHost(ctx.site, ctx.plan.central.name).paths.ovn.sbSock}`);
}
