import { spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitError } from '../src/errors.js';
import { sandboxPaths } from '../src/paths.js';
import { clearDeadPkiLock } from '../src/sandbox/certs.js';
import { acquireLock, mkdirpTracked, readState, writeState, type SandboxState } from '../src/sandbox/state.js';
import { isAlive, readProcStat } from '../src/supervisor/proc.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'od-state-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('sandbox state file', () => {
  it('round-trips and refuses a file of another kind', async () => {
    const paths = sandboxPaths(path.join(tmp, 'rt'));
    expect(await readState(paths)).toBeUndefined();
    const s: SandboxState = { version: 1, id: 'ab12', stateDir: paths.dir, createdDirs: [paths.dir], namespaces: ['odab12-ul'], workers: 2, vms: ['vm1'], datapath: 'netdev', phase: 'starting', updatedAt: '' };
    await writeState(paths, s);
    expect(await readState(paths)).toMatchObject({ id: 'ab12', namespaces: ['odab12-ul'], phase: 'starting', datapath: 'netdev' });
    await writeFile(paths.state, '{"version": 7}');
    await expect(readState(paths)).rejects.toThrow(/not a sandbox state file/);
    await writeFile(paths.state, '{');
    await expect(readState(paths)).rejects.toThrow(/not valid JSON/);
  });

  it('mkdirpTracked reports only the directories it created, outermost first', async () => {
    const created = await mkdirpTracked(path.join(tmp, 'a', 'b', 'c'));
    expect(created).toEqual([path.join(tmp, 'a'), path.join(tmp, 'a', 'b'), path.join(tmp, 'a', 'b', 'c')]);
    expect(await mkdirpTracked(path.join(tmp, 'a', 'b', 'c'))).toEqual([]);
  });
});

describe('a PKI lock left by a killed up', () => {
  it('is removed when its holder is dead, and kept while it lives', async () => {
    const dir = path.join(tmp, 'pki');
    await mkdir(dir, { recursive: true });
    const lock = path.join(dir, '.lock');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(lock, `${child.pid}\n`);
    expect(clearDeadPkiLock(dir)).toBe(false);
    expect(existsSync(lock)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(clearDeadPkiLock(dir)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });
});

describe('sandbox lock', () => {
  it('is exclusive while its holder lives and taken over from a dead holder', async () => {
    const lockFile = path.join(tmp, 'lock', 'up.lock');
    const held = await acquireLock(lockFile, 'test');
    expect((await readFile(lockFile, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    // Held by a live process other than us (named as src/lock.ts names a holder).
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(lockFile, `${child.pid} ${readProcStat(child.pid ?? 0)?.startTicks} ${readlinkSync('/proc/self/ns/pid')}\n`);
    const err = await acquireLock(lockFile, 'test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).message).toMatch(new RegExp(`pid ${child.pid}`));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(isAlive(child.pid ?? 0)).toBe(false);
    const again = await acquireLock(lockFile, 'test');
    await again.release();
    await held.release();
  });
});
