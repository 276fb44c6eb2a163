import { describe, expect, it } from 'vitest';
import { CommandError, DryRunRunner, RecordingRunner, ZxRunner, explainExitCode } from '../src/runner.js';

describe('ZxRunner', () => {
  it('returns stdout of a successful command', async () => {
    const r = await new ZxRunner().run(['sh', '-c', 'printf hello']);
    expect(r).toMatchObject({ stdout: 'hello', exitCode: 0 });
  });

  it('throws a CommandError with stderr and the meaning of the exit code', async () => {
    const err = await new ZxRunner().run(['sh', '-c', 'echo boom >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toMatch(/command failed \(exit 3\): sh -c/);
    expect((err as CommandError).message).toContain('boom');
  });

  it('reports a missing program as not found', async () => {
    const r = await new ZxRunner().run(['ovn-deploy-no-such-program-x'], { allowFailure: true });
    expect(r.exitCode).toBe(127);
    expect(explainExitCode(r.exitCode)).toBe('command not found');
  });

  it('kills a command that outlives its timeout', async () => {
    const started = Date.now();
    const r = await new ZxRunner().run(['sleep', '5'], { timeoutMs: 200, allowFailure: true });
    expect(r.exitCode).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe('DryRunRunner', () => {
  it('prints mutating commands and runs read-only queries', async () => {
    const printed: string[] = [];
    const inner = new RecordingRunner(() => ({ stdout: 'q' }));
    const dry = new DryRunRunner(inner, (l) => printed.push(l));
    await dry.run(['ip', 'link', 'add', 'x'], { netns: 'ns1' });
    const q = await dry.run(['ip', 'link', 'show'], { mutates: false });
    expect(printed).toEqual(['would run: ip netns exec ns1 ip link add x']);
    expect(q.stdout).toBe('q');
    expect(inner.calls.map((c) => c.argv)).toEqual([['ip', 'link', 'show']]);
  });
});

describe('ZxRunner stdin', () => {
  it('closes stdin when no input is given, so readers see EOF at once', async () => {
    const started = Date.now();
    const r = await new ZxRunner().run(['sh', '-c', 'cat; echo done'], { timeoutMs: 5000 });
    expect(r.stdout.trim()).toBe('done');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('feeds input to stdin', async () => {
    const r = await new ZxRunner().run(['cat'], { input: 'abc' });
    expect(r.stdout).toBe('abc');
  });
});
