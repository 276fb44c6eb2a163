import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');

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

/** Source files (relative to src/) other than `owner` whose code matches `pattern`. */
function offenders(pattern: RegExp, owner: string): string[] {
  return sources(SRC)
    .map((f) => path.relative(SRC, f))
    .filter((f) => f !== owner && pattern.test(code(readFileSync(path.join(SRC, f), 'utf8'))));
}

/** An array literal whose first element is a daemon's program: an argv being built (a list of binaries to look for is not). */
// A bare 'stunnel' is also a TLS mode's name (tls.mode: stunnel | native): only its binaries count.
const DAEMON_ARGV = /(?<!binaries:\s*)\[\s*['"`]((\/usr\/s?bin\/)?(ovsdb-server|ovs-vswitchd|ovn-northd|ovn-controller|stunnel4|neutron-ovn-metadata-agent)|\/usr\/s?bin\/stunnel)['"`]\s*,/;

/** A value import of handlebars (a type-only import is erased and loads nothing). */
const HANDLEBARS = /^import (?!type )[^;]*from 'handlebars'/m;

describe('one module per concept', () => {
  it('systemctl: no source file but src/tools/systemctl.ts spells the command in a string', () => {
    expect(offenders(SPELLED, path.join('tools', 'systemctl.ts'))).toEqual([]);
  });

  it("daemon argv: no source file but src/render/services.ts builds a daemon's command line (the sandbox and real hosts run what it renders)", () => {
    expect(offenders(DAEMON_ARGV, path.join('render', 'services.ts'))).toEqual([]);
  });

  it('templates: no source file but src/templates.ts loads handlebars', () => {
    expect(offenders(HANDLEBARS, 'templates.ts')).toEqual([]);
  });

  it('signals: no source file but src/supervisor/proc.ts calls process.kill (src/packaging/ is its own tool)', () => {
    expect(offenders(/process\.kill\(/, path.join('supervisor', 'proc.ts')).filter((f) => !f.startsWith(`packaging${path.sep}`))).toEqual([]);
  });

  it('the checks see code written the way the old callers wrote it', () => {
    expect(SPELLED.test(code("await runner.run(['systemctl', 'disable', '--now', unit]);"))).toBe(true);
    expect(SPELLED.test(code('// systemctl is only named in prose here'))).toBe(false);
    expect(DAEMON_ARGV.test(code("argv: [\n      'ovsdb-server',\n      db,"))).toBe(true);
    expect(DAEMON_ARGV.test(code("argv: ['/usr/bin/ovn-controller', `unix:${sock}`]"))).toBe(true);
    expect(DAEMON_ARGV.test(code("{ binaries: ['ovn-northd'], packages }"))).toBe(false);
    expect(DAEMON_ARGV.test(code("{ binaries: ['stunnel4', 'stunnel'], packages }"))).toBe(false);
    expect(HANDLEBARS.test("import Handlebars from 'handlebars';")).toBe(true);
    expect(HANDLEBARS.test("import type Handlebars from 'handlebars';")).toBe(false);
  });
});
