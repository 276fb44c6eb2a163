/**
 * The identity of the machine that builds: distribution, architecture, rpm and compiler versions.
 * It is part of every artifact's input hash: the same sources built by another compiler are
 * another artifact.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Runner } from '../runner.js';

export interface BuilderIdentity {
  os: string;
  arch: string;
  rpmbuild: string;
  cc: string;
}

async function firstLine(runner: Runner, argv: string[]): Promise<string> {
  const r = await runner.run(argv, { timeoutMs: 30_000, allowFailure: true, mutates: false });
  return r.exitCode === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : `unavailable (${argv[0]})`;
}

function osRelease(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]?.replace(/^"|"$/g, '') ?? '';
    return `${field('ID')} ${field('VERSION_ID')}`.trim();
  } catch {
    return 'unknown';
  }
}

export async function builderIdentity(runner: Runner, rpmbuild = 'rpmbuild'): Promise<BuilderIdentity> {
  const [rpm, cc] = await Promise.all([firstLine(runner, [rpmbuild, '--version']), firstLine(runner, ['gcc', '--version'])]);
  return { os: osRelease(), arch: os.machine(), rpmbuild: rpm, cc };
}

/** autoconf, automake and libtool versions: what ./boot.sh's output depends on. */
export async function autotoolsIdentity(runner: Runner): Promise<string> {
  const lines = await Promise.all([['autoconf', '--version'], ['automake', '--version'], ['libtoolize', '--version']].map((a) => firstLine(runner, a)));
  return lines.join('; ');
}
