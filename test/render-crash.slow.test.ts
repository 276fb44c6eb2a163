/**
 * `render` killed with SIGKILL at random moments: every file under --out is, at every moment,
 * the complete content of one of the two renders involved (never a torn or empty file), and the
 * next complete `render` converges to exactly its own output (temp files of killed runs removed).
 * Drives the built CLI (`npm run build` first) on a 150-host site so that a kill often lands in
 * the write phase; the test also checks that it did.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RENDER_RECORD } from '../src/bundle/write.js';
import { isTempFile } from '../src/fsx.js';
import { cliPath } from '../src/paths.js';

const HOSTS = 150;
const KILLS = 34;
// About 70% of these kills land while bundles are staged (seen: 11 and 12 of 16): 8 miss them all with p < 0.001.
const FRESH_KILLS = 8;

/** Two sites with the same hosts: the site name feeds every loopback address, so nearly every file differs. */
function siteYaml(site: string): string {
  const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const lines = [`site: ${site}`, 'hosts:'];
  for (let i = 1; i <= HOSTS; i++) {
    if (i <= 3) lines.push(`  - { name: central${i}, addresses: [${ip(i)}], roles: [central] }`);
    else lines.push(`  - { name: worker${i}, addresses: [${ip(i)}], roles: [worker], encap: { type: geneve, ip: ${ip(i + 65536)} } }`);
  }
  return `${lines.join('\n')}\n`;
}

/** rel path -> content of every file below `dir`. */
function tree(dir: string, prefix = '', into = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const e of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) tree(dir, rel, into);
    else into.set(rel, readFileSync(path.join(dir, rel)));
  }
  return into;
}

/** The files of a render's output other than its record, sorted as the record lists them. */
const bundleFiles = (ref: Map<string, Buffer>): string[] => [...ref.keys()].filter((r) => r !== RENDER_RECORD).sort();

/**
 * The record holds inodes and change times, so it is never byte-equal to a reference render's:
 * it must parse whole, cover only files of the two renders, and claim a completed render only
 * with exactly one render's files.
 */
function expectWholeRecord(content: Buffer, when: string): void {
  let record: { format?: number; files?: string[]; inputs?: string };
  try {
    record = JSON.parse(content.toString('utf8')) as typeof record;
  } catch {
    throw new Error(`${when}: ${RENDER_RECORD} is torn (${content.length} bytes)`);
  }
  const known = new Set([...bundleFiles(refs.a), ...bundleFiles(refs.b)]);
  if (record.format !== 1 || !Array.isArray(record.files) || !record.files.every((f) => known.has(f))) throw new Error(`${when}: ${RENDER_RECORD} is not a record of these renders`);
  if (record.inputs !== undefined) {
    const files = JSON.stringify(record.files);
    if (files !== JSON.stringify(bundleFiles(refs.a)) && files !== JSON.stringify(bundleFiles(refs.b))) throw new Error(`${when}: ${RENDER_RECORD} claims a completed render of neither site`);
  }
}

let tmp: string;
let pkiDir: string;
const sites: { a: string; b: string } = { a: '', b: '' };
const refs: { a: Map<string, Buffer>; b: Map<string, Buffer> } = { a: new Map(), b: new Map() };

const renderArgs = (site: string, out: string) => [cliPath, 'render', '--inventory', site, '--out', out, '--pki', pkiDir];
const renderSync = (site: string, out: string) => execFileSync(process.execPath, renderArgs(site, out), { stdio: ['ignore', 'ignore', 'inherit'] });

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-render-crash-'));
  // render signs every manifest with the site CA key: a real PKI.
  pkiDir = path.join(tmp, 'pki');
  execFileSync(process.execPath, [cliPath, 'pki', 'init', '--dir', pkiDir, '--key-bits', '2048', '--cn', 'render-crash'], { stdio: 'ignore' });
  for (const k of ['a', 'b'] as const) {
    sites[k] = path.join(tmp, `site-${k}.yaml`);
    writeFileSync(sites[k], siteYaml(`crash-${k}`));
    renderSync(sites[k], path.join(tmp, `ref-${k}`));
    refs[k] = tree(path.join(tmp, `ref-${k}`));
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('render killed with -9', () => {
  it('leaves every file complete old or complete new, and the next render converges', async () => {
    const out = path.join(tmp, 'out');
    renderSync(sites.b, out);
    // A run that rewrites nearly every file sets the range of kill delays.
    let started = Date.now();
    renderSync(sites.a, out);
    const fullMs = Date.now() - started;
    let mixed = 0;
    let temps = 0;
    for (let k = 0; k < KILLS; k++) {
      const site = k % 2 === 0 ? sites.b : sites.a;
      // Uniform over the whole run: start-up, rendering and the write phase.
      const delay = Math.floor(Math.random() * fullMs * 1.1);
      const child = spawn(process.execPath, renderArgs(site, out), { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      await new Promise<void>((resolve) => child.on('exit', () => resolve()));
      clearTimeout(timer);

      let fromA = 0;
      let fromB = 0;
      for (const [rel, content] of tree(out)) {
        if (isTempFile(rel)) {
          temps++;
          continue;
        }
        if (rel === RENDER_RECORD) {
          expectWholeRecord(content, `kill ${k} after ${delay} ms`);
          continue;
        }
        const isA = refs.a.get(rel)?.equals(content) === true;
        const isB = refs.b.get(rel)?.equals(content) === true;
        if (!isA && !isB) throw new Error(`kill ${k} after ${delay} ms: ${rel} is neither render's content (${content.length} bytes)`);
        if (isA && !isB) fromA++;
        if (isB && !isA) fromB++;
      }
      if (fromA > 0 && fromB > 0) mixed++;
    }
    console.log(`render: ${fullMs} ms; ${KILLS} kills: ${mixed} left a mix of both renders, ${temps} temp files left in total`);
    // Some kills must have landed in the write phase, or this test proved nothing.
    expect(mixed + temps).toBeGreaterThan(0);

    started = Date.now();
    renderSync(sites.b, out);
    const after = tree(out);
    expect([...after.keys()].filter(isTempFile), "temp files after the converging render").toEqual([]);
    expect([...after.keys()].sort()).toEqual([...refs.b.keys()].sort());
    for (const [rel, content] of after) if (rel !== RENDER_RECORD) expect(content.equals(refs.b.get(rel) ?? Buffer.alloc(0)), rel).toBe(true);
    const record = JSON.parse(after.get(RENDER_RECORD)?.toString('utf8') ?? '{}') as { files?: string[]; inputs?: string };
    expect(record.files).toEqual(bundleFiles(refs.b));
    expect(record.inputs).toMatch(/^[0-9a-f]{64}$/);
    console.log(`converging render: ${Date.now() - started} ms`);
  });

  it('a first render into a new --out, killed: each bundle is there whole or not at all, nothing but the record and a staging directory is left, and the next render converges', async () => {
    const started = Date.now();
    renderSync(sites.a, path.join(tmp, 'fresh-timing'));
    const fullMs = Date.now() - started;
    let partial = 0;
    let staged = 0;
    for (let k = 0; k < FRESH_KILLS; k++) {
      const out = path.join(tmp, `fresh-${k}`);
      const delay = Math.floor(Math.random() * fullMs * 1.1);
      const child = spawn(process.execPath, renderArgs(sites.a, out), { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      await new Promise<void>((resolve) => child.on('exit', () => resolve()));
      clearTimeout(timer);
      const when = `kill ${k} after ${delay} ms`;
      let names: string[];
      try {
        names = readdirSync(out);
      } catch {
        continue; // killed before it made --out
      }
      const hosts = names.filter((n) => n !== RENDER_RECORD && !n.startsWith('.render-staging-'));
      if (names.some((n) => n.startsWith('.render-staging-'))) staged++;
      if (hosts.length > 0 && hosts.length < HOSTS) partial++;
      // --out is render's (a record) before anything else is in it: the next render accepts it.
      if (names.length > 0) expect(names, when).toContain(RENDER_RECORD);
      for (const [rel, content] of tree(out)) {
        if (rel.startsWith('.render-staging-')) continue;
        if (rel === RENDER_RECORD) expectWholeRecord(content, when);
        else expect(refs.a.get(rel)?.equals(content), `${when}: ${rel}`).toBe(true);
      }
      for (const host of hosts) {
        const want = bundleFiles(refs.a).filter((r) => r.startsWith(`${host}/`));
        expect([...tree(path.join(out, host)).keys()].map((r) => `${host}/${r}`).sort(), `${when}: ${host} is whole`).toEqual(want);
      }
      renderSync(sites.a, out);
      const after = tree(out);
      expect([...after.keys()].filter((r) => r !== RENDER_RECORD).sort(), when).toEqual(bundleFiles(refs.a));
      for (const [rel, content] of after) if (rel !== RENDER_RECORD) expect(content.equals(refs.a.get(rel) ?? Buffer.alloc(0)), `${when}: ${rel}`).toBe(true);
      rmSync(out, { recursive: true, force: true });
    }
    console.log(`fresh render: ${fullMs} ms; ${FRESH_KILLS} kills: ${staged} left a staging directory, ${partial} left some bundles but not all`);
    // Some kills must have landed while the bundles were staged or being renamed, or this proved nothing.
    expect(staged + partial).toBeGreaterThan(0);
  });
});
