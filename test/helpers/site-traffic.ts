/**
 * Probe writes and a monitor session on a test site while certificates change under them: cms1
 * writes a logical switch every ~100 ms (a client that retries a failed write for up to ~10 s,
 * as ovn-controller, ovn-northd and ovsdbapp reconnect; "lost" = a write it gave up on), and a
 * long-lived `ovsdb-client monitor` of the SB runs on worker1. Only processes started here are
 * stopped. `nbArgs` / `sbArgs`: the ovn-nbctl / ovsdb-client options that reach the database
 * (stunnel mode: `--db=unix:...` through the host's tunnel; native: `ssl:` plus the host's files).
 */
import { expect } from 'vitest';
import type { TestSite } from './site-hosts.js';

const MIN = 60_000;

export interface SiteTraffic {
  site: TestSite;
  /** ovn-nbctl's options that reach the NB from cms1 and central1 (`--db=...`, TLS files). */
  nbArgs: string[];
  /** ovsdb-client's options before `monitor` and the SB remote after it, from worker1. */
  sbArgs: { options: string[]; remote: string };
}

export interface TrafficReport<T> {
  result: T;
  attempted: number;
  ok: number;
  failed: number[];
  retried: number;
  missing: number[];
  err: string;
  monitorAlive: boolean;
  monitorSawLast: boolean;
  monTail: string;
}

/** A command on a site host that must succeed (unless allowFailure), with a generous timeout. */
export async function siteExec(site: TestSite, h: string, argv: string[], allowFailure = false) {
  const r = await site.exec(h, argv, { timeoutMs: 2 * MIN });
  if (!allowFailure && r.code !== 0) throw new Error(`${h}: ${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

export async function underTraffic<T>(t: SiteTraffic, label: string, body: () => Promise<T>): Promise<TrafficReport<T>> {
  const { site } = t;
  const stopFile = `/tmp/stop-${label}`;
  const nb = t.nbArgs.join(' ');
  // A first attempt that failed is logged too ("retry N"): what a one-shot client would have lost.
  const loop =
    `i=0; while [ ! -e ${stopFile} ]; do i=$((i+1)); n=0; ` +
    `until ovn-nbctl ${nb} --timeout=5 --may-exist ls-add probe-${label}-$i >/dev/null 2>>/tmp/probe-${label}.err; do ` +
    `n=$((n+1)); echo "retry $i"; if [ $n -ge 20 ]; then break; fi; sleep 0.2; done; ` +
    `if [ $n -ge 20 ]; then echo "fail $i"; else echo "ok $i"; fi; sleep 0.1; done > /tmp/probe-${label}.log`;
  const writer = site.exec('cms1', ['sh', '-c', loop], { timeoutMs: 40 * MIN });
  const mon = await siteExec(site, 'worker1', ['sh', '-c', `setsid ovsdb-client ${t.sbArgs.options.join(' ')} monitor ${t.sbArgs.remote} OVN_Southbound Datapath_Binding external_ids > /tmp/mon-${label}.log 2>&1 < /dev/null & echo $!`]);
  const monPid = mon.stdout.trim();
  // The monitor's first reply and a few writes before the operation starts.
  await new Promise((r) => setTimeout(r, 2_000));
  let result: T;
  try {
    result = await body();
  } finally {
    await new Promise((r) => setTimeout(r, 1_000));
    await siteExec(site, 'cms1', ['touch', stopFile]);
    await writer;
  }
  const log = (await siteExec(site, 'cms1', ['cat', `/tmp/probe-${label}.log`])).stdout.split('\n').filter((l) => l !== '');
  const ok = log.filter((l) => l.startsWith('ok ')).map((l) => Number(l.slice(3)));
  const failed = log.filter((l) => l.startsWith('fail ')).map((l) => Number(l.slice(5)));
  const retried = new Set(log.filter((l) => l.startsWith('retry ')).map((l) => Number(l.slice(6))));
  const err = (await siteExec(site, 'cms1', ['cat', `/tmp/probe-${label}.err`], true)).stdout;
  // Every acknowledged write is in the NB.
  const inNb = new Set((await siteExec(site, 'central1', ['ovn-nbctl', ...t.nbArgs, '--timeout=20', '--bare', '--columns=name', 'list', 'Logical_Switch'])).stdout.split('\n').map((l) => l.trim()));
  const missing = ok.filter((i) => !inNb.has(`probe-${label}-${i}`));
  // The monitor: still the same process, and it saw the last acknowledged write.
  const last = ok[ok.length - 1];
  let monitorSawLast = false;
  for (let k = 0; k < 40 && !monitorSawLast; k++) {
    monitorSawLast = (await siteExec(site, 'worker1', ['grep', '-cE', `name=probe-${label}-${last}([^0-9]|$)`, `/tmp/mon-${label}.log`], true)).stdout.trim() !== '0';
    if (!monitorSawLast) await new Promise((r) => setTimeout(r, 500));
  }
  const monitorAlive = (await siteExec(site, 'worker1', ['kill', '-0', monPid], true)).code === 0;
  const monTail = (await siteExec(site, 'worker1', ['tail', '-3', `/tmp/mon-${label}.log`], true)).stdout;
  await siteExec(site, 'worker1', ['kill', monPid], true);
  return { result, attempted: ok.length + failed.length, ok: ok.length, failed, retried: retried.size, missing, err, monitorAlive, monitorSawLast, monTail };
}

/** No write lost or missing, the monitor session alive and up to date; the figures go to `figures`. */
export function expectClean(label: string, t: TrafficReport<unknown>, figures: Record<string, unknown>): void {
  figures[`${label}.probeWrites`] = { attempted: t.attempted, lost: t.failed.length, retriedAfterAFailedFirstAttempt: t.retried };
  expect(t.attempted, `${label}: probe writes attempted`).toBeGreaterThan(20);
  expect(t.failed, `${label}: probe writes lost\n${t.err.slice(-2000)}`).toEqual([]);
  expect(t.missing, `${label}: acknowledged writes missing from the NB`).toEqual([]);
  expect(t.monitorAlive, `${label}: the monitor session survived\n${t.monTail}`).toBe(true);
  expect(t.monitorSawLast, `${label}: the monitor saw the last write\n${t.monTail}`).toBe(true);
}
