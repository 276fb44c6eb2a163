/**
 * The PKI stays consistent when killed at any point (issue #12, item 8): `pki issue` and
 * `pki sign-csr` through the built CLI, each SIGKILLed at a random moment of its run, 60 times.
 * Afterwards (the next command that changes the PKI finishes or drops what a killed one left) every certificate file is in the
 * index with its serial, every index entry that is current has its file, no temporary file is
 * left anywhere in the PKI, and every certificate ever signed can be revoked: the CRL lists them all.
 */
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPath, pkiPaths } from '../src/paths.js';
import { readIndex } from '../src/pki/index.js';
import { requireBuiltCli } from './sandbox-helpers.js';

const KILLS = 60;
const BATCH = 40;

/** A small seeded PRNG (mulberry32): a failing run can be repeated with its printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the CLI and SIGKILLs it after `killAfterMs` (if still running); resolves with how it ended. */
function runAndKill(args: string[], killAfterMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - started });
    });
  });
}

function cliSync(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const strip = (serial: string): string => serial.toLowerCase().replace(/^0+/, '');

async function filesBelow(d: string): Promise<string[]> {
  return (await fs.readdir(d, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(d, path.join(e.parentPath, e.name)));
}

describe('pki killed with -9 at random moments', () => {
  let root: string;
  let dir: string;
  const seed = Number(process.env.PKI_CRASH_SEED ?? Date.now() % 1_000_000);
  const figures = { seed, kills: 0, finished: 0, killedMidway: 0, issueMs: 0, batchMs: 0 };
  const csrs: string[] = [];

  beforeAll(async () => {
    requireBuiltCli();
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'pki-crash-'));
    dir = path.join(root, 'pki');
    expect(cliSync(['pki', 'init', '--dir', dir, '--key-bits', '2048', '--cn', 'crash']).code).toBe(0);
    // A batch of CSRs makes the window in which files are written (and a kill tears most) wide.
    for (let i = 0; i < BATCH; i++) {
      const csr = path.join(root, `h${i}.csr`);
      spawnSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(root, `h${i}.key`), '-subj', `/CN=host${i}`, '-out', csr]);
      csrs.push(csr);
    }
  });

  afterAll(async () => {
    console.log(`pki-crash figures: ${JSON.stringify(figures)}`);
    if (root !== undefined) await fs.rm(root, { recursive: true, force: true });
  });

  it(`${KILLS} kills of issue and sign-csr leave an index that matches the certificate files, and every certificate revocable`, async () => {
    const random = prng(seed);
    // How long one uninterrupted run takes: the kills are spread over that window.
    const issue = (name: string) => ['pki', 'issue', '--dir', dir, '--name', name, '--role', 'worker'];
    const batch = ['pki', 'sign-csr', '--dir', dir, '--csr', ...csrs, '--role', 'worker'];
    // The median of three uninterrupted runs each: one cold run (first key generation, disk
    // caches) can take twice as long as the rest, and kills timed from it mostly came too late.
    const typicalMs = (argv: (k: number) => string[]): number => {
      const ms = [0, 1, 2].map((k) => {
        const t0 = Date.now();
        expect(cliSync(argv(k)).code).toBe(0);
        return Date.now() - t0;
      });
      return ms.sort((a, b) => a - b)[1] ?? 0;
    };
    figures.issueMs = typicalMs((k) => issue(`warmup${k}`));
    figures.batchMs = typicalMs(() => batch);
    for (let i = 0; i < KILLS; i++) {
      const isBatch = i % 2 === 1;
      const typical = isBatch ? figures.batchMs : figures.issueMs;
      // Anywhere from the middle of start-up to past the end of a typical run.
      const r = await runAndKill(isBatch ? batch : issue(`w${i % 7}`), Math.floor(typical * (0.4 + 0.7 * random())));
      figures.kills++;
      if (r.signal === 'SIGKILL') figures.killedMidway++;
      else {
        figures.finished++;
        expect(r.code, isBatch ? 'sign-csr batch' : 'issue').toBe(0);
      }
    }
    expect(figures.killedMidway).toBeGreaterThan(KILLS / 3);

    // The next command that changes the PKI (here: re-signing the CRL) recovers whatever the
    // killed ones left, and takes over the lock a killed one held without waiting it out.
    const t1 = Date.now();
    const next = cliSync(['pki', 'crl', '--dir', dir]);
    expect(next.code, next.out).toBe(0);
    expect(Date.now() - t1).toBeLessThan(20_000);
    const p = pkiPaths(dir);
    const leftovers = (await filesBelow(dir)).filter((f) => /\.tmp$|\.lock$/.test(f));
    expect(leftovers).toEqual([]);

    const index = await readIndex(dir);
    const certFiles = (await fs.readdir(path.dirname(p.cert('x')))).filter((f) => f.endsWith('.crt'));
    expect(certFiles.length).toBeGreaterThan(0);
    for (const f of certFiles) {
      const serial = strip(new X509Certificate(await fs.readFile(path.join(path.dirname(p.cert('x')), f))).serialNumber);
      const entry = index.find((e) => strip(e.serial) === serial);
      expect(entry, `${f} (serial ${serial}) is not in the index`).toBeDefined();
      expect(entry?.status, f).toBe('valid');
      expect(`${entry?.name}.crt`).toBe(f);
    }
    // Each name has one current certificate, and it is the file on disk.
    const current = index.filter((e) => e.status === 'valid');
    expect(current.map((e) => `${e.name}.crt`).sort()).toEqual(certFiles.sort());

    // Every certificate the CA ever signed here is revocable: the CRL lists every serial in the index.
    for (const name of new Set(index.map((e) => e.name))) {
      const r = cliSync(['pki', 'revoke', '--dir', dir, '--name', name]);
      expect(r.code, r.out).toBe(0);
    }
    const crl = spawnSync('openssl', ['crl', '-in', p.crl, '-noout', '-text'], { encoding: 'utf8' }).stdout;
    const listed = new Set([...crl.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => strip(m[1] as string)));
    const after = await readIndex(dir);
    expect(after.length).toBe(index.length);
    expect(after.length).toBeGreaterThanOrEqual(figures.finished + 1);
    for (const e of after) {
      expect(e.status, `${e.name} ${e.serial}`).toBe('revoked');
      expect(listed.has(strip(e.serial)), `${e.name} ${e.serial} is not in the CRL`).toBe(true);
    }
  }, 600_000);
});
