/**
 * Steps with dependencies shown as one concurrent listr2 list: every step starts as soon as the
 * steps it depends on are done, so independent work (certificates, namespaces, database files)
 * overlaps instead of queueing. A step whose dependency failed is skipped, not run.
 */
import { Listr, type ListrTask, type ListrTaskWrapper, type ListrDefaultRenderer, type ListrSimpleRenderer } from 'listr2';
import { listrOptions, type ProgressMode } from './listr.js';

export type StepTask = ListrTaskWrapper<unknown, ListrDefaultRenderer, ListrSimpleRenderer>;

export interface Step<Ctx> {
  id: string;
  title: string;
  deps?: string[];
  /** Returns an optional replacement title (a short result, e.g. "3 certificates reused"). */
  run: (ctx: Ctx, task: StepTask) => Promise<string | void>;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Awaited by dependents only: a failure nobody depends on must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class DependencyFailed extends Error {
  constructor(readonly step: string) {
    super(`skipped: ${step} failed`);
  }
}

export interface StepTiming {
  id: string;
  /** ms since the list was built: when the step could start (dependencies done) and when it ended. */
  startMs: number;
  endMs: number;
}

export interface DagTasks<Ctx> {
  tasks: ListrTask<Ctx, ListrDefaultRenderer, ListrSimpleRenderer>[];
  /** Steps that finished, in the order they finished. */
  timings: StepTiming[];
  /** Settles once every step has finished, failed or been skipped. */
  settled: () => Promise<void>;
}

export function dagTasks<Ctx>(steps: readonly Step<Ctx>[]): DagTasks<Ctx> {
  const done = new Map(steps.map((s) => [s.id, deferred()]));
  const t0 = Date.now();
  const timings: StepTiming[] = [];
  for (const s of steps) {
    for (const d of s.deps ?? []) if (!done.has(d)) throw new Error(`step ${s.id} depends on unknown step ${d}`);
  }
  const tasks = steps.map(
    (s): ListrTask<Ctx, ListrDefaultRenderer, ListrSimpleRenderer> => ({
      title: s.title,
      task: async (ctx, task) => {
        const mine = done.get(s.id) as Deferred;
        for (const d of s.deps ?? []) {
          try {
            await (done.get(d) as Deferred).promise;
          } catch {
            mine.reject(new DependencyFailed(d));
            task.skip(`${s.title} (skipped: ${d} failed)`);
            return;
          }
        }
        const startMs = Date.now() - t0;
        try {
          const title = await s.run(ctx, task as unknown as StepTask);
          if (typeof title === 'string') task.title = title;
          timings.push({ id: s.id, startMs, endMs: Date.now() - t0 });
          mine.resolve();
        } catch (err) {
          mine.reject(err);
          throw err;
        }
      },
    }),
  );
  return {
    tasks,
    timings,
    settled: async () => {
      await Promise.allSettled([...done.values()].map((d) => d.promise));
    },
  };
}

/**
 * `steps` as one concurrent listr2 list over `ctx`. When a step fails, `run()` waits for the
 * steps already running to finish before rethrowing, so nothing keeps writing while the caller
 * reports, cleans up or releases a lock. `timings` fills in as steps finish (also on failure).
 */
export function dagRunner<Ctx>(steps: readonly Step<Ctx>[], ctx: Ctx, progress: ProgressMode | undefined): { timings: StepTiming[]; run: () => Promise<void> } {
  const dag = dagTasks<Ctx>(steps);
  const listr = new Listr<Ctx, 'default', 'simple'>(dag.tasks, { ...listrOptions<Ctx>(progress), concurrent: true, ctx });
  return {
    timings: dag.timings,
    run: async () => {
      try {
        await listr.run();
      } catch (err) {
        await dag.settled();
        throw err;
      }
    },
  };
}
