/** Status of the sandbox in a state directory, or undefined when there is none. */
import { ZxRunner, type Runner } from '../runner.js';
import { sandboxPaths } from '../paths.js';
import { canonicalDir } from './naming.js';
import { planSandbox } from './plan.js';
import { sandboxSite } from './site.js';
import { readState } from './state.js';
import { collectStatus, type StatusReport } from './status.js';

export async function sandboxStatus(stateDir: string, runner: Runner = new ZxRunner()): Promise<StatusReport | undefined> {
  const dir = canonicalDir(stateDir);
  const state = await readState(sandboxPaths(dir));
  if (state === undefined) return undefined;
  const plan = planSandbox({ stateDir: dir, workers: Math.max(1, state.workers), datapath: state.datapath, metadataAgent: state.metadataAgent === true, ...(state.metadataImage === undefined ? {} : { metadataImage: state.metadataImage }) });
  const site = sandboxSite(plan, runner);
  return collectStatus({ plan, site, state, runner, ports: site.inventory.ports });
}
