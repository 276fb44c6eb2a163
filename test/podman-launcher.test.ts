/**
 * The own supervisor's podman launcher (PODMAN_FOREGROUND, without its mounts), driven with a fake
 * podman (a shell script): whether real podman's agent exits in time is not what is checked here,
 * but that SIGTERM makes the launcher run `podman stop` of its container and wait for it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PODMAN_FOREGROUND, PODMAN_STOP_TIME_S } from '../src/metadata/agent-command.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'od-podman-launcher-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `run` ignores SIGTERM until `stop NAME` was called (an agent slow to exit; at most 15 s); `stop` records its arguments. */
const FAKE_PODMAN = `#!/bin/sh
dir=$(dirname "$0")
case "$1" in
  run) trap '' TERM; echo started > "$dir/run"; n=0; while [ ! -e "$dir/stopped" ] && [ $n -lt 300 ]; do sleep 0.05; n=$((n+1)); done; exit 0 ;;
  stop) shift; echo "$*" > "$dir/stopped.tmp"; mv "$dir/stopped.tmp" "$dir/stopped" ;;
esac
`;

async function waitForFile(file: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 25));
  if (!existsSync(file)) throw new Error(`${file} did not appear`);
}

describe('podman launcher (fake podman script)', () => {
  it('on SIGTERM runs `podman stop --time N NAME` of its container and exits as podman run did', async () => {
    const podman = path.join(tmp, 'podman');
    writeFileSync(podman, FAKE_PODMAN, { mode: 0o755 });
    const child = spawn('/bin/sh', ['-c', PODMAN_FOREGROUND, 'ovn-deploy-podman', 'od1-w1-metadata', podman, 'run', '--rm', '--name', 'od1-w1-metadata', 'img'], { stdio: 'ignore', detached: true });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitForFile(path.join(tmp, 'run'));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
    // Failed: the launcher and its fake podman, as a process group of their own.
    if (typeof code === 'string' && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    expect(code).toBe(0);
    expect(readFileSync(path.join(tmp, 'stopped'), 'utf8').trim()).toBe(`--time ${PODMAN_STOP_TIME_S} od1-w1-metadata`);
  });
});
