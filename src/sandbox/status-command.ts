/** Status of the sandbox in a state directory, or undefined when there is none. */
import { ZxRunner, type Runner } from '../runner.js';
import { sandboxPaths } from '../paths.js';
import { createSupervisor } from '../supervisor/index.js';
import { planInventory } from './inventory.js';
import { canonicalDir } from './naming.js';
import { planSandbox } from './plan.js';
import { readState } from './state.js';
import { collectStatus, type StatusReport } from './status.js';
import { planServices } from './services.js';
import { stunnelBinary } from '../tools/stunnel.js';

export async function sandboxStatus(stateDir: string, runner: Runner = new ZxRunner()): Promise<StatusReport | undefined> {
  const dir = canonicalDir(stateDir);
  const state = await readState(sandboxPaths(dir));
  if (state === undefined) return undefined;
  const plan = planSandbox({ stateDir: dir, workers: Math.max(1, state.workers), datapath: state.datapath, metadataAgent: state.metadataAgent === true, ...(state.metadataImage === undefined ? {} : { metadataImage: state.metadataImage }) });
  const inv = planInventory(plan);
  const supervisor = createSupervisor(plan.stateDir, { runner, prefer: state.supervisor ?? 'auto' });
  const services = planServices(plan, inv.loopbackPorts, stunnelBinary());
  return collectStatus({ plan, state, runner, supervisor, ports: inv.ports, pidFiles: services.pidFiles });
}
