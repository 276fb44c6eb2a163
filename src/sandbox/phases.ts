/**
 * Starting the daemons in phases through the supervisor. A phase lists the services that may
 * start now plus every later-phase service that already runs (so nothing healthy is stopped or
 * restarted by a repeated `up`); each phase is one ensure() round trip, skipped when an earlier
 * one already covered it.
 */
import type { ServiceSpec } from '../supervisor/types.js';
import { allServices } from './services.js';
import type { UpContext } from './up-context.js';

/**
 * Starts `wanted` through the supervisor without stopping anything else of ours that runs:
 * services of later phases that were already running are passed on unchanged (when what they
 * start after is in the list too), so a repeated `up` never restarts a healthy daemon.
 */
export async function ensurePhase(ctx: UpContext, wanted: ServiceSpec[]): Promise<void> {
  const list = phaseList(wanted, allServices(ctx.services), ctx.runningBefore);
  if (ctx.dryRun) {
    for (const s of list) {
      if (ctx.runningBefore.has(s.name)) continue;
      ctx.runningBefore.add(s.name); // printed once, not again in later phases
      ctx.opts.print(`would start ${s.name}: ${s.netns === undefined ? '' : `ip netns exec ${s.netns} `}${s.argv.join(' ')}`);
    }
    return;
  }
  if (list.every((s) => ctx.ensured.has(s.name))) return;
  await ctx.supervisorWarm;
  await ctx.supervisor.ensure(list);
  for (const s of list) ctx.ensured.add(s.name);
}

/** Pure: `wanted` plus the running services of later phases whose `after` is satisfied. */
export function phaseList(wanted: readonly ServiceSpec[], all: readonly ServiceSpec[], running: ReadonlySet<string>): ServiceSpec[] {
  const list = [...wanted];
  const names = new Set(list.map((s) => s.name));
  let added = true;
  while (added) {
    added = false;
    for (const s of all) {
      if (names.has(s.name) || !running.has(s.name)) continue;
      if ((s.after ?? []).every((d) => names.has(d))) {
        list.push(s);
        names.add(s.name);
        added = true;
      }
    }
  }
  return list;
}
