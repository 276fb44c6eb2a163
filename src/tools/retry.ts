/**
 * Waiting, retrying and bounded parallelism. A retry is a few attempts with a short pause: for
 * daemons that are starting (a socket that does not accept yet) or converging. Short fixed steps, no exponential backoff: every caller here
 * waits for something local that is normally ready within milliseconds.
 */

export interface RetryOptions {
  attempts: number;
  delayMs: number;
  /** Only these errors are retried; others are thrown at once. Default: every error. */
  retryIf?: (err: unknown) => boolean;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= opts.attempts; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      last = err;
      if (opts.retryIf !== undefined && !opts.retryIf(err)) throw err;
      if (attempt < opts.attempts) await sleep(opts.delayMs);
    }
  }
  throw last;
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined, or throws the
 * error made by `onTimeout` after `timeoutMs`.
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs: number; onTimeout: () => Error },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw opts.onTimeout();
    await sleep(opts.intervalMs);
  }
}

/** `fn` over `items`, at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}

/**
 * Calls for one key run one after another, in call order, whether the previous one succeeded or
 * not; calls for different keys run at once. In-process only (other processes: src/lock.ts).
 */
export function serializer(): <R>(key: string, fn: () => Promise<R>) => Promise<R> {
  const tails = new Map<string, Promise<unknown>>();
  return <R>(key: string, fn: () => Promise<R>): Promise<R> => {
    const previous = tails.get(key);
    const run = previous === undefined ? fn() : previous.then(() => fn(), () => fn());
    tails.set(key, run);
    const settled = () => {
      if (tails.get(key) === run) tails.delete(key);
    };
    run.then(settled, settled);
    return run;
  };
}
