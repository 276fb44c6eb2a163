/**
 * `deploy`: every selected host's bundle rendered in memory, written to a private temp dir, and
 * deployed by one listr2 task per host (centrals first, a concurrency limit within a phase).
 * Failing hosts are results, not exceptions: the others carry on and the caller decides the exit.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Listr, ListrLogger, ProcessOutput, type ListrTask } from 'listr2';
import type { BundleManifest } from '../bundle/manifest.js';
import { applyFiles, type RenderedFiles } from '../fsx.js';
import type { Host, Inventory } from '../inventory/types.js';
import { listrOptions, type ProgressMode } from '../ui/listr.js';
import { deployHost, sshTransport, type HostDeployDeps, type HostResult } from './host.js';
import type { DeployPlan } from './plan.js';
import type { Connect } from './remote.js';

export interface RenderedHost {
  manifest: BundleManifest;
  /** Relative to the host's bundle directory (manifest.json, files/...). */
  files: RenderedFiles;
}

export interface DeployRunOptions {
  inventory: Inventory;
  plan: DeployPlan;
  render: (host: Host) => RenderedHost;
  connect: Connect;
  sign: HostDeployDeps['sign'];
  progress?: ProgressMode;
  /** Progress on stderr (with --json stdout carries only the report). */
  progressToStderr?: boolean;
  applyTimeoutMs?: number;
  /** `--renew-certificates`: every host's apply gets `--renew-certificate`. */
  renewCertificates?: boolean;
}

export interface DeployResult {
  site: string;
  ok: boolean;
  durationMs: number;
  hosts: HostResult[];
}

function outcomeTitle(r: HostResult): string {
  const secs = `${(r.durationMs / 1000).toFixed(1)} s`;
  const extra = [r.renewed ? 'certificate renewed' : r.signed ? 'certificate signed' : '', r.toolShipped ? 'tool shipped' : '', r.imageShipped === true ? 'image shipped' : ''].filter((s) => s !== '').join(', ');
  const base = `${r.host}: ${r.status}, ${r.changes.length} change${r.changes.length === 1 ? '' : 's'}${extra === '' ? '' : `, ${extra}`} (${secs})`;
  return r.error === undefined ? base : `${base}: ${r.error.split('\n')[0] ?? ''}`;
}

export async function runDeploy(opts: DeployRunOptions): Promise<DeployResult> {
  const started = Date.now();
  const results: HostResult[] = [];
  // Bundles can hold the metadata secret: a private directory, removed whatever happens.
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-bundles-'));
  await fs.chmod(tmp, 0o700);
  try {
    // Render every host before touching any: a render error (bad input) stops the deploy early.
    const rendered = new Map<string, RenderedHost>();
    for (const phase of opts.plan.phases) for (const h of phase.hosts) rendered.set(h.name, opts.render(h));
    for (const [name, r] of rendered) await applyFiles(path.join(tmp, name), r.files);

    const hostTask = (h: Host, phase: string): ListrTask => ({
      title: h.name,
      task: async (_ctx, task) => {
        const r = rendered.get(h.name) as RenderedHost;
        const result = await deployHost(h, phase, path.join(tmp, h.name), r.manifest, {
          transport: sshTransport(opts.connect(h), h, opts.applyTimeoutMs),
          sign: opts.sign,
          ...(opts.renewCertificates === true ? { renewCertificate: true } : {}),
          log: (line) => {
            task.output = line;
          },
        });
        results.push(result);
        task.title = outcomeTitle(result);
        // Marks the task failed; the title already says why (the summary table says it again).
        if (result.status !== 'converged') throw new Error(result.status);
      },
    });
    const tasks: ListrTask[] = opts.plan.phases.map((phase) => ({
      title: `${phase.name}: ${phase.hosts.map((h) => h.name).join(', ')}`,
      task: (_ctx, task) => task.newListr(phase.hosts.map((h) => hostTask(h, phase.name)), { concurrent: opts.plan.concurrency, exitOnError: false }),
    }));
    const base = listrOptions<unknown>(opts.progress ?? 'auto');
    const toStderr = opts.progressToStderr === true;
    const listr = new Listr(tasks, {
      ...base,
      concurrent: false,
      exitOnError: false,
      ...(toStderr
        ? {
            fallbackRendererCondition: true,
            fallbackRendererOptions: { ...base.fallbackRendererOptions, logger: new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) }) },
          }
        : {}),
    });
    await listr.run();
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  const order = new Map(opts.inventory.hosts.map((h, i) => [h.name, i]));
  results.sort((a, b) => (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));
  return { site: opts.inventory.site, ok: results.every((r) => r.status === 'converged'), durationMs: Date.now() - started, hosts: results };
}
