/**
 * What "refused" means in the hostile-input tests: exit 2, the message, no stack trace, and
 * nothing on disk changed (a content snapshot compared before and after).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { CliResult } from './cli.js';

/** Every regular file below `dir` with its sha256 (the names in `ignore` left out). */
export async function snapshot(dir: string, ignore: readonly string[] = []): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || ignore.includes(e.name)) continue;
    const p = path.join(e.parentPath, e.name);
    out[path.relative(dir, p)] = createHash('sha256').update(await fs.readFile(p)).digest('hex');
  }
  return out;
}

/** A CLI run that refused its input the way bad input must be refused. */
export function expectRefused(r: CliResult, message: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

/** A thrown error that is bad input (exit 2) with short messages, not a crash. */
export function expectInputError(err: unknown, maxMessage: number): void {
  expect(err).toBeInstanceOf(InputError);
  const e = err as InputError;
  expect(e.exitCode).toBe(2);
  expect(e.problems.length).toBeGreaterThan(0);
  for (const p of e.problems) {
    expect(p.message.length).toBeGreaterThan(0);
    expect(p.message.length).toBeLessThan(maxMessage);
  }
}
