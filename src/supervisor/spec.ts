/**
 * Pure logic on ServiceSpec lists, shared by both backends: validation (every problem, with its
 * dot-path), start order from `after`, and the hash that decides whether a service must restart.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import path from 'node:path';
import { InputError, type Problem } from '../errors.js';
import type { ServiceSpec } from './types.js';

/** Also used in systemd unit names and file names: keep it to a safe alphabet. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Below OwnSupervisor.stop()'s 30 s: a stop that may take longer is not waited for. */
const MAX_STOP_GRACE_MS = 25_000;

/** Every problem of `services`, paths like `services[1].after[0]`; empty when valid. */
export function serviceProblems(services: readonly ServiceSpec[]): Problem[] {
  const problems: Problem[] = [];
  const add = (p: string, message: string): void => void problems.push({ path: p, message });
  const seen = new Map<string, number>();
  services.forEach((s, i) => {
    const at = `services[${i}]`;
    if (!NAME.test(s.name)) add(`${at}.name`, `"${s.name}" is not a valid service name (letters, digits, . _ -; at most 64)`);
    const first = seen.get(s.name);
    if (first !== undefined) add(`${at}.name`, `duplicate service name "${s.name}" (also services[${first}])`);
    else seen.set(s.name, i);
    if (s.argv.length === 0 || s.argv.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      add(`${at}.argv`, 'expected a non-empty list of strings without NUL bytes');
    }
    if (!path.isAbsolute(s.logFile)) add(`${at}.logFile`, `expected an absolute path, got "${s.logFile}"`);
    for (const key of ['unixListeners', 'waitFor'] as const) {
      (s[key] ?? []).forEach((p, j) => {
        if (!path.isAbsolute(p)) add(`${at}.${key}[${j}]`, `expected an absolute path, got "${p}"`);
      });
    }
    if (s.cwd !== undefined && !path.isAbsolute(s.cwd)) add(`${at}.cwd`, `expected an absolute path, got "${s.cwd}"`);
    if (s.netns !== undefined && !NETNS.test(s.netns)) add(`${at}.netns`, `"${s.netns}" is not a valid namespace name`);
    for (const key of Object.keys(s.env ?? {})) {
      if (!ENV_KEY.test(key)) add(`${at}.env.${key}`, 'not a valid environment variable name');
    }
    if (s.stopSignal !== undefined && !(s.stopSignal in constants.signals)) {
      add(`${at}.stopSignal`, `unknown signal "${s.stopSignal}"`);
    }
    if (s.stopGraceMs !== undefined && !(Number.isInteger(s.stopGraceMs) && s.stopGraceMs >= 100 && s.stopGraceMs <= MAX_STOP_GRACE_MS)) {
      add(`${at}.stopGraceMs`, `expected whole milliseconds from 100 to ${MAX_STOP_GRACE_MS}, got ${String(s.stopGraceMs)}`);
    }
  });
  services.forEach((s, i) => {
    (s.after ?? []).forEach((dep, j) => {
      if (dep === s.name) add(`services[${i}].after[${j}]`, `"${s.name}" cannot start after itself`);
      else if (!seen.has(dep)) add(`services[${i}].after[${j}]`, `unknown service "${dep}"`);
    });
  });
  if (problems.length === 0) {
    const cycle = findCycle(services);
    if (cycle !== undefined) add('services', `"after" has a cycle: ${cycle.join(' -> ')}`);
  }
  return problems;
}

/** Throws an InputError listing every problem. */
export function validateServices(services: readonly ServiceSpec[]): void {
  const problems = serviceProblems(services);
  if (problems.length > 0) throw new InputError(problems);
}

/**
 * Start order: every service after the ones it names in `after`, otherwise in the given order
 * (stable, so plans and logs do not reshuffle between runs). Stop order is the reverse.
 */
export function startOrder<T extends Pick<ServiceSpec, 'name' | 'after'>>(services: readonly T[]): T[] {
  const done = new Set<string>();
  const order: T[] = [];
  const pending = [...services];
  while (pending.length > 0) {
    const index = pending.findIndex((s) => (s.after ?? []).every((d) => done.has(d) || !services.some((o) => o.name === d)));
    if (index < 0) {
      const cycle = findCycle(services) ?? pending.map((s) => s.name);
      throw new InputError([{ path: 'services', message: `"after" has a cycle: ${cycle.join(' -> ')}` }]);
    }
    const [next] = pending.splice(index, 1);
    if (next === undefined) break;
    order.push(next);
    done.add(next.name);
  }
  return order;
}

/** A cycle in the `after` graph as names (first repeated at the end), if any. */
function findCycle(services: readonly Pick<ServiceSpec, 'name' | 'after'>[]): string[] | undefined {
  const deps = new Map(services.map((s) => [s.name, s.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of deps.get(name) ?? []) {
      if (!deps.has(dep)) continue;
      const found = visit(dep);
      if (found !== undefined) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const s of services) {
    const found = visit(s.name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * What makes a running process stale: a different command line, environment, namespace, working
 * directory or log file means the process must be restarted. `after` and `stopSignal` do not.
 */
export function serviceHash(spec: ServiceSpec): string {
  const env = Object.entries(spec.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = JSON.stringify([spec.argv, env, spec.netns ?? null, spec.cwd ?? null, spec.logFile]);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}
