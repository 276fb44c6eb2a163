import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');
// The one module allowed to spell the command: every other caller goes through it.
const WRAPPER = path.join('tools', 'systemctl.ts');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** Code without comments, so prose that names the command does not count. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** A string literal that starts with the command: an argv element or a command line to run. */
const SPELLED = /['"`]systemctl\b/;

describe('systemctl is called only through src/tools/systemctl.ts', () => {
  it('no other source file spells the command in a string', () => {
    const offenders = sources(SRC)
      .filter((f) => path.relative(SRC, f) !== WRAPPER)
      .filter((f) => SPELLED.test(code(readFileSync(f, 'utf8'))))
      .map((f) => path.relative(SRC, f));
    expect(offenders).toEqual([]);
  });

  it('the check sees a call written the way the old callers wrote it', () => {
    expect(SPELLED.test(code("await runner.run(['systemctl', 'disable', '--now', unit]);"))).toBe(true);
    expect(SPELLED.test(code('// systemctl is only named in prose here'))).toBe(false);
  });
});
