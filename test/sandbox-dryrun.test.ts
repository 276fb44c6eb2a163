import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingRunner } from '../src/runner.js';
import { up } from '../src/sandbox/up.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'od-dry-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('up --dry-run (mocked runner)', () => {
  it('prints the commands and daemons it would start, runs no mutating command and writes nothing', async () => {
    const stateDir = path.join(tmp, 'sandbox');
    const printed: string[] = [];
    const inner = new RecordingRunner();
    const r = await up({ stateDir, workers: 2, datapath: 'netdev', supervisor: 'own', dryRun: true, progress: 'silent', installPackages: true, print: (l) => printed.push(l), runner: inner });
    const prefix = r.plan.names.prefix;
    const text = printed.join('\n');
    expect(text).toContain(`would run: ip netns add ${prefix}-ul`);
    expect(text).toContain(`would run: ip netns add ${prefix}-vm2`);
    // The daemons as each host's rendered bundle runs them (the real renderer, the host's root).
    expect(text).toMatch(new RegExp(`would start central-ovn-nb-ovsdb: ip netns exec \\S+-central /usr/sbin/ovsdb-server ${stateDir}/hosts/central/var/lib/ovn/ovnnb_db.db`));
    expect(text).toMatch(/would start worker2-ovn-controller: ip netns exec \S+-w2 \/usr\/bin\/ovn-controller/);
    expect(text).toMatch(/would run: ovn-nbctl .* --may-exist lr-add router1/);
    expect(text).toMatch(/would ping vm1 -> vm2/);
    // Each daemon is announced once, not once per start phase.
    expect(printed.filter((l) => l.startsWith('would start central-ovn-nb-ovsdb'))).toHaveLength(1);
    // Only read-only queries reached the real runner.
    for (const c of inner.calls) expect(c.opts.mutates, c.argv.join(' ')).toBe(false);
    expect(existsSync(stateDir)).toBe(false);
  });
});
