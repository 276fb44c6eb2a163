/**
 * Golden files for EVERY file render produces for the fixture site (every role and combination).
 * After an intended change: `UPDATE_GOLDEN=1 npx vitest run test/render-golden.test.ts`, then
 * review the diff of test/golden/render/.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderSite } from '../src/render/index.js';
import { fixtureInventory, fixtureOptions, fixturePki, goldenRenderDir } from './helpers/render-fixture.js';

function listGolden(dir: string, prefix = ''): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? listGolden(dir, path.join(prefix, e.name)) : [path.join(prefix, e.name)]));
}

const rendered = renderSite(fixtureInventory(), fixturePki(), fixtureOptions());

describe('render golden files', () => {
  if (process.env.UPDATE_GOLDEN === '1') {
    rmSync(goldenRenderDir, { recursive: true, force: true });
    for (const [rel, f] of rendered) {
      const file = path.join(goldenRenderDir, rel);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, f.content);
    }
  }

  it('renders exactly the files in test/golden/render (none missing, none extra)', () => {
    expect([...rendered.keys()].sort()).toEqual(listGolden(goldenRenderDir).sort());
  });

  it.each([...rendered.keys()].sort())('%s matches its golden file', (rel) => {
    const golden = readFileSync(path.join(goldenRenderDir, rel), 'utf8');
    expect(String(rendered.get(rel)?.content)).toBe(golden);
  });
});
