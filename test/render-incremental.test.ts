/**
 * `render` into an --out it rendered before: nothing is rendered again when the inputs and every
 * file are as the last completed render left them, and any change to either (a file edited, even
 * with its old size and mtime put back; a file removed; a new CRL; another secret) renders again
 * and repairs exactly what differs. An unchanged bundle keeps its signature file, which is
 * replaced when it is not exactly the CA's signature of its manifest.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { appendFile, copyFile, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderInputsDigest, type RenderInputs } from '../src/bundle/render-inputs.js';
import { RENDER_RECORD } from '../src/bundle/write.js';
import { bundleSource } from '../src/paths.js';
import { initPki, refreshCrl } from '../src/pki/index.js';
import { runCli } from './helpers/cli.js';
import { renderFixtureDir, renderFixtureSite } from './helpers/render-fixture.js';

interface Summary {
  hosts: { host: string; written: string[]; unchanged: number; removed: string[] }[];
}

let dir: string;
let pkiDir: string;
const secretFile = path.join(renderFixtureDir, 'metadata-secret');

async function render(out: string, secret = secretFile): Promise<Summary> {
  const r = await runCli(['render', '--inventory', renderFixtureSite, '--out', out, '--pki', pkiDir, '--metadata-secret-file', secret, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Summary;
}

const written = (s: Summary): string[] => s.hosts.flatMap((h) => h.written.map((f) => `${h.host}/${f}`)).sort();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'od-render-incr-'));
  pkiDir = path.join(dir, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'render-incremental' });
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('render into its own --out again', () => {
  it('renders nothing when nothing changed, and the record that says so is 0600', async () => {
    const out = path.join(dir, 'same');
    const first = await render(out);
    expect(written(first).length).toBe(160);
    const before = statSync(path.join(out, 'worker1', 'manifest.json'), { bigint: true });
    const second = await render(out);
    expect(written(second)).toEqual([]);
    expect(second.hosts.find((h) => h.host === 'worker1')?.unchanged).toBe(28);
    // Not even rewritten with the same bytes: the inode and change time are the first render's.
    const after = statSync(path.join(out, 'worker1', 'manifest.json'), { bigint: true });
    expect([after.ino, after.ctimeNs]).toEqual([before.ino, before.ctimeNs]);
    expect((await stat(path.join(out, RENDER_RECORD))).mode & 0o777).toBe(0o600);
  });

  it('repairs an edited file even when its size and mtime are put back, and a removed one', async () => {
    const out = path.join(dir, 'edited');
    await render(out);
    const conf = path.join(out, 'worker2', bundleSource('/etc/ovn-deploy/stunnel/stunnel-client.conf'));
    const good = await readFile(conf);
    // Same length, one byte different, the old timestamps to the nanosecond (touch -r): only
    // the change time tells.
    const times = path.join(dir, 'times');
    await writeFile(times, '');
    execFileSync('touch', ['-r', conf, times]);
    const evil = Buffer.from(good);
    evil[evil.length - 2] = evil[evil.length - 2] === 0x41 ? 0x42 : 0x41;
    await writeFile(conf, evil);
    execFileSync('touch', ['-r', times, conf]);
    expect(statSync(conf, { bigint: true }).mtimeNs).toBe(statSync(times, { bigint: true }).mtimeNs);
    expect(written(await render(out))).toEqual([`worker2/${bundleSource('/etc/ovn-deploy/stunnel/stunnel-client.conf')}`]);
    expect((await readFile(conf)).equals(good)).toBe(true);
    await unlink(path.join(out, 'central3', bundleSource('/etc/ovn-deploy/firewall.nft')));
    expect(written(await render(out))).toEqual([`central3/${bundleSource('/etc/ovn-deploy/firewall.nft')}`]);
    expect(written(await render(out))).toEqual([]);
  });

  it('renders again when an input changes: a new CRL, another metadata secret', async () => {
    const out = path.join(dir, 'inputs');
    await render(out);
    await refreshCrl(pkiDir);
    const crl = written(await render(out));
    // Every host's CRL and the manifest (checksum) and signature that cover it, nothing else.
    expect(crl.filter((f) => f.endsWith('crl.pem')).length).toBe(6);
    expect(crl.every((f) => /(crl\.pem|manifest\.json|manifest\.sig)$/.test(f))).toBe(true);
    const other = path.join(dir, 'other-secret');
    await writeFile(other, 'another-shared-secret-0123456789abcdef\n');
    const secret = written(await render(out, other));
    expect(secret.filter((f) => f.endsWith('metadata-secret.ini'))).toEqual([`worker1/${bundleSource('/etc/ovn-deploy/metadata-agent/metadata-secret.ini')}`]);
  });

  it('keeps a signature only when it is exactly the CA signature of the manifest', async () => {
    const out = path.join(dir, 'sig');
    await render(out);
    const sig = path.join(out, 'worker1', 'manifest.sig');
    const good = await readFile(sig, 'utf8');
    // Still a valid signature, in another JSON layout: replaced by the canonical file.
    await writeFile(sig, JSON.stringify(JSON.parse(good)));
    expect(written(await render(out))).toEqual(['worker1/manifest.sig']);
    expect(await readFile(sig, 'utf8')).toBe(good);
    // A signature of another CA over the same manifest: replaced.
    const otherPki = path.join(dir, 'other-pki');
    await initPki(otherPki, { keyBits: 2048, commonName: 'someone else' });
    const foreign = path.join(dir, 'foreign');
    const r = await runCli(['render', '--inventory', renderFixtureSite, '--out', foreign, '--pki', otherPki, '--metadata-secret-file', secretFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    await copyFile(path.join(foreign, 'worker1', 'manifest.sig'), sig);
    expect(written(await render(out))).toEqual(['worker1/manifest.sig']);
    expect(await readFile(sig, 'utf8')).toBe(good);
    await appendFile(sig, ' ');
    expect(written(await render(out))).toEqual(['worker1/manifest.sig']);
  });
});

describe('renderInputsDigest', () => {
  const base: RenderInputs = {
    inventory: { site: 's', hosts: [{ name: 'a' }] },
    caBundlePem: 'ca',
    crlPem: 'crl',
    signerCertPem: 'signer',
    metadataSecret: 'secret',
    generator: 'ovn-deploy 1',
  };
  it.each([
    ['inventory', { inventory: { site: 's', hosts: [{ name: 'b' }] } }],
    ['CA bundle', { caBundlePem: 'ca2' }],
    ['CRL', { crlPem: 'crl2' }],
    ['signing CA', { signerCertPem: 'signer2' }],
    ['metadata secret', { metadataSecret: 'secret2' }],
    ['no metadata secret', { metadataSecret: undefined }],
    ['generator', { generator: 'ovn-deploy 2' }],
  ] as [string, Partial<RenderInputs>][])('changes with the %s', (_what, change) => {
    expect(renderInputsDigest({ ...base, ...change })).not.toBe(renderInputsDigest(base));
  });
  it('is stable for equal inputs', () => {
    expect(renderInputsDigest({ ...base })).toBe(renderInputsDigest(base));
    expect(renderInputsDigest(base)).toMatch(/^[0-9a-f]{64}$/);
  });
});

