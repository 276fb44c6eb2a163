/** Status of the sandbox in a state directory, or undefined when there is none. */
import { ZxRunner, type Runner } from '../runner.js';
import { sandboxPaths } from '../paths.js';
import { canonicalDir } from './naming.js';
import { planOfState } from './existing.js';
import { sandboxSite } from './site.js';
import { readState } from './state.js';
import { collectStatus, type StatusReport } from './status.js';

export async function sandboxStatus(stateDir: string, runner: Runner = new ZxRunner()): Promise<StatusReport | undefined> {
  const dir = canonicalDir(stateDir);
  const state = await readState(sandboxPaths(dir));
  if (state === undefined) return undefined;
  const plan = planOfState(dir, state);
  const site = sandboxSite(plan, runner);
  return collectStatus({ plan, site, state, runner, ports: site.inventory.ports });
}
