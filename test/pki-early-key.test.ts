/**
 * `pki issue` starts its key before the commands load (src/pki/early-key.ts): which command lines
 * start one and of what size, that a key is handed out once and only for the size it was made
 * with, and, through the built CLI, that the key written has the size asked for in every
 * spelling of --key-bits, and that early-key.js loads first, for `pki issue` only.
 */
import { createPrivateKey } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot, pkiPaths } from '../src/paths.js';
import { requestedKeyBits, startEarlyKey, takeEarlyKey } from '../src/pki/early-key.js';
import { initPki } from '../src/pki/index.js';
import { startKey } from '../src/pki/keygen.js';

describe('requestedKeyBits: which command lines start a key early', () => {
  it('pki issue with the default, or --key-bits N / --key-bits=N within 2048-3072', () => {
    expect(requestedKeyBits(['pki', 'issue', '--dir', 'd', '--name', 'n', '--role', 'worker'])).toBe(2048);
    expect(requestedKeyBits(['pki', 'issue', '--dir', 'd', '--key-bits', '3072'])).toBe(3072);
    expect(requestedKeyBits(['pki', 'issue', '--key-bits=2560', '--dir', 'd'])).toBe(2560);
    // commander keeps the last of a repeated option
    expect(requestedKeyBits(['pki', 'issue', '--key-bits', '4096', '--key-bits', '2048'])).toBe(2048);
  });

  it('nothing for other commands, help, sizes that take seconds or are refused, and odd lines', () => {
    for (const args of [
      ['pki', 'sign-csr', '--dir', 'd'],
      ['pki', 'init', '--dir', 'd'],
      ['issue', 'pki'],
      ['pki', 'issue', '--help'],
      ['pki', 'issue', '-h'],
      ['pki', 'issue', '--key-bits', '4096'],
      ['pki', 'issue', '--key-bits', '1024'],
      ['pki', 'issue', '--key-bits', 'many'],
      ['pki', 'issue', '--key-bits', '2048.5'],
      ['pki', 'issue', '--key-bits'],
      ['pki', 'issue', '--', '--key-bits', '2048'],
    ]) {
      expect(requestedKeyBits(args), args.join(' ')).toBeUndefined();
    }
  });
});

describe('startEarlyKey / takeEarlyKey', () => {
  it('hands the key out once, for its own size only', async () => {
    startEarlyKey(['pki', 'issue', '--key-bits', '2048']);
    const pair = takeEarlyKey(2048);
    expect(pair).toBeDefined();
    expect(takeEarlyKey(2048)).toBeUndefined();
    const key = createPrivateKey((await pair!).privateKeyPem);
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);

    startEarlyKey(['pki', 'issue']);
    expect(takeEarlyKey(3072)).toBeUndefined(); // made for 2048: not used, and dropped
    expect(takeEarlyKey(2048)).toBeUndefined();
  });

  it("initPki takes a started key of its size for a new CA (up's sandbox CA), and leaves it for an existing CA", async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'pki-early-ca-'));
    try {
      const dir = path.join(tmp, 'pki');
      startKey(2048);
      await initPki(dir, { keyBits: 2048, commonName: 'early' });
      expect(takeEarlyKey(2048)).toBeUndefined(); // taken by the CA
      expect(createPrivateKey(readFileSync(pkiPaths(dir).caKey)).asymmetricKeyDetails?.modulusLength).toBe(2048);

      startKey(2048);
      await initPki(dir, { keyBits: 2048 }); // the CA exists: no key wanted
      expect(takeEarlyKey(2048)).toBeDefined();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('starts nothing for a line it is unsure of', () => {
    startEarlyKey(['pki', 'issue', '--key-bits', '8192']);
    expect(takeEarlyKey(8192)).toBeUndefined();
  });
});

const cli = path.join(packageRoot, 'dist', 'cli.js');
const hasDist = existsSync(cli);
if (!hasDist) console.warn('pki-early-key CLI tests skipped: dist/cli.js missing (run `npm run build`)');
const hook = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'module-log.mjs');

describe.skipIf(!hasDist)('through the built CLI', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pki-early-key-'));
  const dir = path.join(tmp, 'pki');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const run = (args: string[], log?: string) =>
    spawnSync(process.execPath, [...(log === undefined ? [] : ['--import', hook]), cli, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...(log === undefined ? {} : { OVN_DEPLOY_MODULE_LOG: log }) },
    });
  const bitsOf = (name: string) => createPrivateKey(readFileSync(pkiPaths(dir).key(name))).asymmetricKeyDetails?.modulusLength;

  it('the key written has the size asked for, however it is spelt (early or not)', () => {
    execFileSync(process.execPath, [cli, 'pki', 'init', '--dir', dir, '--key-bits', '2048', '--cn', 'early'], { stdio: 'ignore' });
    const cases: [string, string[], number][] = [
      ['default', [], 2048],
      ['spaced', ['--key-bits', '3072'], 3072],
      ['equals', ['--key-bits=3072'], 3072],
      ['repeated', ['--key-bits', '3072', '--key-bits', '2048'], 2048],
      ['large', ['--key-bits', '4096'], 4096],
    ];
    for (const [name, extra, bits] of cases) {
      const r = run(['pki', 'issue', '--dir', dir, '--name', name, '--role', 'worker', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      expect(bitsOf(name), name).toBe(bits);
    }
  });

  it('a refused pki issue still says why, exit 2', () => {
    const r = run(['pki', 'issue', '--dir', dir, '--name', 'bad name', '--role', 'worker']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('invalid certificate name');
  });

  it('early-key.js loads before the program and the pki command for pki issue, and not for other commands', () => {
    const modules = (args: string[]) => {
      const log = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.txt`);
      run(args, log);
      return readFileSync(log, 'utf8')
        .split('\n')
        .filter((u) => u.startsWith('file:'))
        .map((u) => path.relative(packageRoot, fileURLToPath(u)));
    };
    const issue = modules(['pki', 'issue', '--dir', dir, '--name', 'logged', '--role', 'worker']);
    const early = issue.indexOf('dist/pki/early-key.js');
    expect(early).toBeGreaterThan(-1);
    expect(early).toBeLessThan(issue.indexOf('dist/program.js'));
    expect(early).toBeLessThan(issue.indexOf('dist/commands/pki.js'));
    expect(modules(['--version'])).not.toContain('dist/pki/early-key.js');
    expect(modules(['pki', 'status', '--dir', dir])).not.toContain('dist/pki/early-key.js');
  });
});
