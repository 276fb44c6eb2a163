/**
 * Runs the CLI in-process (through `main`, the one place that prints and picks exit codes) and
 * captures what it writes, so CLI tests assert exit codes and messages without spawning node.
 */
import { vi } from 'vitest';
import { main } from '../../src/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: readonly string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  try {
    const code = await main(['node', 'ovn-deploy', ...args]);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    o.mockRestore();
    e.mockRestore();
    // main() may set it; a test run must not inherit a failing exit code from a CLI test.
    process.exitCode = undefined;
  }
}
