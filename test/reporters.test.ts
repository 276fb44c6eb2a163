/**
 * test/reporters/skips.ts, through a real vitest run of a small fixture project named `slow`: a
 * skipped slow suite is listed loudly, and fails the run only when OVN_DEPLOY_REQUIRE_SLOW=1.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const fixture = path.join(import.meta.dirname, 'fixtures', 'skips');
const vitestBin = path.join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');

function run(env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [vitestBin, 'run', '--config', 'vitest.config.ts'], {
    cwd: fixture,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, OVN_DEPLOY_REQUIRE_SLOW: '', FIXTURE_SKIP: '', ...env },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the skips reporter', () => {
  it('a complete run passes and says so in one plain line', () => {
    const r = run({ OVN_DEPLOY_REQUIRE_SLOW: '1' });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^tests: 2 passed, 0 failed, 0 skipped$/m);
    expect(r.out).not.toMatch(/NOT EXECUTED/);
  });

  it('a skipped slow suite is listed loudly; the run passes when not required', () => {
    const r = run({ FIXTURE_SKIP: '1' });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/NOT EXECUTED: 1 skipped test\(s\), 1 slow file\(s\) that ran no test/);
    expect(r.out).toMatch(/skipped {2}slow: skipped\.fixture\.ts > needs the real thing > runs/);
    expect(r.out).toMatch(/no test {2}skipped\.fixture\.ts/);
    expect(r.out).toMatch(/^tests: 1 passed, 0 failed, 1 skipped$/m);
  });

  it('with OVN_DEPLOY_REQUIRE_SLOW=1 the same run fails', () => {
    const r = run({ FIXTURE_SKIP: '1', OVN_DEPLOY_REQUIRE_SLOW: '1' });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/FAILED: OVN_DEPLOY_REQUIRE_SLOW=1 and not every slow suite executed every test/);
  });
});
