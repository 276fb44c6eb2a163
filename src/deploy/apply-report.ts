/**
 * The report `apply --json` prints on the host (see the issue 5 design): deploy and status read
 * it back over SSH. Checked with a schema, so a host running another version fails clearly.
 */
import { z } from 'zod';
import { ExitError } from '../errors.js';

export const APPLY_EXIT = { converged: 0, unhealthy: 1, badInput: 2, needsCertificate: 3 } as const;

export const applyReportSchema = z.object({
  host: z.string(),
  status: z.enum(['converged', 'needs-certificate', 'unhealthy']),
  dryRun: z.boolean().optional(),
  changes: z.array(z.object({ kind: z.string(), target: z.string(), action: z.string() })),
  csr: z.string().optional(),
  signCommand: z.string().optional(),
  health: z.array(z.object({ check: z.string(), ok: z.boolean(), detail: z.string().optional().default(''), service: z.string().optional() })).default([]),
  // Hosts with an older ovn-deploy report none.
  services: z
    .array(
      z.object({
        name: z.string(),
        running: z.boolean(),
        pid: z.number().int().optional(),
        unsupervisedPid: z.number().int().optional(),
        restarts: z.number().int(),
        startedAt: z.string().optional(),
        lastExit: z.object({ code: z.number().int().nullable(), signal: z.string().nullable(), at: z.string() }).optional(),
      }),
    )
    .optional(),
});
export type ApplyReport = z.output<typeof applyReportSchema>;

/** The last JSON object in `stdout` (apply prints exactly one; tolerate noise before it). */
export function parseApplyReport(stdout: string, host: string): ApplyReport {
  const start = stdout.indexOf('{');
  let data: unknown;
  try {
    if (start < 0) throw new Error('no JSON object');
    data = JSON.parse(stdout.slice(start));
  } catch (err) {
    const head = stdout.trim().slice(0, 200);
    throw new ExitError(`${host}: apply printed no report (${(err as Error).message})${head === '' ? '' : `: ${head}`}`, 1);
  }
  const parsed = applyReportSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(report)'}: ${i.message}`).join('; ');
    throw new ExitError(`${host}: apply's report is not what this version expects (${issues})`, 1);
  }
  return parsed.data;
}
