import { runCli, type CliResult } from './helpers/cli.js';
import { execFileSync } from 'node:child_process';
import { lchownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/apply/bundle.js';
import { runApply } from '../src/apply/index.js';
import { BINARIES } from '../src/render/services.js';
import { changesOf, planApply, type Observed } from '../src/apply/plan.js';
import { renderApplyReport } from '../src/apply/render-report.js';
import type { BundleManifestInput } from '../src/bundle/manifest.js';
import { manifestSchema } from '../src/bundle/manifest.js';
import { InputError } from '../src/errors.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { readVerifiedCsr } from '../src/pki/csr.js';
import { fixtureSigner, fixtureTrust, fixtureTrusted, FixtureRunner, signBundle, oneBoxManifest, RecordedServices, sha256, writeBundle } from './helpers/apply-fixture.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-test-'));
let pkiDir: string;
let otherPkiDir: string;
let caPem: string;
let crlPem: string;

beforeAll(async () => {
  pkiDir = path.join(tmp, 'pki');
  otherPkiDir = path.join(tmp, 'pki-other');
  await Promise.all([initPki(pkiDir, { keyBits: 2048, commonName: 'apply-test' }), initPki(otherPkiDir, { keyBits: 2048, commonName: 'other' })]);
  caPem = readFileSync(pkiPaths(pkiDir).caBundle, 'utf8');
  crlPem = readFileSync(pkiPaths(pkiDir).crl, 'utf8');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let seq = 0;
function fresh(): { root: string; bundle: string } {
  const d = path.join(tmp, `case${++seq}`);
  return { root: path.join(d, 'root'), bundle: path.join(d, 'bundle') };
}

function oneBox(c: { root: string; bundle: string }, edit: (m: Omit<BundleManifestInput, 'files'>) => void = () => undefined) {
  const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
  edit(manifest);
  return writeBundle(c.bundle, manifest, files, c.root);
}

/** Every file (not directory) under dir. */
function walk(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  for (const e of entries) {
    const p = path.join(dir, e);
    out = statSync(p).isDirectory() ? [...out, ...walk(p)] : [...out, p];
  }
  return out;
}

async function expectInputError(p: Promise<unknown>): Promise<InputError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

const apply = (c: { root: string; bundle: string }, runner: FixtureRunner, services: RecordedServices, more: Partial<Parameters<typeof runApply>[0]> = {}) =>
  runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner, services, healthTimeoutMs: 1_000, ...more });

/** Signs the CSR a needs-certificate apply left, with the test PKI (as `deploy` does). */
async function signFor(csr: string, dir = pkiDir, name = 'box1', sans = ['box1', '192.0.2.10']): Promise<string> {
  return (await signCsr(dir, csr, { role: 'central', name, sans })).certPem;
}

describe('apply: bundle verification (nothing is changed on bad input)', () => {
  it('reports a wrong checksum, a missing file and a file outside files/ with file and dot-path', async () => {
    const c = fresh();
    const m = oneBox(c);
    writeFileSync(path.join(c.bundle, m.files[0]?.source ?? ''), 'tampered\n');
    rmSync(path.join(c.bundle, m.files[1]?.source ?? ''));
    const raw = JSON.parse(readFileSync(path.join(c.bundle, 'manifest.json'), 'utf8')) as { files: { source: string }[] };
    if (raw.files[2] !== undefined) raw.files[2].source = 'files/../manifest.json';
    writeFileSync(path.join(c.bundle, 'manifest.json'), JSON.stringify(raw));
    // Signed again: these are the checks behind the signature (a bundle its CA signed like this).
    signBundle(c.bundle);
    const err = await expectInputError(apply(c, new FixtureRunner(), new RecordedServices()));
    expect(err.exitCode).toBe(2);
    // files[2]'s own file is now one the manifest does not list.
    expect(err.problems.map((p) => p.path)).toEqual(['files[0].sha256', 'files[1].source', 'files[2].source', 'files']);
    expect(err.problems[3]).toMatchObject({ file: path.join(c.bundle, m.files[2]?.source ?? ''), message: 'is in the bundle but not in its manifest (added after render?)' });
    expect(err.problems[0]?.message).toBe(`checksum mismatch: the manifest says ${m.files[0]?.sha256}, the file has ${sha256('tampered\n')}`);
    expect(err.problems[0]?.file).toBe(path.join(c.bundle, m.files[0]?.source ?? ''));
    expect(err.problems[1]?.message).toMatch(/^missing: the manifest lists "files\/etc\/ovn-deploy\/pki\/crl.pem"/);
    expect(err.problems[2]?.message).toBe('"files/../manifest.json" leaves the bundle\'s files/ directory');
    expect(walk(c.root)).toEqual([]);
  });

  it('--image-archive: a file named <image id>.tar, a regular file, for a bundle that runs an image; else exit 2 and nothing changed', async () => {
    const ID = 'a'.repeat(64);
    const c = fresh();
    oneBox(c, (m) => {
      m.images = ['localhost/agent:1'];
    });
    const dir = path.join(path.dirname(c.root), 'images');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `${ID}.tar`), 'x');
    symlinkSync(path.join(dir, `${ID}.tar`), path.join(dir, `${'b'.repeat(64)}.tar`));
    writeFileSync(path.join(dir, 'agent.tar'), 'x');
    const refused = async (file: string): Promise<string> => {
      const err = await expectInputError(apply(c, new FixtureRunner(), new RecordedServices(), { imageArchive: file }));
      expect(err.exitCode).toBe(2);
      expect(err.problems[0]).toMatchObject({ path: '--image-archive', file });
      return err.problems[0]?.message ?? '';
    };
    expect(await refused(path.join(dir, 'agent.tar'))).toMatch(/expected a file named <image id \(64 hex digits\)>\.tar/);
    expect(await refused(path.join(dir, `${'b'.repeat(64)}.tar`))).toBe('expected a regular file (not a symlink)');
    expect(await refused(path.join(dir, `${'c'.repeat(64)}.tar`))).toBe('no such file');
    expect(walk(c.root)).toEqual([]);
    const plain = fresh();
    oneBox(plain);
    const err = await expectInputError(apply(plain, new FixtureRunner(), new RecordedServices(), { imageArchive: path.join(dir, `${ID}.tar`) }));
    expect(err.problems[0]?.message).toBe('the bundle runs no container image');
  });

  it('reports every bad manifest field with its dot-path', async () => {
    const c = fresh();
    oneBox(c, (m) => {
      (m.services as unknown as { stage: number }[])[1] = { ...(m.services[1] as object), stage: 2 } as never;
      (m.certificate as { key: string }).key = 'relative/host.key';
      (m as { health: unknown[] }).health.push({ kind: 'nope' });
    });
    const err = await expectInputError(readBundle(c.bundle, fixtureTrusted()));
    const paths = err.problems.map((p) => p.path);
    expect(paths).toContain('services[1].stage');
    expect(paths).toContain('certificate.key');
    expect(paths).toContain('health[2].kind');
    expect(err.problems.find((p) => p.path === 'certificate.key')?.message).toBe('expected an absolute path');
    expect(err.problems.every((p) => p.file === path.join(c.bundle, 'manifest.json'))).toBe(true);
  });

  it('reports unknown service names in reload/after/raft (cross-field checks)', async () => {
    const c = fresh();
    const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
    (manifest.raft as { service: string }[])[0]!.service = 'no-such-db';
    files[0]!.reload = ['ghost'];
    // A check about a service says which: it must be one of the bundle's.
    manifest.health.push({ kind: 'unix-listen', path: '/var/run/ovn/x.sock', service: 'phantom' });
    writeBundle(c.bundle, manifest, files, c.root);
    const err = await expectInputError(readBundle(c.bundle, fixtureTrusted()));
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual(['files[0].reload[0]: unknown service "ghost"', 'raft[0].service: unknown service "no-such-db"', 'health[2].service: unknown service "phantom"']);
  });

  it('refuses a directory without manifest.json', async () => {
    const err = await expectInputError(readBundle(path.join(tmp, 'nothing-here'), fixtureTrusted()));
    expect(err.message).toMatch(/nothing-here\/manifest.json: cannot read the manifest.*: no such file/);
  });
});

describe('apply: certificate flow (recorded service manager)', () => {
  it('fresh host: key 0600, CSR with the bundle\'s CN/SANs, needs-certificate (exit 3), nothing started', async () => {
    const c = fresh();
    oneBox(c);
    const runner = new FixtureRunner();
    const services = new RecordedServices();
    const out = await apply(c, runner, services);
    expect(out.exitCode).toBe(3);
    expect(out.report.status).toBe('needs-certificate');
    const hp = hostPaths(c.root);
    expect(statSync(hp.pki.key).mode & 0o777).toBe(0o600);
    const csr = readVerifiedCsr(out.report.csr ?? '', 'csr');
    expect(csr.commonName).toBe('box1');
    const parsed = forge.pki.certificationRequestFromPem(out.report.csr ?? '');
    const ext = parsed.getAttribute({ name: 'extensionRequest' }) as { extensions: { name: string; altNames: { value?: string; ip?: string }[] }[] };
    const sans = ext.extensions.find((e) => e.name === 'subjectAltName')?.altNames.map((a) => a.ip ?? a.value);
    expect(sans).toEqual(['box1', '192.0.2.10']);
    expect(out.report.signCommand).toBe('ovn-deploy pki sign-csr --dir <PKI> --csr box1.csr --role central --name box1 --san box1,192.0.2.10 --out box1.pem');
    expect(services.calls).toEqual([]);
    // Not even readied: a supervisor launched here would outlive this apply (exit 3) with nothing to run.
    expect(services.warmUps).toBe(0);
    // Packages were checked and installed; files placed; the key made; no database yet.
    const kinds = out.report.changes.map((ch) => `${ch.kind}:${ch.action}`);
    expect(kinds).toContain('package:install');
    expect(kinds).toContain('certificate:generate-key');
    expect(kinds).toContain('certificate:create-csr');
    expect(kinds.filter((k) => k === 'file:create')).toHaveLength(4);
    expect(kinds.some((k) => k.startsWith('db:') || k.startsWith('raft:') || k.startsWith('service:'))).toBe(false);
    expect(runner.calls.map((x) => x.argv.join(' '))).toContain(
      'apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends ovn-central ovn-host stunnel4',
    );
    const aptCall = runner.calls.find((x) => x.argv[0] === 'apt-get');
    expect(aptCall?.opts.env?.DEBIAN_FRONTEND).toBe('noninteractive');
    expect(renderApplyReport(out.report)).toContain('sign it there');

    // The same again without a certificate: the key and CSR are kept, nothing else changes.
    const keyBefore = readFileSync(hp.pki.key, 'utf8');
    const again = await apply(c, new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4'])), services);
    expect(again.exitCode).toBe(3);
    expect(again.report.changes).toEqual([]);
    expect(readFileSync(hp.pki.key, 'utf8')).toBe(keyBefore);
    expect(again.report.csr).toBe(out.report.csr);
  });

  it('a file whose owner the host lacks: exit 2 naming files[i].owner, and no file of its batch nor the key (made early) is written', async () => {
    const c = fresh();
    oneBox(c);
    const raw = JSON.parse(readFileSync(path.join(c.bundle, 'manifest.json'), 'utf8')) as { files: { owner: string; dest: string }[] };
    const last = raw.files.length - 1;
    const file = raw.files[last];
    if (file === undefined) throw new Error('oneBox has no files');
    file.owner = 'neutron';
    writeFileSync(path.join(c.bundle, 'manifest.json'), JSON.stringify(raw));
    signBundle(c.bundle);
    // This host has root alone.
    mkdirSync(path.join(c.root, 'etc'), { recursive: true });
    writeFileSync(path.join(c.root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(path.join(c.root, 'etc', 'group'), 'root:x:0:\n');
    const err = await expectInputError(apply(c, new FixtureRunner(), new RecordedServices()));
    expect(err.exitCode).toBe(2);
    expect(err.problems).toEqual([{ file: path.join(c.bundle, 'manifest.json'), path: `files[${last}].owner`, message: 'no user "neutron" on this host' }]);
    // The files before it in plan order, the key and the CSR: none exists (the trusted CA is apply's own, recorded before the plan runs).
    expect(walk(c.root).map((f) => path.relative(c.root, f)).sort()).toEqual(['etc/group', 'etc/passwd', 'var/lib/ovn-deploy/trusted-ca.pem']);
  });

  it('a symlink, a directory or a non-key at the key, pending-key, certificate or CSR path: exit 2 naming the file and manifest field, before anything changes', async () => {
    const victim = path.join(tmp, 'victim-tls.txt');
    writeFileSync(victim, 'not yours\n');
    const cases: { name: string; at: (hp: ReturnType<typeof hostPaths>) => string; plant: (at: string) => void; field: string; why: RegExp }[] = [
      { name: 'key link', at: (hp) => hp.pki.key, plant: (at) => symlinkSync(victim, at), field: 'certificate.key', why: /found a symlink; expected a regular file or nothing/ },
      { name: 'key dir', at: (hp) => hp.pki.key, plant: (at) => mkdirSync(at), field: 'certificate.key', why: /found a directory/ },
      { name: 'key garbage', at: (hp) => hp.pki.key, plant: (at) => writeFileSync(at, 'not a key\n', { mode: 0o600 }), field: 'certificate.key', why: /holds no private key; expected a PEM private key/ },
      { name: 'pending key link', at: (hp) => hp.pki.keyNext, plant: (at) => symlinkSync(victim, at), field: 'certificate.key (its pending next key)', why: /found a symlink/ },
      { name: 'cert link', at: (hp) => hp.pki.cert, plant: (at) => symlinkSync(victim, at), field: 'certificate.cert', why: /found a symlink/ },
      { name: 'csr link', at: (hp) => hp.pki.csr, plant: (at) => symlinkSync(victim, at), field: 'certificate.csr', why: /found a symlink/ },
    ];
    for (const k of cases) {
      const c = fresh();
      oneBox(c);
      const at = k.at(hostPaths(c.root));
      mkdirSync(path.dirname(at), { recursive: true });
      k.plant(at);
      const before = walk(c.root);
      const runner = new FixtureRunner();
      const err = await expectInputError(apply(c, runner, new RecordedServices()));
      expect(err.exitCode, k.name).toBe(2);
      expect(err.problems.map((p) => [p.file, p.path]), k.name).toEqual([[at, k.field]]);
      expect(err.problems[0]?.message, k.name).toMatch(k.why);
      // Observed only: no package installed, no file written (the trusted CA is apply's own, recorded first).
      expect(runner.calls.filter((x) => x.opts.mutates !== false).map((x) => x.argv.join(' ')), k.name).toEqual([]);
      expect(walk(c.root).filter((f) => !f.endsWith('trusted-ca.pem')), k.name).toEqual(before);
      expect(readFileSync(victim, 'utf8')).toBe('not yours\n');
    }
  });

  it('a directory on the way to a bundle file that is a symlink of a user other than root: exit 2 naming files[i].dest, nothing written there or anywhere', async () => {
    const c = fresh();
    oneBox(c);
    const { files } = oneBoxManifest('box1', caPem, crlPem);
    const last = files.length - 1;
    const dest = files[last]?.dest ?? '';
    const foreign = path.join(path.dirname(c.root), 'foreign');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(path.join(foreign, 'theirs'), 'theirs\n');
    const linkAt = path.dirname(path.join(c.root, dest));
    mkdirSync(path.dirname(linkAt), { recursive: true });
    symlinkSync(foreign, linkAt);
    lchownSync(linkAt, 65534, 65534); // planted by a service user (nobody here)
    const err = await expectInputError(apply(c, new FixtureRunner(), new RecordedServices()));
    expect(err.exitCode).toBe(2);
    expect(err.problems).toEqual([
      { file: path.join(c.bundle, 'manifest.json'), path: `files[${last}].dest`, message: `${linkAt} is a symbolic link owned by uid 65534, not root: apply does not write ${dest} through it` },
    ]);
    expect(readdirSync(foreign)).toEqual(['theirs']);
    expect(readFileSync(path.join(foreign, 'theirs'), 'utf8')).toBe('theirs\n');
    // Nothing else of the bundle either (walk() sees the foreign directory through the link).
    expect(walk(c.root).filter((f) => !f.startsWith(`${linkAt}/`)).map((f) => path.relative(c.root, f))).toEqual(['var/lib/ovn-deploy/trusted-ca.pem']);

    // root's own link (as /var/run -> /run) is written through as before.
    rmSync(linkAt);
    symlinkSync(foreign, linkAt);
    expect((await apply(c, new FixtureRunner(), new RecordedServices())).exitCode).toBe(3);
    expect(readdirSync(foreign).sort()).toEqual([path.basename(dest), 'theirs'].sort());
  });

  it('--certificate signed for another key, or by another CA, is bad input (exit 2) and installs nothing', async () => {
    const c = fresh();
    oneBox(c);
    const services = new RecordedServices();
    const first = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    expect(first.exitCode).toBe(3);
    // Another host's key, same names: signed by our CA, but not for our key.
    const forgeKeys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
    const { createCsr } = await import('../src/pki/index.js');
    const strangerCsr = createCsr(forge.pki.privateKeyToPem(forgeKeys.privateKey), 'box1', ['box1', '192.0.2.10']);
    const wrongKey = await signFor(strangerCsr);
    let err = await expectInputError(apply(c, new FixtureRunner(), services, { skipPackages: true, certificate: { pem: wrongKey, from: 'wrong.pem' } }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe("wrong.pem: the certificate does not match this host's key (signed for another CSR?)");
    const otherCa = await signFor(first.report.csr ?? '', otherPkiDir);
    err = await expectInputError(apply(c, new FixtureRunner(), services, { skipPackages: true, certificate: { pem: otherCa, from: 'other.pem' } }));
    expect(err.message).toBe("other.pem: the certificate is not signed by a CA of the bundle's CA bundle");
    const wrongNames = await signFor(first.report.csr ?? '', pkiDir, 'box1', ['box1']);
    err = await expectInputError(apply(c, new FixtureRunner(), services, { skipPackages: true, certificate: { pem: wrongNames, from: 'names.pem' } }));
    expect(err.message).toMatch(/^names.pem: the certificate names CN=box1 SAN=\[box1\] but the bundle asks for/);
    expect(walk(c.root).some((f) => f.endsWith('host.pem'))).toBe(false);
    expect(services.calls).toEqual([]);
  });

  it("installing a certificate for the host's current key moves the key's mtime, not its bytes (OVSDB's TLS re-reads the pair only when both changed)", async () => {
    const c = fresh();
    oneBox(c);
    const services = new RecordedServices();
    const first = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    const key = hostPaths(c.root).pki.key;
    const before = { bytes: readFileSync(key, 'utf8'), mtimeMs: statSync(key).mtimeMs, ino: statSync(key).ino };
    await new Promise((r) => setTimeout(r, 20));
    const ok = await apply(c, new FixtureRunner(), services, { skipPackages: true, certificate: { pem: await signFor(first.report.csr ?? ''), from: 'box1.pem' } });
    expect(ok.report.status).toBe('converged');
    const after = statSync(key);
    expect(readFileSync(key, 'utf8')).toBe(before.bytes);
    expect(after.ino).toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o600);
    expect(after.mtimeMs).toBeGreaterThan(before.mtimeMs);
  });

  it('a certificate that no longer matches the key yields needs-certificate with a new CSR', async () => {
    const c = fresh();
    oneBox(c);
    const services = new RecordedServices();
    const first = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    const cert = await signFor(first.report.csr ?? '');
    const ok = await apply(c, new FixtureRunner(), services, { skipPackages: true, certificate: { pem: cert, from: 'box1.pem' } });
    expect(ok.report.status).toBe('converged');
    // The key is replaced (e.g. restored from elsewhere): the certificate is not ours any more.
    rmSync(hostPaths(c.root).pki.key);
    const again = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    expect(again.exitCode).toBe(3);
    expect(again.report.changes.map((ch) => ch.action)).toEqual(['generate-key', 'create-csr']);
    expect(again.report.csr).not.toBe(first.report.csr);
  });
});

/** Rows of `table` in a clustered database file, read offline through a standalone copy. */
function globalRows(clustered: string, db: string, table: string): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'od-rows-'));
  try {
    const standalone = path.join(dir, 'copy.db');
    execFileSync('ovsdb-tool', ['cluster-to-standalone', standalone, clustered]);
    const out = execFileSync('ovsdb-tool', ['query', standalone, JSON.stringify([db, { op: 'select', table, where: [] }])], { encoding: 'utf8' });
    return (JSON.parse(out) as { rows: unknown[] }[])[0]!.rows.length;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('apply: converge, idempotence, reloads (recorded service manager, real ovsdb-tool)', () => {
  it('installs the certificate, creates dbs and clusters, starts stage 0 then all, configures OVS, inits once; a second apply changes nothing', async () => {
    const c = fresh();
    oneBox(c);
    const runner = new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4']));
    const services = new RecordedServices();
    const first = await apply(c, runner, services);
    const cert = await signFor(first.report.csr ?? '');
    const out = await apply(c, runner, services, { certificate: { pem: cert, from: '-' } });
    expect(out.exitCode).toBe(0);
    expect(out.report.status).toBe('converged');
    const kinds = out.report.changes.map((ch) => `${ch.kind}:${ch.action}:${ch.target}`);
    const hp = hostPaths('/');
    expect(kinds).toEqual([
      `certificate:install:${hp.pki.cert}`,
      `db:create:${hp.ovs.confDb}`,
      `raft:create-cluster:OVN_Northbound ${hp.ovn.nbDb}`,
      `raft:create-cluster:OVN_Southbound ${hp.ovn.sbDb}`,
      'service:start:ovn-nb-ovsdb',
      'service:start:ovn-sb-ovsdb',
      'service:start:stunnel-server',
      'service:start:ovs-ovsdb',
      'ovs:create:bridge br-int',
      'ovs:set:external_ids:system-id',
      'ovs:set:external_ids:ovn-remote',
      'ovs:set:external_ids:ovn-encap-type',
      'ovs:set:external_ids:ovn-encap-ip',
      'ovs:set:external_ids:ovn-bridge',
      // Run as rendered for the host's root: its own databases' sockets.
      `raft:run:${BINARIES.nbctl} --db=unix:${hostPaths(c.root).ovn.nbSock} init`,
      `raft:run:${BINARIES.sbctl} --db=unix:${hostPaths(c.root).ovn.sbSock} init`,
      'service:start:ovn-northd',
      'service:start:ovs-vswitchd',
      'service:start:ovn-controller',
    ]);
    expect(services.calls).toEqual(['stage0 stop=[]', 'all']);
    // The service manager was readied only in the pass that started services.
    expect(services.warmUps).toBe(1);
    const argvs = runner.calls.map((x) => x.argv);
    const createCluster = argvs.find((a) => a[1] === 'create-cluster');
    expect(createCluster?.slice(3)).toEqual([ '/usr/share/ovn/ovn-nb.ovsschema', 'tcp:127.1.2.3:16643']);
    const root = hostPaths(c.root);
    for (const f of [root.ovn.nbDb, root.ovn.sbDb, root.ovs.confDb]) expect(statSync(f).size).toBeGreaterThan(0);
    // The new SB cluster holds SB_Global before anything ran `init` (here init is recorded, not
    // run): an ovn-controller that connects first would otherwise crash. The NB is left as is.
    expect(globalRows(root.ovn.sbDb, 'OVN_Southbound', 'SB_Global')).toBe(1);
    expect(globalRows(root.ovn.nbDb, 'OVN_Northbound', 'NB_Global')).toBe(0);
    expect(readdirSync(path.dirname(root.ovn.sbDb)).filter((f) => f.endsWith('.seed'))).toEqual([]);
    expect(out.report.health.every((h) => h.ok)).toBe(true);
    const applied = JSON.parse(readFileSync(root.applied, 'utf8')) as { manifestSha256: string; initialized: boolean };
    expect(applied.manifestSha256).toBe(sha256(readFileSync(path.join(c.bundle, 'manifest.json'))));
    expect(applied.initialized).toBe(true);
    // init ran with the cluster's leader; the ovs-vsctl init came before the external_ids.
    expect(argvs.findIndex((a) => a[0] === BINARIES.nbctl)).toBeGreaterThan(argvs.findIndex((a) => a.includes('external_ids:system-id="box1"')));

    // Second apply, nothing new: no change, nothing started, restarted or reloaded. (The OVS
    // database "socket" exists now, so apply asks the fixture's OVS instead of assuming nothing.)
    writeFileSync(root.ovs.dbSock, '');
    const pids = [...services.state].map(([n, s]) => `${n}:${s.pid}`);
    const callsBefore = services.calls.length;
    const second = await apply(c, runner, services);
    expect(second.exitCode).toBe(0);
    expect(second.report.changes).toEqual([]);
    expect(second.plan).toEqual([]);
    expect(services.calls.slice(callsBefore)).toEqual([]);
    expect([...services.state].map(([n, s]) => `${n}:${s.pid}`)).toEqual(pids);
    expect(runner.calls.filter((x) => x.argv[0] === BINARIES.nbctl)).toHaveLength(1);

    // One stunnel file changes: only stunnel-server is reloaded (no restart, no other service).
    const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
    files[2]!.content += 'debug = 6\n';
    writeBundle(c.bundle, manifest, files, c.root);
    const third = await apply(c, runner, services);
    expect(third.report.changes.map((ch) => `${ch.kind}:${ch.action}:${ch.target}`)).toEqual([
      `file:update:${hp.stunnelDir}/stunnel-server.conf`,
      'service:reload:stunnel-server',
    ]);
    expect(services.calls.slice(callsBefore)).toEqual(['reload stunnel-server']);
    expect([...services.state].map(([n, s]) => `${n}:${s.pid}`)).toEqual(pids);
  });

  it('a changed service spec restarts exactly that service; a service dropped from the bundle is stopped', async () => {
    const c = fresh();
    oneBox(c);
    const runner = new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4']));
    const services = new RecordedServices();
    const first = await apply(c, runner, services);
    await apply(c, runner, services, { certificate: { pem: await signFor(first.report.csr ?? ''), from: '-' } });
    services.state.set('old-daemon', { running: true, pid: 1 });
    const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
    (manifest.services as { name: string; argv: string[] }[]).find((s) => s.name === 'ovn-northd')!.argv.push('-vfile:dbg');
    writeBundle(c.bundle, manifest, files, c.root);
    const out = await apply(c, runner, services);
    expect(out.report.changes.map((ch) => `${ch.action}:${ch.target}`)).toEqual(['stop:old-daemon', 'restart:ovn-northd']);
    expect(services.state.has('old-daemon')).toBe(false);
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const c = fresh();
    oneBox(c);
    const lines: string[] = [];
    const runner = new FixtureRunner();
    const out = await apply(c, runner, new RecordedServices(), { dryRun: true, log: (l) => lines.push(l) });
    expect(out.report.dryRun).toBe(true);
    expect(out.exitCode).toBe(3);
    expect(out.report.changes.map((ch) => ch.action)).toEqual(['install', 'install', 'install', ...Array(13).fill('mkdir'), 'create', 'create', 'create', 'create', 'generate-key', 'create-csr']);
    expect(lines).toContain('plan: install packages (apt): ovn-central ovn-host stunnel4');
    expect(walk(c.root)).toEqual([]);
    // Only read-only queries ran.
    expect(runner.calls.every((x) => x.opts.mutates === false)).toBe(true);
  });
});

describe('planApply (pure)', () => {
  const m = manifestSchema.parse({ ...oneBoxManifest('box1').manifest, files: [] });
  const base: Observed = {
    missingDirs: [],
    files: new Map(),
    users: new Map([['root', 0]]),
    groups: new Map([['root', 0]]),
    certificate: { keyPresent: true, verdict: 'ok', csrCurrent: true, given: false },
    dbs: new Map([...m.raft.map((r) => [r.dbFile, 'present'] as const), [m.standaloneDbs[0]!.dbFile, 'present']]),
    services: new Map(),
    unlisted: [],
    pending: { reload: [], restart: [] },
    initialized: true,
    distroUnits: [],
    servicesKind: 'own',
  };
  const hash = (s: { name: string }) => `h-${s.name}`;

  it('a joining central joins (join-cluster with its peers) instead of creating the cluster, and never runs initCommands', () => {
    const joiner = manifestSchema.parse({
      ...oneBoxManifest('box2').manifest,
      files: [],
      initCommands: [],
      raft: m.raft.map((r) => ({ ...r, bootstrap: false, peers: ['tcp:127.9.9.9:16643'] })),
    });
    const steps = planApply(joiner, { ...base, dbs: new Map(), initialized: false }, hash);
    expect(steps.filter((s) => s.kind === 'raft-join').map((s) => (s.kind === 'raft-join' ? s.db.name : ''))).toEqual(['OVN_Northbound', 'OVN_Southbound']);
    expect(steps.some((s) => s.kind === 'raft-create' || s.kind === 'init-commands')).toBe(false);
  });

  it('netdev underlay: planned until recorded, on the bridge and off the NIC', () => {
    const u = manifestSchema.parse({ ...oneBoxManifest('box1').manifest, files: [], ovs: { ...oneBoxManifest('box1').manifest.ovs!, underlay: { bridge: 'br-phy', interface: 'eth1', ip: '192.0.2.10' } } });
    const running = new Map(u.services.map((s) => [s.name, { running: true, hash: hash(s) }]));
    const ovs = {
      initialized: true,
      externalIds: { ...u.ovs!.externalIds },
      bridges: new Map([
        ['br-int', { datapathType: 'netdev', failMode: 'secure', ports: ['br-int'] }],
        ['br-phy', { datapathType: 'netdev', failMode: '', ports: ['br-phy', 'eth1'] }],
      ]),
    };
    const obs = { ...base, services: running, ovs };
    expect(planApply(u, { ...obs, underlay: { nicAddrs: ['192.0.2.10/24'], bridgeAddrs: [], bridgeUp: false } }, hash)).toEqual([
      { kind: 'underlay', bridge: 'br-phy', nic: 'eth1', ip: '192.0.2.10' },
    ]);
    // After a vswitchd restart the new br-phy tap has no address: planned again.
    expect(planApply(u, { ...obs, underlay: { recordedCidr: '192.0.2.10/24', nicAddrs: [], bridgeAddrs: [], bridgeUp: true } }, hash)).toHaveLength(1);
    expect(planApply(u, { ...obs, underlay: { recordedCidr: '192.0.2.10/24', nicAddrs: [], bridgeAddrs: ['192.0.2.10/24'], bridgeUp: true } }, hash)).toEqual([]);
  });

  it('firewall: loaded when its table is missing or its file changed; skipped where nft cannot run', () => {
    const file = '/etc/ovn-deploy/firewall.nft';
    const running = new Map(m.services.map((s) => [s.name, { running: true, hash: hash(s) }]));
    const ovs = { initialized: true, externalIds: { ...m.ovs!.externalIds }, bridges: new Map([['br-int', { datapathType: 'netdev', failMode: 'secure', ports: [] }]]) };
    const obs = { ...base, services: running, ovs };
    expect(planApply(m, { ...obs, firewall: { file, available: true, loaded: false } }, hash)).toEqual([{ kind: 'firewall', file }]);
    expect(planApply(m, { ...obs, firewall: { file, available: true, loaded: true } }, hash)).toEqual([]);
    expect(planApply(m, { ...obs, firewall: { file, available: false, loaded: false } }, hash)).toEqual([]);
  });

  it('image archive: loaded first when an image of the bundle is missing or another ID, and the container running it restarts; nothing when the host has that ID', () => {
    const IMG = 'localhost/agent:1';
    const ID = 'c'.repeat(64);
    const withImage = manifestSchema.parse({
      ...oneBoxManifest('box1').manifest,
      files: [],
      images: [IMG],
      services: m.services.map((x, i) => (i === m.services.length - 1 ? { ...x, argv: ['/usr/bin/podman', 'run', IMG] } : x)),
    });
    const last = withImage.services.at(-1)!.name;
    const running = new Map(withImage.services.map((x) => [x.name, { running: true, hash: hash(x) }]));
    const ovs = { initialized: true, externalIds: { ...withImage.ovs!.externalIds }, bridges: new Map([['br-int', { datapathType: 'netdev', failMode: 'secure', ports: [] }]]) };
    const obs = { ...base, services: running, ovs };
    const archive = { file: `/var/lib/ovn-deploy/images/${ID}.tar`, id: ID };
    const stale = planApply(withImage, { ...obs, images: { have: new Map([[IMG, 'd'.repeat(64)]]), archive } }, hash);
    expect(stale[0]).toEqual({ kind: 'image-load', file: archive.file, id: ID, images: [IMG] });
    expect(stale.at(-1)).toEqual({ kind: 'restart', services: [last] });
    expect(changesOf(stale[0]!, withImage)).toEqual([{ kind: 'image', target: IMG, action: 'load' }]);
    expect(planApply(withImage, { ...obs, images: { have: new Map([[IMG, undefined]]), archive } }, hash)[0]?.kind).toBe('image-load');
    // The host has that ID already, or no archive was given: no step.
    expect(planApply(withImage, { ...obs, images: { have: new Map([[IMG, ID]]), archive } }, hash)).toEqual([]);
    expect(planApply(withImage, { ...obs, images: { have: new Map([[IMG, undefined]]) } }, hash)).toEqual([]);
  });

  it('under systemd: changed unit files -> daemon-reload and a restart of that unit; distro units disabled', () => {
    const running = new Map(m.services.map((s) => [s.name, { running: true }]));
    const unit = '/etc/systemd/system/ovn-deploy-ovn-northd.service';
    const withUnit = manifestSchema.parse({
      ...oneBoxManifest('box1').manifest,
      files: [{ source: 'files/x', dest: unit, mode: 0o644, sha256: 'a'.repeat(64), restart: ['ovn-northd'] }],
    });
    const steps = planApply(
      withUnit,
      { ...base, servicesKind: 'systemd', services: running, files: new Map([[unit, { sha256: 'b'.repeat(64), mode: 0o644, uid: 0, gid: 0 }]]), distroUnits: ['ovn-central.service'], ovs: { initialized: true, externalIds: { ...withUnit.ovs!.externalIds }, bridges: new Map([['br-int', { datapathType: 'netdev', failMode: 'secure', ports: [] }]]) } },
      hash,
    );
    expect(steps.map((s) => s.kind)).toEqual(['file', 'daemon-reload', 'disable-distro-units', 'services-stage1']);
    expect(steps.at(-1)).toEqual({ kind: 'services-stage1', start: [], restart: ['ovn-northd'] });
  });
});

describe('apply: state across runs', () => {
  it('a reload owed by a file placed in a needs-certificate apply is done by the next apply', async () => {
    const c = fresh();
    oneBox(c);
    const runner = new FixtureRunner();
    const services = new RecordedServices();
    const first = await apply(c, runner, services, { skipPackages: true });
    await apply(c, runner, services, { skipPackages: true, certificate: { pem: await signFor(first.report.csr ?? ''), from: '-' } });
    // The key goes (certificate no longer ours) while the stunnel config changes.
    rmSync(hostPaths(c.root).pki.key);
    const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
    files[2]!.content += 'debug = 7\n';
    writeBundle(c.bundle, manifest, files, c.root);
    const stopped = await apply(c, runner, services, { skipPackages: true });
    expect(stopped.exitCode).toBe(3);
    expect(stopped.report.changes.map((ch) => ch.action)).toEqual(['update', 'generate-key', 'create-csr']);
    expect(JSON.parse(readFileSync(hostPaths(c.root).applyPending, 'utf8'))).toEqual({ reload: ['stunnel-server'], restart: [] });
    const calls = services.calls.length;
    const done = await apply(c, runner, services, { skipPackages: true, certificate: { pem: await signFor(stopped.report.csr ?? ''), from: '-' } });
    expect(done.report.changes.map((ch) => `${ch.action}:${ch.target}`)).toEqual([`install:${hostPaths().pki.cert}`, 'reload:stunnel-server']);
    expect(services.calls.slice(calls)).toEqual(['reload stunnel-server']);
    expect(() => readFileSync(hostPaths(c.root).applyPending)).toThrow();
  });

  it('two applies never interleave: the second waits for the lock', async () => {
    const { acquireApplyLock } = await import('../src/apply/state.js');
    const lockFile = path.join(tmp, 'lock-test', 'apply.lock');
    const first = await acquireApplyLock(lockFile);
    let secondHeld = false;
    const second = acquireApplyLock(lockFile, 5_000).then((l) => {
      secondHeld = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(secondHeld).toBe(false);
    await first.release();
    const l2 = await second;
    expect(secondHeld).toBe(true);
    await l2.release();
    // A lock left by a dead process is taken over at once.
    writeFileSync(lockFile, `999999999 0 ${readlinkSync('/proc/self/ns/pid')}\n`);
    const l3 = await acquireApplyLock(lockFile, 100);
    await l3.release();
  });
});

describe('apply CLI (through main)', () => {
  async function cli(...args: string[]): Promise<CliResult> {
    const caFile = path.join(tmp, 'fixture-ca.pem');
    writeFileSync(caFile, fixtureSigner().certPem);
    return runCli(['apply', '--trust-ca', caFile, ...args]);
  }

  it('bad bundle with --json: exit 2, nothing on stdout, the problem on stderr', async () => {
    const c = fresh();
    const r = await cli('--bundle', path.join(c.bundle, 'missing'), '--root', c.root, '--json');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/missing\/manifest.json: cannot read the manifest.*: no such file/);
  });

  it('bad flags are bad input', async () => {
    const r = await cli('--bundle', 'x', '--supervisor', 'upstart', '--health-timeout', 'soon');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--supervisor: expected auto, own or systemd (got "upstart")');
    expect(r.stderr).toContain('--health-timeout: must be a positive integer (got "soon")');
  });

  it('--dry-run --json prints exactly the report (the plan goes nowhere near stdout) and writes nothing', async () => {
    const c = fresh();
    oneBox(c);
    const r = await cli('--bundle', c.bundle, '--root', c.root, '--json', '--dry-run', '--skip-packages', '--supervisor', 'own');
    expect(r.code).toBe(3);
    const report = JSON.parse(r.stdout) as { host: string; status: string; dryRun: boolean; changes: unknown[]; health: unknown[] };
    expect(Object.keys(report)).toEqual(['host', 'status', 'dryRun', 'changes', 'signCommand', 'health']);
    expect(report).toMatchObject({ host: 'box1', status: 'needs-certificate', dryRun: true });
    expect(walk(c.root)).toEqual([]);
  });
});

describe('apply: failures and other package managers', () => {
  it('a service that fails to start: report status unhealthy (exit 1) with what changed before and why', async () => {
    const c = fresh();
    oneBox(c);
    class FailingStage1 extends RecordedServices {
      override async ensureAll(): Promise<void> {
        throw new Error('service ovn-northd failed to start (exited 3 times in a row)');
      }
    }
    const services = new FailingStage1();
    const runner = new FixtureRunner();
    const first = await apply(c, runner, services, { skipPackages: true });
    const out = await apply(c, runner, services, { skipPackages: true, certificate: { pem: await signFor(first.report.csr ?? ''), from: '-' } });
    expect(out.exitCode).toBe(1);
    expect(out.report.status).toBe('unhealthy');
    expect(out.report.health).toEqual([{ check: 'apply', ok: false, detail: 'service ovn-northd failed to start (exited 3 times in a row)' }]);
    expect(out.report.changes.map((ch) => ch.action)).toContain('create-cluster');
    expect(out.report.changes.some((ch) => ch.target === 'ovn-northd')).toBe(false);
  });

  it('an expired certificate yields needs-certificate', async () => {
    const c = fresh();
    oneBox(c);
    const services = new RecordedServices();
    const first = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    const longAgo = new Date(Date.now() - 10 * 86_400_000);
    const old = await signCsr(pkiDir, first.report.csr ?? '', { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'], validityDays: 1, now: longAgo });
    writeFileSync(hostPaths(c.root).pki.cert, old.certPem);
    const out = await apply(c, new FixtureRunner(), services, { skipPackages: true });
    expect(out.exitCode).toBe(3);
    // The key and CSR are still current: only the signature is owed.
    expect(out.report.changes).toEqual([]);
    expect(out.report.csr).toBe(first.report.csr);
  });

  it('without dpkg: rpm -q finds what is missing and dnf installs only that', async () => {
    const c = fresh();
    oneBox(c);
    const runner = new FixtureRunner();
    const dnfRunner = {
      calls: runner.calls,
      run: async (argv: readonly string[], opts = {}) => {
        if (argv[0] === 'dpkg-query') return { stdout: '', stderr: 'not found', exitCode: 127 };
        if (argv[0] === 'rpm') return { stdout: '', stderr: '', exitCode: argv.includes('stunnel') ? 0 : 1 };
        return runner.run(argv, opts);
      },
    };
    const out = await runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner: dnfRunner, services: new RecordedServices(), healthTimeoutMs: 1_000 });
    expect(out.report.changes.filter((ch) => ch.kind === 'package').map((ch) => ch.target)).toEqual(['ovn-central', 'ovn-host']);
    expect(runner.calls.map((x) => x.argv.join(' '))).toContain('dnf install -y ovn-central ovn-host');
  });
});

describe('health checks', () => {
  it('tcp-listen: a listener that accepts and resets at once counts, a closed port does not', async () => {
    const net = await import('node:net');
    const { runHealthChecks } = await import('../src/apply/health.js');
    const server = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    try {
      const ctx = { runner: new FixtureRunner(), services: new RecordedServices(), at: (p: string) => p };
      const results = await runHealthChecks(ctx, [
        { kind: 'tcp-listen', address: '127.0.0.1', port },
        { kind: 'tcp-listen', address: '127.0.0.1', port: closedPort },
      ], 0);
      expect(results.map((r) => [r.check, r.ok])).toEqual([
        [`tcp-listen 127.0.0.1:${port}`, true],
        [`tcp-listen 127.0.0.1:${closedPort}`, false],
      ]);
      expect(results[1]?.detail).toBe('ECONNREFUSED');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('unixctl: the daemon answers on its control socket below the root; each result names the service it is about', async () => {
    const { RecordingRunner } = await import('../src/runner.js');
    const { runHealthChecks } = await import('../src/apply/health.js');
    const runner = new RecordingRunner((argv) =>
      argv.includes('/r/var/run/openvswitch/ovs-vswitchd.ctl') ? { stdout: 'ovs-vswitchd (Open vSwitch) 3.3.8\n' } : { exitCode: 1, stderr: '2026-12-07T00:00:00Z|00001|unixctl|WARN|failed to connect to /r/var/run/ovn/ovn-northd.ctl\novs-appctl: cannot connect to "/r/var/run/ovn/ovn-northd.ctl" (No such file or directory)\n' },
    );
    const services = new RecordedServices();
    services.state.set('ovn-northd', { running: true, pid: 42 });
    const results = await runHealthChecks({ runner, services, at: (p: string) => `/r${p}` }, [
      { kind: 'unixctl', service: 'ovs-vswitchd', ctl: '/var/run/openvswitch/ovs-vswitchd.ctl', command: 'version' },
      { kind: 'unixctl', service: 'ovn-northd', ctl: '/var/run/ovn/ovn-northd.ctl', command: 'status' },
      { kind: 'service-running', service: 'ovn-northd' },
      { kind: 'tcp-listen', address: '127.0.0.1', port: 1 },
    ], 0);
    expect(runner.calls.map((c) => c.argv)).toEqual([
      ['ovs-appctl', '-t', '/r/var/run/openvswitch/ovs-vswitchd.ctl', '--timeout=3', 'version'],
      ['ovs-appctl', '-t', '/r/var/run/ovn/ovn-northd.ctl', '--timeout=3', 'status'],
    ]);
    expect(results.map((r) => [r.check, r.ok, r.detail, r.service])).toEqual([
      ['unixctl ovs-vswitchd version', true, 'ovs-vswitchd (Open vSwitch) 3.3.8', 'ovs-vswitchd'],
      ['unixctl ovn-northd status', false, '2026-12-07T00:00:00Z|00001|unixctl|WARN|failed to connect to /r/var/run/ovn/ovn-northd.ctl', 'ovn-northd'],
      ['service-running ovn-northd', true, 'pid 42', 'ovn-northd'],
      ['tcp-listen 127.0.0.1:1', false, 'ECONNREFUSED', undefined],
    ]);
  });

  it('cluster/status: a member with a known leader is healthy; a joining one or one without leader is not', async () => {
    const { memberVerdict } = await import('../src/health/cluster-status.js');
    const fixture = (name: string): string => readFileSync(path.join(import.meta.dirname, 'fixtures', 'cluster-status', name), 'utf8');
    expect(memberVerdict(fixture('nb-3-b.txt'))).toEqual({ ok: true, detail: 'status cluster member, role follower, leader 8c74, term 1' });
    expect(memberVerdict(fixture('nb-leader-down-b.txt'))).toMatchObject({ ok: true, detail: expect.stringContaining('leader self') });
    expect(memberVerdict(fixture('nb-3-b.txt').replace('Leader: 8c74', 'Leader: unknown')).ok).toBe(false);
    expect(memberVerdict(fixture('nb-candidate-b.txt')).ok).toBe(false);
    expect(memberVerdict(fixture('nb-left-c.txt')).ok).toBe(false);
    expect(memberVerdict('Status: joining cluster\nLeader: unknown\n').ok).toBe(false);
  });
});
