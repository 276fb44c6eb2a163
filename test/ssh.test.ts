import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RecordingRunner } from '../src/runner.js';
import { classifySshFailure, remoteCommand, shellQuote, Ssh, SshError } from '../src/tools/ssh.js';

const target = { name: 'h1', user: 'root', host: '10.0.0.5', port: 2222 };

describe('remote command quoting', () => {
  it('a POSIX shell turns the quoted line back into exactly the argv', () => {
    const argv = ['printf', '%s\\0', "it's", 'a b', '$HOME', '`id`', '"q"', '', 'x;y|z&', '\\', '*', 'ünï', 'new\nline'];
    const out = execFileSync('sh', ['-c', remoteCommand(argv)], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(argv.slice(2));
  });
  it('leaves plain words alone and refuses an empty command', () => {
    expect(shellQuote('/opt/ovn-deploy/current/dist/cli.js')).toBe('/opt/ovn-deploy/current/dist/cli.js');
    expect(shellQuote('--json')).toBe('--json');
    expect(shellQuote('')).toBe("''");
    expect(() => remoteCommand([])).toThrow(/empty/);
  });
});

describe('ssh failure kinds (OpenSSH messages)', () => {
  it.each([
    ['Host key verification failed.', 'host-key'],
    ['@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n', 'host-key'],
    ['No ED25519 host key is known for 10.0.0.5 and you have requested strict checking.\nHost key verification failed.', 'host-key'],
    ['root@10.0.0.5: Permission denied (publickey).', 'auth'],
    ['ssh: connect to host 10.0.0.5 port 22: Connection refused', 'unreachable'],
    ['ssh: connect to host 10.0.0.5 port 22: Connection timed out', 'unreachable'],
    ['ssh: connect to host 10.0.0.5 port 22: No route to host', 'unreachable'],
    ['ssh: Could not resolve hostname nope: Name or service not known', 'unreachable'],
  ])('%s -> %s', (stderr, kind) => {
    expect(classifySshFailure(stderr)).toBe(kind);
  });
});

describe('Ssh (mocked runner)', () => {
  it('always checks host keys, never prompts, multiplexes and uses only the given key', async () => {
    const rec = new RecordingRunner();
    const ssh = new Ssh(target, { knownHostsFile: '/k/known_hosts', identityFile: '/k/id', connectTimeoutSec: 4, controlDir: '/tmp/ctl', runner: rec });
    await ssh.run(['echo', 'a b']);
    const argv = rec.calls[0]?.argv ?? [];
    const opts = argv.filter((_, i) => argv[i - 1] === '-o');
    expect(opts).toEqual(
      expect.arrayContaining([
        'BatchMode=yes',
        'StrictHostKeyChecking=yes',
        'UserKnownHostsFile=/k/known_hosts',
        'IdentitiesOnly=yes',
        'ConnectTimeout=4',
        'ControlMaster=auto',
        'ControlPath=/tmp/ctl/%C',
      ]),
    );
    expect(argv.slice(-3)).toEqual(['10.0.0.5', '--', "timeout -k 5 60 echo 'a b'"]);
    expect(argv).toContain('2222');
    // The remote `timeout` fires first; the local kill is the backstop.
    expect(rec.calls[0]?.opts.timeoutMs).toBeGreaterThan(60_000);
  });

  it('exit 255 is ssh failing (kind from stderr); other codes are the remote command', async () => {
    const answers: Record<string, { exitCode: number; stderr: string }> = {
      hk: { exitCode: 255, stderr: 'Host key verification failed.\n' },
      down: { exitCode: 255, stderr: 'ssh: connect to host 10.0.0.5 port 2222: Connection refused\n' },
      cmd: { exitCode: 3, stderr: 'nope\n' },
      slow: { exitCode: 124, stderr: '' },
    };
    const rec = new RecordingRunner((argv) => answers[(argv[argv.length - 1] ?? '').split(' ').pop() ?? ''] ?? {});
    const ssh = new Ssh(target, { controlDir: '/tmp/ctl', runner: rec });
    await expect(ssh.run(['hk'])).rejects.toMatchObject({ kind: 'host-key' });
    await expect(ssh.run(['down'])).rejects.toMatchObject({ kind: 'unreachable' });
    await expect(ssh.run(['cmd'])).rejects.toMatchObject({ kind: 'command-failed', message: expect.stringContaining('nope') });
    expect((await ssh.run(['cmd'], { allowFailure: true })).exitCode).toBe(3);
    await expect(ssh.run(['slow'], { allowFailure: true })).rejects.toMatchObject({ kind: 'timeout' });
    await expect(ssh.run(['down'], { allowFailure: true })).rejects.toBeInstanceOf(SshError);
    await expect(new Ssh(target, { controlDir: '/tmp/ctl', runner: rec }).reachable()).resolves.toBe(true);
  });
});
