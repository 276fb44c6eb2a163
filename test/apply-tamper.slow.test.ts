/**
 * Signed bundles on a real host (a podman container of test/helpers/site-hosts.ts, reached by
 * `deploy` over SSH): after a deploy converged the host (and pinned the site CA), every bundle
 * changed after `render` is refused by `apply` with exit 2 and a message naming the file or field,
 * and the host's files are unchanged: a listing of /etc, /var/lib/ovn-deploy and /usr/lib/systemd
 * (path, type, mode, owner, size, mtime, SHA-256) is the same before and after. The untampered
 * bundle still applies (exit 0), so the refusals come from the bundle, not from a broken host.
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki } from '../src/pki/index.js';
import { pkiPaths } from '../src/paths.js';
import { pemCertificatesOf } from '../src/bundle/signature.js';
import { createTestSite, type TestSite } from './helpers/site-hosts.js';
import { cli, requireBuiltCli } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('apply-tamper.slow.test.ts: skipped, needs root (podman containers)');

const MIN = 60_000;
const HOST = 'central1';
const BUNDLE = '/var/lib/ovn-deploy/bundle';
const APPLY = ['node', '/opt/ovn-deploy/current/dist/cli.js', 'apply', '--json'];
/** Every file and directory of the watched trees, with what a change of any kind would alter. */
const LISTING = [
  'sh',
  '-c',
  'find /etc /var/lib/ovn-deploy /usr/lib/systemd -xdev -printf "%p %y %m %u:%g %s %T@\\n" | sort; ' +
    'find /etc /var/lib/ovn-deploy /usr/lib/systemd -xdev -type f -print0 | sort -z | xargs -0 sha256sum',
];

describe.skipIf(notRoot)('apply refuses a tampered bundle on a real host and changes nothing', () => {
  let site: TestSite;
  let work: string;

  const exec = async (argv: string[], allowFailure = false) => {
    const r = await site.exec(HOST, argv);
    if (!allowFailure && r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** A copy of the deployed bundle at `dir` on the host, changed by the shell snippet `change`. */
  const tampered = async (dir: string, change: string): Promise<void> => {
    await exec(['sh', '-ec', `rm -rf ${dir}; cp -a ${BUNDLE} ${dir}; cd ${dir}; ${change}`]);
  };

  beforeAll(async () => {
    requireBuiltCli();
    site = await createTestSite({ centrals: 1, workers: 0 });
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'od-tamper-test-'));
    const sshArgs = ['--known-hosts', site.knownHostsFile, '--identity', site.identityFile];
    const r = await cli(['deploy', '--inventory', site.inventoryFile, '--pki', site.pkiDir, ...sshArgs, '--json'], { timeoutMs: 20 * MIN });
    if (r.code !== 0) throw new Error(`deploy exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    // The pin deploy's first apply made: the site CA, which signed the bundle.
    const pin = await exec(['cat', '/var/lib/ovn-deploy/trusted-ca.pem']);
    const pinned = pemCertificatesOf(pin.stdout).map((c) => c.fingerprint256);
    expect(pinned).toEqual([new X509Certificate(await fs.readFile(pkiPaths(site.pkiDir).caCert)).fingerprint256]);
    // Another CA, as an attacker holding their own PKI would sign with.
    await initPki(path.join(work, 'evil-pki'), { keyBits: 2048, commonName: 'evil' });
  }, 30 * MIN);

  afterAll(async () => {
    await site?.cleanup();
    if (work !== undefined) await fs.rm(work, { recursive: true, force: true });
  }, 10 * MIN);

  const cases: { name: string; change: () => Promise<string>; stderr: RegExp }[] = [
    {
      name: 'manifest edited: a file placed at /etc/shadow',
      change: async () => `sed -i 's#"/etc/ovn-deploy/firewall.nft"#"/etc/shadow"#' manifest.json; grep -q /etc/shadow manifest.json`,
      stderr: /manifest\.sig: signature: does not match manifest\.json/,
    },
    {
      name: 'manifest edited: mode 04755 (one byte of its JSON)',
      change: async () => `sed -i '0,/"mode": 420/s//"mode": 2541/' manifest.json; grep -q '"mode": 2541' manifest.json`,
      stderr: /manifest\.sig: signature: does not match manifest\.json/,
    },
    {
      name: 'a file changed after render (the stunnel server config)',
      change: async () => `echo 'exec = /bin/sh' >> files/etc%2Fovn-deploy%2Fstunnel%2Fstunnel-server.conf`,
      stderr: /files\/etc%2Fovn-deploy%2Fstunnel%2Fstunnel-server\.conf: files\[\d+\]\.sha256: checksum mismatch/,
    },
    {
      name: 'a file added that the manifest does not list',
      change: async () => `mkdir -p files/etc/cron.d; echo '* * * * * root id' > files/etc/cron.d/evil`,
      stderr: /files\/etc\/cron\.d\/evil: files: is in the bundle but not in its manifest/,
    },
    {
      name: 'the signature removed',
      change: async () => 'rm manifest.sig',
      stderr: /manifest\.sig: cannot read the manifest signature.*no such file/,
    },
    {
      name: 'manifest changed and signed again by a CA the host does not trust',
      change: async () => {
        const { bundleSigner } = await import('../src/deploy/site-pki.js');
        const { signManifest } = await import('../src/bundle/signature.js');
        const manifest = await site.exec(HOST, ['cat', `${BUNDLE}/manifest.json`]);
        const edited = Buffer.from(manifest.stdout.replace('"/etc/ovn-deploy/firewall.nft"', '"/etc/shadow"'), 'utf8');
        const evil = await bundleSigner(path.join(work, 'evil-pki'));
        const sig = signManifest(edited, evil.key, evil.certPem);
        return `printf '%s' '${edited.toString('base64')}' | base64 -d > manifest.json; printf '%s' '${Buffer.from(sig).toString('base64')}' | base64 -d > manifest.sig`;
      },
      stderr: /manifest\.sig: signer: signed by CA [0-9a-f]{16}…, which this host does not trust/,
    },
  ];

  it.each(cases.map((c, i) => [c.name, i] as const))('%s: exit 2, named in the message, the host unchanged', async (_name, i) => {
    const c = cases[i];
    if (c === undefined) throw new Error('no case');
    const dir = `/root/tampered-${i}`;
    await tampered(dir, await c.change());
    const before = (await exec(LISTING)).stdout;
    const r = await exec([...APPLY, '--bundle', dir], true);
    const after = (await exec(LISTING)).stdout;
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(c.stderr);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
    expect(before.split('\n').length).toBeGreaterThan(100);
    expect(after).toBe(before);
  }, 5 * MIN);

  it('the untampered bundle still applies: nothing to change', async () => {
    const r = await exec([...APPLY, '--bundle', BUNDLE], true);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { changes: unknown[] }).changes).toEqual([]);
  }, 5 * MIN);
});
