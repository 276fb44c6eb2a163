/**
 * The two files the own supervisor and its clients share. services.json (desired state) is written
 * only by clients; status.json (what runs) only by the supervisor. Both are replaced atomically,
 * so a reader never sees half a file, and both survive a `kill -9` of either side: that is what
 * lets the next supervisor adopt the previous one's orphans.
 */
import type { z as Z } from 'zod';
import { readJsonFile, writeFileAtomic } from '../fsx.js';
import type { ServiceSpec } from './types.js';

/**
 * The schemas, made on the first read: zod costs about 60 ms to load, and a clean `down` reads
 * neither file.
 */
function makeSchemas(z: typeof Z) {
  const serviceSpec = z.object({
    name: z.string(),
    argv: z.array(z.string()),
    netns: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    logFile: z.string(),
    after: z.array(z.string()).optional(),
    stopSignal: z.string().optional(),
    stopGraceMs: z.number().optional(),
    settleMs: z.number().optional(),
    unixListeners: z.array(z.string()).optional(),
    waitFor: z.array(z.string()).optional(),
  });
  const desired = z.object({
    version: z.literal(1),
    /** Changes on every client write; the supervisor echoes it in status.json once applied. */
    revision: z.string(),
    services: z.array(serviceSpec),
  });
  const exit = z.object({ code: z.number().nullable(), signal: z.string().nullable(), at: z.string() });
  const record = z.object({
    name: z.string(),
    hash: z.string(),
    /** Kept to recognise an orphan by its command line after a supervisor crash. */
    argv: z.array(z.string()),
    netns: z.string().optional(),
    logFile: z.string(),
    stopSignal: z.string().optional(),
    stopGraceMs: z.number().optional(),
    state: z.enum(['running', 'backoff', 'failed', 'stopping']),
    pid: z.number().optional(),
    startTicks: z.number().optional(),
    startedAt: z.string().optional(),
    restarts: z.number(),
    /** Consecutive quick deaths since the last apply or since a long enough run. */
    failures: z.number(),
    lastExit: exit.optional(),
    /** Inherited from a previous supervisor (not our child: watched by polling /proc). */
    adopted: z.boolean().optional(),
    error: z.string().optional(),
  });
  const status = z.object({
    version: z.literal(1),
    supervisorPid: z.number(),
    supervisorStartTicks: z.number(),
    bootId: z.string(),
    /** The services.json revision the supervisor has applied. */
    revision: z.string().optional(),
    updatedAt: z.string(),
    services: z.array(record),
  });
  return { desired, status };
}
type Schemas = ReturnType<typeof makeSchemas>;

let schemas: Promise<Schemas> | undefined;

function loadSchemas(): Promise<Schemas> {
  schemas ??= import('zod').then(({ z }) => makeSchemas(z));
  return schemas;
}

export type DesiredFile = { version: 1; revision: string; services: ServiceSpec[] };

/** running: process up; backoff: waiting to restart; failed: gave up; stopping: being stopped. */
export type ServiceState = 'running' | 'backoff' | 'failed' | 'stopping';

export type StatusFile = Z.infer<Schemas['status']>;
export type ServiceRecord = StatusFile['services'][number];

export async function readDesired(file: string): Promise<DesiredFile | undefined> {
  return (await readJsonFile(file, (await loadSchemas()).desired)) as DesiredFile | undefined;
}

export async function writeDesired(file: string, desired: DesiredFile): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(desired, null, 2)}\n`, 0o600);
}

export async function readStatus(file: string): Promise<StatusFile | undefined> {
  return readJsonFile(file, (await loadSchemas()).status);
}

export async function writeStatus(file: string, status: StatusFile): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(status, null, 2)}\n`, 0o644);
}
