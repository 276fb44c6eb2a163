/**
 * A sandbox that `up` made, found again from its state (read only): for the commands that work on
 * a running sandbox (`certs`, `backup`, `restore`).
 */
import { ExitError } from '../errors.js';
import { sandboxPaths, type SandboxPaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { canonicalDir } from './naming.js';
import { planSandbox, type SandboxPlan } from './plan.js';
import { sandboxSite, type SandboxSite } from './site.js';
import { readState, type SandboxState } from './state.js';

/** Commands on a directory without a sandbox exit like `status` does. */
export const NO_SANDBOX_EXIT = 3;

export interface ExistingSandbox {
  dir: string;
  paths: SandboxPaths;
  plan: SandboxPlan;
  site: SandboxSite;
}

export async function existingSandbox(stateDir: string, runner?: Runner): Promise<ExistingSandbox> {
  const dir = canonicalDir(stateDir);
  const paths = sandboxPaths(dir);
  const state = await readState(paths);
  if (state === undefined) throw new ExitError(`no sandbox in ${dir} (run \`ovn-deploy up --dir ${dir}\`)`, NO_SANDBOX_EXIT);
  const plan = planOfState(dir, state);
  return { dir, paths, plan, site: sandboxSite(plan, runner) };
}

/** The plan of the sandbox a state file describes: what `status`, `down` and `certs` work from. */
export function planOfState(dir: string, state: SandboxState): SandboxPlan {
  return planSandbox({
    stateDir: dir,
    workers: Math.max(1, state.workers),
    datapath: state.datapath,
    metadataAgent: state.metadataAgent === true,
    tls: state.tls ?? 'stunnel',
    ...(state.metadataImage === undefined ? {} : { metadataImage: state.metadataImage }),
  });
}
