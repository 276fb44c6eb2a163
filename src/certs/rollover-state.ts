/**
 * `PKI/rollover.json`: where a CA rollover stands, so it can be resumed after an interruption and
 * so each phase can see which hosts finished the previous one. Written atomically after every
 * host that completes a phase.
 */
import { z } from 'zod';
import { readJsonFile, writeFileAtomic } from '../fsx.js';
import { rolloverPaths } from '../paths.js';

/** (1) every bundle trusts the new CA, (2) leaves come from the new CA, (3) the old CA is no longer trusted. */
export const PHASES = ['trust', 'issue', 'retire'] as const;
export type RolloverPhase = (typeof PHASES)[number];

export const PHASE_TITLES: Record<RolloverPhase, string> = {
  trust: '1 (trust): add the new CA to every trust bundle',
  issue: '2 (issue): re-issue every leaf from the new CA',
  retire: '3 (retire): remove the old CA from every trust bundle',
};

const caRef = z.object({ serial: z.string(), commonName: z.string() });
const hostDone = z.object({ doneAt: z.string(), detail: z.string() });

const stateSchema = z.object({
  version: z.literal(1),
  oldCa: caRef,
  newCa: caRef,
  startedAt: z.string(),
  phases: z.object({
    trust: z.record(z.string(), hostDone),
    issue: z.record(z.string(), hostDone),
    retire: z.record(z.string(), hostDone),
  }),
  /** The new CA has become the issuer (phase 2 switched it). */
  issuerSwitchedAt: z.string().optional(),
  completedAt: z.string().optional(),
});

export type RolloverState = z.infer<typeof stateSchema>;
export type CaRef = z.infer<typeof caRef>;

export async function readRolloverState(pkiDir: string): Promise<RolloverState | undefined> {
  const file = rolloverPaths(pkiDir).state;
  return readJsonFile(file, stateSchema);
}

export async function writeRolloverState(pkiDir: string, state: RolloverState): Promise<void> {
  await writeFileAtomic(rolloverPaths(pkiDir).state, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

export function newRolloverState(oldCa: CaRef, newCa: CaRef, now: Date): RolloverState {
  return { version: 1, oldCa, newCa, startedAt: now.toISOString(), phases: { trust: {}, issue: {}, retire: {} } };
}

/** A rollover that has started and not finished. */
export function inProgress(state: RolloverState | undefined): state is RolloverState {
  return state !== undefined && state.completedAt === undefined;
}

/** Hosts that have not completed `phase`. */
export function pendingHosts(state: RolloverState, phase: RolloverPhase, hosts: readonly string[]): string[] {
  return hosts.filter((h) => state.phases[phase][h] === undefined);
}

/** The first phase some host has not completed (undefined when all are complete). */
export function currentPhase(state: RolloverState, hosts: readonly string[]): RolloverPhase | undefined {
  return PHASES.find((p) => pendingHosts(state, p, hosts).length > 0);
}
