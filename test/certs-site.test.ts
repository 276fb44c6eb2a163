/**
 * The certificate lifecycle's host side and its guards, without daemons: the host-side steps a
 * real host runs over SSH (`certs host ...`, certs/host-files.ts: a key made and kept on the host,
 * put in place with the previous one kept, restored; only public files written, never through a
 * symlink), the PKI refusing to sign for a host revoked by `certs revoke` until `certs reinstate`,
 * and the CLI's selection of a site (`--inventory` + `--pki`) against the sandbox (`--dir`).
 * The same flows over real SSH on the container site are in site.slow.test.ts.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPendingPair, keyMatchesOnHost, pendingKeyCsr, publicFileOf, readPublicFile, restorePreviousPair, writePublicFile } from '../src/certs/host-files.js';
import { siteEndpoints } from '../src/certs/site-endpoints.js';
import { ExitError } from '../src/errors.js';
import { hostPaths } from '../src/paths.js';
import { markHostRevoked, reinstateHost } from '../src/pki/host-revocation.js';
import { generateKeyPair, initPki, signCsr } from '../src/pki/index.js';
import forge from 'node-forge';
import { parseInventory } from '../src/inventory/index.js';
import { siteTopology } from '../src/site/topology.js';
import { stringify } from 'yaml';
import { runCli } from './helpers/cli.js';

let root: string;
let caDir: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'od-certs-site-'));
  caDir = path.join(root, 'pki-ca');
  await initPki(caDir, { keyBits: 2048, commonName: 'host-side' });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const mode = async (f: string) => (await fs.stat(f)).mode & 0o777;

/** A new pending key on the host and the CA's certificate for it (what a rotation sends back). */
async function pendingWithCert(hp: ReturnType<typeof hostPaths>, name: string): Promise<string> {
  const csr = await pendingKeyCsr(hp, { name, sans: [name], keyBits: 2048 });
  return (await signCsr(caDir, csr, { role: 'worker', name, sans: [name], host: name })).certPem;
}

describe('the host side of a rotation (certs host, host-files.ts)', () => {
  it('a new key waits in the pending slot (0600); install puts it in place with its certificate and keeps the previous key as key.prev; restore puts that back', async () => {
    const hp = hostPaths(path.join(root, 'h1'));
    const csr1 = await pendingKeyCsr(hp, { name: 'worker1', sans: ['worker1'], keyBits: 2048 });
    expect(csr1).toMatch(/BEGIN CERTIFICATE REQUEST/);
    expect(csr1).not.toMatch(/PRIVATE KEY/);
    expect(await mode(hp.pki.keyNext)).toBe(0o600);
    const cert1 = (await signCsr(caDir, csr1, { role: 'worker', name: 'worker1', sans: ['worker1'], host: 'worker1' })).certPem;
    await installPendingPair(hp, cert1);
    const first = await fs.readFile(hp.pki.key, 'utf8');
    expect(await fs.readFile(hp.pki.cert, 'utf8')).toBe(cert1);
    expect(await mode(hp.pki.key)).toBe(0o600);
    expect(await mode(hp.pki.cert)).toBe(0o644);
    await expect(fs.stat(hp.pki.keyNext)).rejects.toThrow(/ENOENT/);
    const cert2 = await pendingWithCert(hp, 'worker1');
    const second = await fs.readFile(hp.pki.keyNext, 'utf8');
    await installPendingPair(hp, cert2);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(second);
    expect(await fs.readFile(hp.pki.cert, 'utf8')).toBe(cert2);
    expect(await keyMatchesOnHost(hp)).toBe(true);
    expect(await fs.readFile(`${hp.pki.key}.prev`, 'utf8')).toBe(first);
    expect(await mode(`${hp.pki.key}.prev`)).toBe(0o600);
    await restorePreviousPair(hp, cert1);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(first);
    expect(await fs.readFile(hp.pki.cert, 'utf8')).toBe(cert1);
    expect(await mode(hp.pki.key)).toBe(0o600);
    expect(await keyMatchesOnHost(hp)).toBe(true);
    // A host that had no certificate before goes back to none, with its previous key.
    await restorePreviousPair(hp, undefined);
    await expect(fs.stat(hp.pki.cert)).rejects.toThrow(/ENOENT/);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(first);
    // Nothing pending: installing again is refused rather than losing the key.
    await expect(installPendingPair(hp, cert2)).rejects.toThrow(/no pending key/);
  });

  it('a certificate that is not the pending key\'s is refused (exit 2) before anything changes: key, certificate, pending key and key.prev stay as they were', async () => {
    const hp = hostPaths(path.join(root, 'h-mismatch'));
    await installPendingPair(hp, await pendingWithCert(hp, 'worker5'));
    const stranger = await pendingWithCert(hostPaths(path.join(root, 'h-stranger')), 'worker5');
    await pendingKeyCsr(hp, { name: 'worker5', sans: ['worker5'], keyBits: 2048 });
    const read = async () => Promise.all([hp.pki.key, hp.pki.cert, hp.pki.keyNext, `${hp.pki.key}.prev`].map(async (f) => fs.readFile(f, 'utf8').catch(() => 'absent')));
    const before = await read();
    const err = await installPendingPair(hp, stranger).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(2);
    expect((err as ExitError).message).toContain(hp.pki.keyNext);
    expect(await read()).toEqual(before);
    expect(before[3]).toBe('absent');
  });

  it('a pending key already there (an interrupted rotation) is reused, never replaced; one of another size or not a key is refused (exit 2) and left as it was', async () => {
    const hp = hostPaths(path.join(root, 'h-pending'));
    const csr1 = await pendingKeyCsr(hp, { name: 'worker9', sans: ['worker9'], keyBits: 2048 });
    const pending = await fs.readFile(hp.pki.keyNext, 'utf8');
    const csr2 = await pendingKeyCsr(hp, { name: 'worker9', sans: ['worker9', '10.0.0.9'], keyBits: 2048 });
    expect(await fs.readFile(hp.pki.keyNext, 'utf8')).toBe(pending);
    const publicKeyOf = (csr: string) => forge.pki.publicKeyToPem(forge.pki.certificationRequestFromPem(csr).publicKey as forge.pki.rsa.PublicKey);
    expect(publicKeyOf(csr2)).toBe(publicKeyOf(csr1));
    for (const [content, why] of [
      [(await generateKeyPair(3072)).privateKeyPem, /not an RSA key of 2048 bits \(it has 3072\)/],
      ['not a key at all\n', /not an RSA key of 2048 bits;/],
    ] as const) {
      await fs.writeFile(hp.pki.keyNext, content, { mode: 0o600 });
      const err = await pendingKeyCsr(hp, { name: 'worker9', sans: ['worker9'], keyBits: 2048 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExitError);
      expect((err as ExitError).exitCode).toBe(2);
      expect((err as ExitError).message).toContain(hp.pki.keyNext);
      expect((err as ExitError).message).toMatch(why);
      expect(await fs.readFile(hp.pki.keyNext, 'utf8')).toBe(content);
    }
  });

  it('key-matches compares on the host: true for the installed pair, false once the key changes', async () => {
    const hp = hostPaths(path.join(root, 'h2'));
    const cert = await pendingWithCert(hp, 'worker2');
    await writePublicFile(hp, { kind: 'cert', backup: false }, cert);
    expect(await keyMatchesOnHost(hp)).toBe(false);
    await installPendingPair(hp, cert);
    expect(await keyMatchesOnHost(hp)).toBe(true);
    await pendingKeyCsr(hp, { name: 'worker2', sans: ['worker2'], keyBits: 2048 });
    await fs.rename(hp.pki.keyNext, hp.pki.key);
    expect(await keyMatchesOnHost(hp)).toBe(false);
  });

  it('only the public TLS files are named; a symlink where a file goes is refused and never followed', async () => {
    const hp = hostPaths(path.join(root, 'h3'));
    expect(publicFileOf(hp, hp.pki.cert)).toEqual({ kind: 'cert', backup: false });
    expect(publicFileOf(hp, `${hp.pki.crl}.prev`)).toEqual({ kind: 'crl', backup: true });
    expect(publicFileOf(hp, hp.pki.key)).toBeUndefined();
    expect(publicFileOf(hp, '/etc/shadow')).toBeUndefined();
    await fs.mkdir(hp.pki.dir, { recursive: true });
    const victim = path.join(root, 'victim.txt');
    await fs.writeFile(victim, 'keep me');
    await fs.symlink(victim, hp.pki.crl);
    await expect(writePublicFile(hp, { kind: 'crl', backup: false }, '-----BEGIN X509 CRL-----\n')).rejects.toThrow(/not a regular file/);
    await expect(writePublicFile(hp, { kind: 'crl', backup: false }, undefined)).rejects.toThrow(/not a regular file/);
    expect(await fs.readFile(victim, 'utf8')).toBe('keep me');
    // Nor read through: the host would hand another file's content to the admin machine.
    await expect(readPublicFile(hp, { kind: 'crl', backup: false })).rejects.toThrow(/not a regular file/);
    // The same for the key's backup slot: a planted link there is not replaced through.
    await installPendingPair(hp, await pendingWithCert(hp, 'w3'));
    const next = await pendingWithCert(hp, 'w3');
    await fs.symlink(victim, `${hp.pki.key}.prev`);
    await expect(installPendingPair(hp, next)).rejects.toThrow(/not a regular file/);
    expect(await fs.readFile(victim, 'utf8')).toBe('keep me');
    // Nor the certificate written through a link planted where it goes.
    await fs.rm(`${hp.pki.key}.prev`);
    await fs.rename(hp.pki.cert, path.join(root, 'h3-cert-moved.pem'));
    await fs.symlink(victim, hp.pki.cert);
    await expect(installPendingPair(hp, next)).rejects.toThrow(/not a regular file/);
    expect(await fs.readFile(victim, 'utf8')).toBe('keep me');
  });

  it('`certs host write` refuses a private key or non-PEM on stdin (exit 2); `read` of a missing file exits 3', async () => {
    const hostRoot = path.join(root, 'h4');
    const absent = await runCli(['certs', 'host', 'read', 'crl', '--root', hostRoot]);
    expect(absent.code).toBe(3);
    const bad = await runCli(['certs', 'host', 'read', 'key', '--root', hostRoot]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a public TLS file kind: key/);
    const bits = await runCli(['certs', 'host', 'new-key', '--name', 'x', '--key-bits', '512', '--root', hostRoot]);
    expect(bits.code).toBe(2);
    expect(bits.stderr).toMatch(/--key-bits: expected 2048 to 8192/);
    const name = await runCli(['certs', 'host', 'new-key', '--name', 'a\nb', '--key-bits', '2048', '--root', hostRoot]);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/--name: expected a certificate name/);
    const san = await runCli(['certs', 'host', 'new-key', '--name', 'w1', '--san', 'x y', '--key-bits', '2048', '--root', hostRoot]);
    expect(san.code).toBe(2);
    expect(san.stderr).toMatch(/--san: at most 64/);
  });
});

/** runCli with `input` as its stdin (what `certs` sends over SSH). */
async function runCliWithStdin(args: readonly string[], input: string): ReturnType<typeof runCli> {
  const real = Object.getOwnPropertyDescriptor(process, 'stdin');
  Object.defineProperty(process, 'stdin', { configurable: true, get: () => Readable.from([Buffer.from(input)]) });
  try {
    return await runCli(args);
  } finally {
    if (real !== undefined) Object.defineProperty(process, 'stdin', real);
  }
}

describe('`certs host install-pair` / `restore-pair` (what a site rotation runs over SSH)', () => {
  it('installs the certificate on stdin with the pending key, and restores the previous pair; a private key or no certificate on stdin is refused (exit 2), changing nothing', async () => {
    const hostRoot = path.join(root, 'h6');
    const hp = hostPaths(hostRoot);
    const args = (cmd: string, ...more: string[]) => ['certs', 'host', cmd, ...more, '--root', hostRoot];
    const cert1 = await pendingWithCert(hp, 'worker6');
    expect((await runCliWithStdin(args('install-pair'), cert1)).code).toBe(0);
    const key1 = await fs.readFile(hp.pki.key, 'utf8');
    const cert2 = await pendingWithCert(hp, 'worker6');
    const pending = await fs.readFile(hp.pki.keyNext, 'utf8');
    for (const [input, why] of [
      [pending, /stdin holds no certificate/],
      [`${cert2}${pending}`, /stdin holds a private key/],
    ] as const) {
      const r = await runCliWithStdin(args('install-pair'), input);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toMatch(/PRIVATE KEY|at .*\.ts:/);
      expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(key1);
      expect(await fs.readFile(hp.pki.keyNext, 'utf8')).toBe(pending);
    }
    expect((await runCliWithStdin(args('install-pair'), cert2)).code).toBe(0);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(pending);
    expect(await fs.readFile(hp.pki.cert, 'utf8')).toBe(cert2);
    const refused = await runCliWithStdin(args('restore-pair'), pending);
    expect(refused.code).toBe(2);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(pending);
    expect((await runCliWithStdin(args('restore-pair'), cert1)).code).toBe(0);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(key1);
    expect(await fs.readFile(hp.pki.cert, 'utf8')).toBe(cert1);
    expect((await runCliWithStdin(args('restore-pair', '--no-cert'), '')).code).toBe(0);
    await expect(fs.stat(hp.pki.cert)).rejects.toThrow(/ENOENT/);
    expect(await fs.readFile(hp.pki.key, 'utf8')).toBe(key1);
  });
});

describe('a revoked host gets nothing signed until it is reinstated', () => {
  it('signCsr for the host is refused (exit 2, naming `certs reinstate`); after reinstate it is signed again', async () => {
    const pkiDir = path.join(root, 'pki-rev');
    await initPki(pkiDir, { keyBits: 2048, commonName: 'rev' });
    const hp = hostPaths(path.join(root, 'h5'));
    const csr = await pendingKeyCsr(hp, { name: 'worker9', sans: ['worker9'], keyBits: 2048 });
    await markHostRevoked(pkiDir, 'worker9', { reason: 'keyCompromise' });
    const refused = await signCsr(pkiDir, csr, { role: 'worker', name: 'worker9', sans: ['worker9'], host: 'worker9' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ExitError);
    expect((refused as ExitError).exitCode).toBe(2);
    expect((refused as ExitError).message).toMatch(/host worker9 was revoked .*keyCompromise.*certs reinstate worker9/s);
    // Another host is not affected.
    const other = await pendingKeyCsr(hostPaths(path.join(root, 'h6')), { name: 'worker8', sans: ['worker8'], keyBits: 2048 });
    await expect(signCsr(pkiDir, other, { role: 'worker', name: 'worker8', sans: ['worker8'], host: 'worker8' })).resolves.toMatchObject({ name: 'worker8' });
    expect(await reinstateHost(pkiDir, 'worker9')).toMatchObject({ reason: 'keyCompromise' });
    expect(await reinstateHost(pkiDir, 'worker9')).toBeUndefined();
    await expect(signCsr(pkiDir, csr, { role: 'worker', name: 'worker9', sans: ['worker9'], host: 'worker9' })).resolves.toMatchObject({ name: 'worker9' });
  });

  it('`certs reinstate` of a host that is not revoked is bad input', async () => {
    const r = await runCli(['certs', 'reinstate', 'nobody', '--dir', path.join(root, 'no-sandbox')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nobody is not a revoked host/);
  });
});

describe('certs on a site: selection and endpoints', () => {
  it('--inventory needs --pki, and --dir with --inventory is refused (exit 2, nothing contacted)', async () => {
    const noPki = await runCli(['certs', 'status', '--inventory', path.join(root, 'site.yaml')]);
    expect(noPki.code).toBe(2);
    expect(noPki.stderr).toMatch(/--pki: expected the site's PKI directory/);
    const both = await runCli(['certs', 'rotate', '--inventory', 'site.yaml', '--pki', 'p', '--dir', '/x']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--dir: either --dir \(the sandbox\) or --inventory \(a site\), not both/);
    const pkiOnly = await runCli(['certs', 'status', '--pki', 'p']);
    expect(pkiOnly.code).toBe(2);
    expect(pkiOnly.stderr).toMatch(/--pki: only with --inventory/);
  });

  it('the timer of a site runs `certs rotate` with the whole selector, absolute paths', async () => {
    const r = await runCli(['certs', 'timer', '--cron', '--inventory', 'site.yaml', '--pki', 'pki', '--known-hosts', 'kh', '--identity', 'id', '--bin', '/usr/bin/ovn-deploy']);
    expect(r.code).toBe(0);
    const cwd = process.cwd();
    expect(r.stdout).toContain(`certs rotate --inventory ${cwd}/site.yaml --pki ${cwd}/pki --known-hosts ${cwd}/kh --identity ${cwd}/id --connect-timeout 10 >>`);
  });

  it("a site's endpoints: each central's server (NB, SB on its address) and client, each other host's client; the host's own files", () => {
    const inv = parseInventory(
      stringify({
        site: 'lab',
        hosts: [
          { name: 'c1', roles: ['central'], addresses: ['10.0.0.11'] },
          { name: 'c2', roles: ['central'], addresses: ['10.0.0.12'] },
          { name: 'w1', roles: ['worker'], addresses: ['10.0.0.21'], encap: { ip: '10.0.0.21' } },
          { name: 'ops', roles: ['cms'], addresses: ['10.0.0.31'] },
        ],
      }),
      'site.yaml',
    ).inventory;
    const hp = hostPaths();
    const eps = siteEndpoints(inv, siteTopology(inv), () => ({ paths: hp }));
    expect(eps.map((e) => [e.host, e.role, e.stunnel.side, e.stunnel.tunnelProbe?.remote ?? e.stunnel.listeners.map((l) => `${l.host}:${l.port}/${l.db}`).join(' ')])).toEqual([
      ['c1', 'central', 'server', '10.0.0.11:6641/nb 10.0.0.11:6642/sb'],
      ['c1', 'central', 'client', `unix:${hp.ovsdbSocket('c2', 'nb')}`],
      ['c2', 'central', 'server', '10.0.0.12:6641/nb 10.0.0.12:6642/sb'],
      ['c2', 'central', 'client', `unix:${hp.ovsdbSocket('c1', 'nb')}`],
      ['w1', 'worker', 'client', `unix:${hp.ovsdbSocket('c1', 'sb')}`],
      ['ops', 'cms', 'client', `unix:${hp.ovsdbSocket('c1', 'nb')}`],
    ]);
    for (const e of eps) expect([e.certPath, e.keyPath, e.caFile, e.crlFile]).toEqual([hp.pki.cert, hp.pki.key, hp.pki.caBundle, hp.pki.crl]);
  });
});
