/**
 * Says loudly what did not run, and makes a run that was meant to be complete fail for it.
 *
 * Every slow suite skips itself when what it drives is missing (root, a program, an OVN source),
 * so a run could be green with none of the real tests executed. After the run this reporter lists
 * every skipped test with its file, and every slow file that executed no test at all. With
 * OVN_DEPLOY_REQUIRE_SLOW=1 (scripts/test.sh sets it for the full run as root, so CI has it) any of
 * those fails the run. Last, one plain `tests: N passed, N failed, N skipped` line for the whole run.
 */
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

const SLOW_PROJECT = 'slow';

interface Tally {
  passed: number;
  failed: number;
  skipped: string[];
  silentSlowFiles: string[];
}

export function tally(modules: ReadonlyArray<TestModule>, root: string): Tally {
  const t: Tally = { passed: 0, failed: 0, skipped: [], silentSlowFiles: [] };
  for (const m of modules) {
    const file = path.relative(root, m.moduleId);
    let executed = 0;
    for (const test of m.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') t.passed++;
      else if (state === 'failed') t.failed++;
      if (state === 'passed' || state === 'failed') executed++;
      else t.skipped.push(`${m.project.name}: ${file} > ${test.fullName}`);
    }
    // A file that failed to load has no tests but has failed: vitest reports that one itself.
    if (m.project.name === SLOW_PROJECT && executed === 0 && m.state() !== 'failed') t.silentSlowFiles.push(file);
  }
  return t;
}

export default class SkipsReporter implements Reporter {
  private root = process.cwd();

  onInit(ctx: { config: { root: string } }): void {
    this.root = ctx.config.root;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const t = tally(modules, this.root);
    const strict = process.env.OVN_DEPLOY_REQUIRE_SLOW === '1';
    const slowSkipped = t.skipped.filter((s) => s.startsWith(`${SLOW_PROJECT}: `));
    const out: string[] = [];
    if (t.skipped.length > 0 || t.silentSlowFiles.length > 0) {
      out.push('', '!'.repeat(78), `!! NOT EXECUTED: ${t.skipped.length} skipped test(s), ${t.silentSlowFiles.length} slow file(s) that ran no test`);
      for (const s of t.skipped) out.push(`!!   skipped  ${s}`);
      for (const f of t.silentSlowFiles) out.push(`!!   no test  ${f}`);
      out.push('!! (each suite printed why above: root, a missing program, no OVN source)', '!'.repeat(78));
    }
    if (strict && (slowSkipped.length > 0 || t.silentSlowFiles.length > 0)) {
      out.push('FAILED: OVN_DEPLOY_REQUIRE_SLOW=1 and not every slow suite executed every test');
      process.exitCode = 1;
    }
    out.push(`tests: ${t.passed} passed, ${t.failed} failed, ${t.skipped.length} skipped`);
    process.stdout.write(`${out.join('\n')}\n`);
  }
}
