/**
 * Signed packages a CI pipeline can publish: `build rpms --sign-key` over the LTS pair's RPMs
 * (from the persistent cache every LTS test shares: built once per CI run, cached after)
 * with a key generated here (RSA: what every rpm verifies) in a GnuPG home under this test's temp
 * dir. Checked with the tools an operator uses: rpm -K in a scratch root with the exported key
 * imported, rpmlint, gpg --verify of repomd.xml, an install from the repository's own metadata
 * with rpm enforcing signatures, and a package changed after signing that fails.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildManifest, BuildSummary } from '../src/packaging/manifest.js';
import { ZxRunner } from '../src/runner.js';
import { ltsSourcesFor, persistentCcache, persistentLtsBuildCache, randomName, tmpDir } from './helpers/build-fixtures.js';
import { runCli, type CliResult } from './helpers/cli.js';

const LTS = ltsSourcesFor('signed RPM repository tests (test/build-sign.slow.test.ts)');
const skip = LTS === undefined;
const BUILD_MS = 30 * 60_000;
const runner = new ZxRunner();
const passphrase = `ci secret ${randomName('')}`;
let root: string;
let home: string;
let keyFile: string;
let passFile: string;
let fingerprint: string;
let out: string;
let first: CliResult;

const run = (argv: string[], allowFailure = false) => runner.run(argv, { timeoutMs: 120_000, allowFailure });
const gpg = (args: string[]) => run(['gpg', '--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase-file', passFile, ...args]);
const sha256 = async (f: string) => createHash('sha256').update(await fs.readFile(f)).digest('hex');

async function build(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const lts = LTS as { ovs: string; ovn: string };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await runCli(['build', 'rpms', '--ci', '--ovs-source', lts.ovs, '--ovn-source', lts.ovn, '--cache-dir', persistentLtsBuildCache, '--ccache-dir', persistentCcache, ...args]);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function rpmsIn(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).filter((f) => f.endsWith('.rpm')).sort();
}

async function scratchRoot(name: string, importKey: boolean): Promise<string> {
  const dir = path.join(root, name);
  await fs.mkdir(dir, { recursive: true });
  await run(['rpm', '--root', dir, '--initdb']);
  if (importKey) await run(['rpm', '--root', dir, '--import', path.join(out, 'repodata', 'repomd.xml.key')]);
  return dir;
}

/** The package files the repository's primary.xml names (its <location href>). */
async function repositoryLocations(dir: string): Promise<string[]> {
  const repomd = await fs.readFile(path.join(dir, 'repodata', 'repomd.xml'), 'utf8');
  const primary = /<data type="primary">[\s\S]*?<location href="([^"]+)"/.exec(repomd)?.[1] as string;
  const xml = gunzipSync(await fs.readFile(path.join(dir, primary))).toString('utf8');
  return [...xml.matchAll(/<location href="([^"]+)"/g)].map((m) => m[1] as string).sort();
}

async function walk(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => path.join(e.parentPath, e.name));
}

beforeAll(async () => {
  root = await tmpDir('build-sign');
  home = path.join(root, 'g');
  await fs.mkdir(home, { mode: 0o700 });
  passFile = path.join(root, 'passphrase');
  await fs.writeFile(passFile, passphrase, { mode: 0o600 });
  await gpg(['--quick-gen-key', 'ovn-deploy CI test <ci-test@example.invalid>', 'rsa2048', 'sign', '1d']);
  fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec((await gpg(['--with-colons', '--list-secret-keys'])).stdout)?.[1] as string;
  keyFile = path.join(root, 'signing-key.asc');
  await fs.writeFile(keyFile, (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout, { mode: 0o600 });
  out = path.join(root, 'out');
}, 120_000);

afterAll(async () => {
  await runner.run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], { allowFailure: true, timeoutMs: 30_000 });
  await fs.rm(root, { recursive: true, force: true });
});

describe('signed RPMs and their dnf repository', () => {
  it.skipIf(skip)('signs every RPM with the given key (passphrase from the environment) and writes a signed repository', async () => {
    first = await build(['--out', out, '--sign-key', keyFile], { OVN_DEPLOY_SIGN_PASSPHRASE: passphrase });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`signed with ${fingerprint}`);
    const rpms = await rpmsIn(out);
    expect(rpms).toHaveLength(8);

    // Without the key, rpm cannot vouch for them; with the exported key imported, every one checks out.
    const bare = await scratchRoot('no-key', false);
    const unknown = await run(['rpm', '--root', bare, '-K', ...rpms.map((f) => path.join(out, f))], true);
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stdout).toMatch(/SIGNATURES NOT OK/);
    const keyed = await scratchRoot('keyed', true);
    const checked = await run(['rpm', '--root', keyed, '-K', ...rpms.map((f) => path.join(out, f))]);
    expect(checked.stdout.trim().split('\n')).toEqual(rpms.map((f) => `${path.join(out, f)}: digests signatures OK`));
    // The signature is by our key: rpm names its key id.
    const sig = await run(['rpm', '-qp', '--qf', '%{RSAHEADER:pgpsig}\n', path.join(out, rpms[0] as string)]);
    expect(sig.stdout.toUpperCase()).toContain(fingerprint.slice(-16));

    const lint = await run(['rpmlint', ...rpms.map((f) => path.join(out, f))], true);
    expect(lint.stdout).not.toMatch(/no-signature/);
    console.log(`rpmlint on the signed RPMs: ${lint.stdout.trim().split('\n').at(-1)}`);

    // repomd.xml verifies against the exported public key alone (a fresh keyring).
    const verifier = path.join(root, 'verifier');
    await fs.mkdir(verifier, { mode: 0o700 });
    await run(['gpg', '--homedir', verifier, '--batch', '--import', path.join(out, 'repodata', 'repomd.xml.key')]);
    const verified = await run(['gpg', '--homedir', verifier, '--batch', '--status-fd', '1', '--verify', path.join(out, 'repodata', 'repomd.xml.asc'), path.join(out, 'repodata', 'repomd.xml')]);
    expect(verified.stdout).toContain(`[GNUPG:] VALIDSIG ${fingerprint}`);
    await runner.run(['gpgconf', '--homedir', verifier, '--kill', 'gpg-agent'], { allowFailure: true, timeoutMs: 30_000 });
    expect(await repositoryLocations(out)).toEqual(rpms);

    // Nothing secret in the output, nothing world-writable.
    expect((await run(['gpg', '--list-packets', path.join(out, 'repodata', 'repomd.xml.key')])).stdout).not.toMatch(/secret (sub)?key packet/);
    for (const p of await walk(out)) {
      const st = await fs.lstat(p);
      expect(st.mode & 0o002, p).toBe(0);
      if (st.isFile()) expect((await fs.readFile(p)).includes('PRIVATE KEY BLOCK'), p).toBe(false);
    }
    // The passphrase is in no log or output of the build.
    expect(first.stdout + first.stderr).not.toContain(passphrase);
    for (const p of [...(await walk(path.join(persistentLtsBuildCache, 'logs'))), ...(await walk(out))]) {
      if ((await fs.lstat(p)).isFile()) expect((await fs.readFile(p, 'utf8')).includes(passphrase), p).toBe(false);
    }

    // The summary lists every published file with its digest, the inputs and the key.
    const summary = JSON.parse(await fs.readFile(path.join(out, 'build-summary.json'), 'utf8')) as BuildSummary;
    expect(summary.ok).toBe(true);
    expect(summary.signing).toMatchObject({ fingerprint, repomdSignature: path.join(out, 'repodata', 'repomd.xml.asc'), publicKey: path.join(out, 'repodata', 'repomd.xml.key') });
    expect(summary.artifacts.map((a) => [a.name, a.version, a.signedBy])).toEqual([
      ['openvswitch', '3.3.8-1', fingerprint],
      ['ovn', '24.03.9-1', fingerprint],
    ]);
    const listed = summary.artifacts.flatMap((a) => a.outputs ?? []);
    expect(listed.map((o) => o.path).sort()).toEqual(rpms);
    for (const o of listed) expect(o.sha256, o.path).toBe(await sha256(path.join(out, o.path)));
    for (const a of summary.artifacts) expect(a.inputs).toMatchObject({ artifact: a.name, source: { version: a.version.replace(/-1$/, '') } });
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'build-manifest.json'), 'utf8')) as BuildManifest;
    expect(manifest.artifacts.flatMap((a) => a.files.map((f) => f.sha256)).sort()).toEqual(listed.map((o) => o.sha256).sort());
  }, BUILD_MS);

  it.skipIf(skip)('installs from the signed repository with signatures enforced; a package changed after signing fails', async () => {
    const target = await scratchRoot('install', true);
    const files = (await repositoryLocations(out)).filter((f) => /^(openvswitch|ovn|ovn-host)-\d/.test(f)).map((f) => path.join(out, f));
    expect(files).toHaveLength(3);
    // _pkgverify_level signature: rpm refuses any package whose signature it cannot verify.
    const strict = ['--define', '_pkgverify_level signature'];
    await run(['rpm', '--root', target, ...strict, '-i', '--nodeps', '--noscripts', ...files]);
    expect((await run(['rpm', '--root', target, '-q', 'ovn-host'])).stdout.trim()).toBe('ovn-host-24.03.9-1.x86_64');

    // One byte of the payload flipped after signing.
    const original = files.find((f) => path.basename(f).startsWith('ovn-host-')) as string;
    const tampered = path.join(root, 'tampered', path.basename(original));
    await fs.mkdir(path.dirname(tampered), { recursive: true });
    const bytes = await fs.readFile(original);
    const at = bytes.length - 1000;
    bytes[at] = (bytes[at] as number) ^ 0xff;
    await fs.writeFile(tampered, bytes);
    const k = await run(['rpm', '--root', target, '-K', tampered], true);
    expect(k.exitCode).not.toBe(0);
    expect(k.stdout).toMatch(/NOT OK/);
    const fresh = await scratchRoot('install-tampered', true);
    const refused = await run(['rpm', '--root', fresh, ...strict, '-i', '--nodeps', '--noscripts', tampered], true);
    expect(refused.exitCode).not.toBe(0);
    expect((await run(['rpm', '--root', fresh, '-qa'])).stdout).not.toMatch(/ovn-host/);
  }, BUILD_MS);

  it.skipIf(skip)('a second build with the same inputs and key changes no RPM; a key with its passphrase in a file works too', async () => {
    const before = Object.fromEntries(await Promise.all((await rpmsIn(out)).map(async (f) => [f, await sha256(path.join(out, f))] as const)));
    const again = await build(['--out', out, '--sign-key', keyFile, '--sign-passphrase-file', passFile]);
    expect(again.code, again.stderr).toBe(0);
    const after = Object.fromEntries(await Promise.all((await rpmsIn(out)).map(async (f) => [f, await sha256(path.join(out, f))] as const)));
    expect(after).toEqual(before);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'build-summary.json'), 'utf8')) as BuildSummary;
    expect(summary.artifacts.map((a) => a.cached)).toEqual([true, true]);
    // The repository metadata is re-signed and still verifies against the same key.
    const keyed = await scratchRoot('keyed-again', true);
    expect((await run(['rpm', '--root', keyed, '-K', ...Object.keys(after).map((f) => path.join(out, f))])).stdout).not.toMatch(/NOT OK/);
  }, BUILD_MS);
});
