/** Shared by the metadata agent's end-to-end tests: status JSON, ovn-sbctl, the VM's request, RSS. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { MetadataSandboxPlan } from '../../src/metadata/sandbox-plan.js';
import { cli, inNetns, type StatusJson } from '../sandbox-helpers.js';

export interface MetadataAgentJson {
  chassis: string;
  runsAs: string;
  running: boolean;
  pid: number | null;
  registered: boolean;
  agentId: string | null;
  healthy: boolean;
  detail: string;
}
export type Status = StatusJson & { metadataAgents?: MetadataAgentJson[] };

export async function statusJson(dir: string, env?: Record<string, string>): Promise<{ code: number; json: Status }> {
  const r = await cli(['status', '--dir', dir, '--json'], env === undefined ? {} : { env });
  return { code: r.code, json: JSON.parse(r.stdout) as Status };
}

export function sbctl(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync('ovn-sbctl', [`--db=unix:${path.join(dir, 'run', 'central', 'ovnsb_db.sock')}`, '--timeout=5', ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

/** HTTP status of the VM's metadata request ('000' when nothing answered). */
export function vmCurl(m: MetadataSandboxPlan): string {
  return inNetns(m.vm.netns, ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', m.url], 15_000).out.trim();
}

/** RSS (kB) of a process and all its descendants. */
export function treeRssKb(root: number): number {
  const parent = new Map<number, number>();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) if (tree.has(ppid) && !tree.has(pid)) grew = tree.add(pid) !== undefined;
  }
  let kb = 0;
  for (const pid of tree) {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += Number(m?.[1] ?? 0);
  }
  return kb;
}

