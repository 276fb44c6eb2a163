/**
 * Which hosts a deploy touches and in which order: pure, so it is tested without SSH.
 *
 * Centrals go first: a worker's ovn-controller and stunnel client only become healthy once the
 * centrals they point at serve the databases. Within a phase hosts run concurrently (up to the
 * concurrency limit) in inventory order, so the bootstrap central (the first) starts first.
 */
import { InputError, type Problem } from '../errors.js';
import type { Host, Inventory } from '../inventory/types.js';

export interface DeployPhase {
  name: string;
  hosts: Host[];
}

export interface DeployPlan {
  phases: DeployPhase[];
  concurrency: number;
}

export const DEFAULT_CONCURRENCY = 4;

export interface PlanOptions {
  /** Only these hosts (by name); every name must be in the inventory. */
  hosts?: readonly string[];
  concurrency?: number;
  /**
   * `central add HOST`: the existing centrals first (their stunnel clients learn the new peer),
   * then HOST (it joins the running cluster), then everything else (new remote lists).
   */
  addCentral?: string;
}

const isCentral = (h: Host): boolean => h.roles.includes('central');

export function planDeploy(inv: Inventory, opts: PlanOptions = {}): DeployPlan {
  const problems: Problem[] = [];
  const known = new Set(inv.hosts.map((h) => h.name));
  const wanted = opts.hosts === undefined ? undefined : new Set(opts.hosts);
  for (const name of opts.hosts ?? []) {
    if (!known.has(name)) problems.push({ path: '--hosts', message: `no host ${JSON.stringify(name)} in the inventory (hosts: ${[...known].join(', ')})` });
  }
  if (opts.hosts !== undefined && opts.hosts.length === 0) problems.push({ path: '--hosts', message: 'expected at least one host name' });
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) problems.push({ path: '--concurrency', message: `must be a positive integer (got ${concurrency})` });
  if (opts.addCentral !== undefined) {
    const h = inv.hosts.find((x) => x.name === opts.addCentral);
    if (h === undefined) problems.push({ path: 'HOST', message: `no host ${JSON.stringify(opts.addCentral)} in the inventory: add it with role central first` });
    else if (!isCentral(h)) problems.push({ path: 'HOST', message: `${opts.addCentral} is not a central in the inventory: give it the role central first` });
    else if (inv.hosts.filter(isCentral)[0]?.name === opts.addCentral) {
      problems.push({ path: 'HOST', message: `${opts.addCentral} is the first central (the one that bootstraps the cluster): list an existing central first` });
    }
  }
  if (problems.length > 0) throw new InputError(problems);

  const selected = inv.hosts.filter((h) => wanted === undefined || wanted.has(h.name));
  const phases: DeployPhase[] =
    opts.addCentral === undefined
      ? [
          { name: 'centrals', hosts: selected.filter(isCentral) },
          { name: 'workers', hosts: selected.filter((h) => !isCentral(h)) },
        ]
      : [
          { name: 'existing centrals', hosts: selected.filter((h) => isCentral(h) && h.name !== opts.addCentral) },
          { name: `new central ${opts.addCentral}`, hosts: selected.filter((h) => h.name === opts.addCentral) },
          { name: 'workers', hosts: selected.filter((h) => !isCentral(h)) },
        ];
  return { phases: phases.filter((p) => p.hosts.length > 0), concurrency };
}
