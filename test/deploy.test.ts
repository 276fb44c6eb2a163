/**
 * deploy's plan, CSR check, per-host flow and orchestration against a scripted host ("mocked ssh":
 * no SSH server here; test/site.slow.test.ts drives real hosts). The PKI, keys and CSRs are real.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleManifest } from '../src/bundle/manifest.js';
import { certificateOnlyManifest } from './helpers/deploy-fixture.js';
import { checkCsrMatches, csrSans } from '../src/deploy/csr-check.js';
import { deployHost, sshTransport } from '../src/deploy/host.js';
import { planDeploy } from '../src/deploy/plan.js';
import type { RemoteHost, RemoteRunOptions } from '../src/deploy/remote.js';
import { RECEIVE_IMAGE_SCRIPT, removeShippedImage, saveLocalImage, shipImage } from '../src/deploy/image-archive.js';
import { spawnSync } from 'node:child_process';
import { runDeploy } from '../src/deploy/run.js';
import { deployJson, deploySummaryLines } from '../src/deploy/summary.js';
import { InputError } from '../src/errors.js';
import { validateInventory, type Host, type Inventory } from '../src/inventory/index.js';
import { createCsr, generateKeyPair, initPki, signCsr } from '../src/pki/index.js';
import type { RunResult, Runner } from '../src/runner.js';

function site(): Inventory {
  return validateInventory({
    site: 'lab',
    hosts: [
      { name: 'c1', addresses: ['10.9.0.11'], roles: ['central'] },
      { name: 'c2', addresses: ['10.9.0.12'], roles: ['central'] },
      { name: 'c3', addresses: ['10.9.0.13'], roles: ['central'] },
      { name: 'w1', addresses: ['10.9.0.21'], roles: ['worker'], encap: { ip: '10.9.0.21' } },
      { name: 'w2', addresses: ['10.9.0.22'], roles: ['worker'], encap: { ip: '10.9.0.22' } },
    ],
  }).inventory;
}

function manifestFor(h: Host): BundleManifest {
  return certificateOnlyManifest(h, 'lab');
}

let tmp: string;
let pkiDir: string;
let hostKey: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-deploy-test-'));
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'test' });
  hostKey = (await generateKeyPair(2048)).privateKeyPem;
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A host that answers like `apply --json` would: needs a certificate until one matching its key arrives. */
class ScriptedHost implements RemoteHost {
  readonly calls: { argv: string[]; input?: string }[] = [];
  shipImage?: (ref: string) => Promise<string | undefined>;
  pushed: string[] = [];
  hasCert = false;
  closed = false;
  constructor(
    readonly name: string,
    private readonly csr: string,
    private readonly opts: { down?: string; applyExit?: number; order?: string[] } = {},
  ) {}
  async unreachableReason(): Promise<string | undefined> {
    this.opts.order?.push(`start ${this.name}`);
    return this.opts.down;
  }
  async ensureTool(): Promise<boolean> {
    return true;
  }
  async pushDirectory(local: string): Promise<void> {
    this.pushed.push(...(await fs.readdir(local)));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  async run(argv: readonly string[], opts: RemoteRunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv: [...argv], ...(opts.input === undefined ? {} : { input: opts.input }) });
    if (this.opts.applyExit === 2) return { stdout: '', stderr: 'bundle: manifest.json: files[0].sha256: mismatch', exitCode: 2 };
    if (argv.includes('--certificate')) {
      const cert = forge.pki.certificateFromPem(opts.input ?? '');
      const pub = forge.pki.publicKeyToPem(cert.publicKey);
      const mine = forge.pki.publicKeyToPem(forge.pki.setRsaPublicKey((forge.pki.privateKeyFromPem(hostKey) as forge.pki.rsa.PrivateKey).n, (forge.pki.privateKeyFromPem(hostKey) as forge.pki.rsa.PrivateKey).e));
      if (pub !== mine) return { stdout: '', stderr: 'certificate does not match host.key', exitCode: 2 };
      this.hasCert = true;
      this.opts.order?.push(`done ${this.name}`);
      return { stdout: JSON.stringify({ host: this.name, status: 'converged', dryRun: false, changes: [{ kind: 'certificate', target: 'host.pem', action: 'installed' }], health: [{ check: 'stunnel', ok: true, detail: 'running' }] }), stderr: '', exitCode: 0 };
    }
    if (!this.hasCert) {
      return { stdout: JSON.stringify({ host: this.name, status: 'needs-certificate', dryRun: false, changes: [{ kind: 'file', target: '/etc/x', action: 'created' }], csr: this.csr, signCommand: 'ovn-deploy pki sign-csr ...', health: [] }), stderr: '', exitCode: 3 };
    }
    this.opts.order?.push(`done ${this.name}`);
    return { stdout: JSON.stringify({ host: this.name, status: 'converged', dryRun: false, changes: [], health: [] }), stderr: '', exitCode: 0 };
  }
}

const signer = (dir: string) => async (csrPem: string, req: BundleManifest['certificate'], h: Host): Promise<string> =>
  (await signCsr(dir, csrPem, { role: req.role, name: req.name, sans: req.sans, host: h.name })).certPem;

describe('planDeploy', () => {
  it('puts centrals before workers and keeps inventory order', () => {
    const p = planDeploy(site());
    expect(p.phases.map((ph) => [ph.name, ph.hosts.map((h) => h.name)])).toEqual([
      ['centrals', ['c1', 'c2', 'c3']],
      ['workers', ['w1', 'w2']],
    ]);
    expect(p.concurrency).toBe(4);
  });
  it('--hosts selects a subset; unknown names and bad concurrency are input errors listing all', () => {
    expect(planDeploy(site(), { hosts: ['w2', 'c2'] }).phases.map((ph) => ph.hosts.map((h) => h.name))).toEqual([['c2'], ['w2']]);
    try {
      planDeploy(site(), { hosts: ['nope'], concurrency: 0 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).problems.map((p) => p.path)).toEqual(['--hosts', '--concurrency']);
    }
  });
  it('central add: existing centrals, then the new one, then workers', () => {
    const p = planDeploy(site(), { addCentral: 'c3' });
    expect(p.phases.map((ph) => ph.hosts.map((h) => h.name))).toEqual([['c1', 'c2'], ['c3'], ['w1', 'w2']]);
    expect(() => planDeploy(site(), { addCentral: 'w1' })).toThrow(/not a central/);
    expect(() => planDeploy(site(), { addCentral: 'c1' })).toThrow(/bootstraps/);
  });
});

describe('checkCsrMatches', () => {
  const h = (): Host => site().hosts[0] as Host;
  it('accepts a CSR with exactly the requested CN and SANs', () => {
    const csr = createCsr(hostKey, 'c1', ['c1', '10.9.0.11']);
    expect(csrSans(csr).sort()).toEqual(['dns:c1', 'ip:10.9.0.11']);
    expect(() => checkCsrMatches(csr, manifestFor(h()).certificate, 'c1')).not.toThrow();
  });
  it('refuses another CN, an extra SAN and a missing SAN, all at once', () => {
    const csr = createCsr(hostKey, 'c2', ['c1', 'evil.example.org']);
    try {
      checkCsrMatches(csr, manifestFor(h()).certificate, 'c1');
      expect.unreachable();
    } catch (e) {
      const msgs = (e as InputError).problems.map((p) => `${p.path}: ${p.message}`);
      expect(msgs).toEqual([
        'subject.CN: expected "c1", the request says "c2"',
        'subjectAltName: not asked for by the bundle: dns:evil.example.org',
        'subjectAltName: missing: ip:10.9.0.11',
      ]);
    }
  });
});

describe('deployHost (mocked ssh)', () => {
  it('signs the CSR on the admin side and sends only the certificate', async () => {
    const h = site().hosts[3] as Host;
    const bundle = path.join(tmp, 'b-w1');
    await fs.mkdir(path.join(bundle, 'files'), { recursive: true });
    await fs.writeFile(path.join(bundle, 'manifest.json'), '{}');
    const remote = new ScriptedHost('w1', createCsr(hostKey, 'w1', ['w1', '10.9.0.21']));
    const r = await deployHost(h, 'workers', bundle, manifestFor(h), { transport: sshTransport(remote, h), sign: signer(pkiDir), log: () => undefined });
    expect(r).toMatchObject({ host: 'w1', status: 'converged', signed: true, toolShipped: true });
    expect(r.changes.map((c) => c.kind)).toEqual(['file', 'certificate']);
    expect(remote.pushed.sort()).toEqual(['files', 'manifest.json']);
    expect(remote.calls.map((c) => c.argv.slice(2).join(' '))).toEqual([
      'apply --bundle /var/lib/ovn-deploy/bundle --trust-ca /var/lib/ovn-deploy/bundle/trust-ca.pem --json',
      'apply --bundle /var/lib/ovn-deploy/bundle --trust-ca /var/lib/ovn-deploy/bundle/trust-ca.pem --json --certificate -',
    ]);
    const sent = remote.calls[1]?.input ?? '';
    expect(sent).toMatch(/BEGIN CERTIFICATE/);
    expect(sent).not.toMatch(/PRIVATE KEY/);
    expect(remote.closed).toBe(true);
    // Converged hosts are not asked again.
    const again = await deployHost(h, 'workers', bundle, manifestFor(h), { transport: sshTransport(remote, h), sign: signer(pkiDir), log: () => undefined });
    expect(again).toMatchObject({ status: 'converged', signed: false, changes: [] });
  });

  it('does not sign a CSR that asks for more than the bundle does', async () => {
    const h = site().hosts[4] as Host;
    const remote = new ScriptedHost('w2', createCsr(hostKey, 'w2', ['w2', '10.9.0.22', 'c1']));
    const r = await deployHost(h, 'workers', tmp, manifestFor(h), { transport: sshTransport(remote, h), sign: signer(pkiDir), log: () => undefined });
    expect(r.status).toBe('failed');
    expect(r.signed).toBe(false);
    expect(r.error).toMatch(/not asked for by the bundle: dns:c1/);
    expect(remote.calls).toHaveLength(1);
  });

  it('reports an unreachable host and an apply that rejects its bundle', async () => {
    const h = site().hosts[0] as Host;
    const down = await deployHost(h, 'centrals', tmp, manifestFor(h), { transport: sshTransport(new ScriptedHost('c1', '', { down: 'ssh: connect to host 10.9.0.11 port 22: Connection refused' }), h), sign: signer(pkiDir), log: () => undefined });
    expect(down).toMatchObject({ status: 'unreachable', error: 'ssh: connect to host 10.9.0.11 port 22: Connection refused' });
    const bad = await deployHost(h, 'centrals', tmp, manifestFor(h), { transport: sshTransport(new ScriptedHost('c1', '', { applyExit: 2 }), h), sign: signer(pkiDir), log: () => undefined });
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatch(/exited 2: bundle: manifest.json: files\[0\].sha256: mismatch/);
  });
});

describe('runDeploy (mocked ssh)', () => {
  it('one unreachable host is reported, the others converge, centrals finish before workers start', async () => {
    const inv = site();
    const order: string[] = [];
    const remotes = new Map(
      inv.hosts.map((h) => [h.name, new ScriptedHost(h.name, createCsr(hostKey, h.name, [h.name, ...h.addresses]), { order, ...(h.name === 'c2' ? { down: 'Connection timed out' } : {}) })]),
    );
    const result = await runDeploy({
      inventory: inv,
      plan: planDeploy(inv, { concurrency: 2 }),
      render: (h) => ({ manifest: manifestFor(h), files: new Map([['manifest.json', { content: '{}' }], ['files/etc/x', { content: 'x' }]]) }),
      connect: (h) => remotes.get(h.name) as ScriptedHost,
      sign: signer(pkiDir),
      progress: 'silent',
    });
    expect(result.ok).toBe(false);
    expect(result.hosts.map((h) => `${h.host}:${h.status}`)).toEqual(['c1:converged', 'c2:unreachable', 'c3:converged', 'w1:converged', 'w2:converged']);
    const firstWorker = order.findIndex((e) => e.startsWith('start w'));
    const lastCentral = Math.max(order.indexOf('done c1'), order.indexOf('done c3'));
    expect(firstWorker).toBeGreaterThan(lastCentral);
    const json = deployJson(result);
    expect(json.hosts.find((h) => h.host === 'c1')?.changeCount).toBe(2);
    const lines = deploySummaryLines(result);
    expect(lines[0]).toMatch(/^HOST\s+ROLES\s+STATUS\s+CHANGES/);
    expect(lines.find((l) => l.startsWith('c2'))).toMatch(/UNREACHABLE .*Connection timed out/);
    expect(lines.at(-1)).toMatch(/1 of 5 hosts not converged \(c2\)/);
  });
});

describe('removeCentral (mocked ssh)', () => {
  const leaveReport = { dbs: [{ db: 'OVN_Northbound', outcome: 'left', detail: 'left the cluster' }, { db: 'OVN_Southbound', outcome: 'left', detail: 'left the cluster' }], stopped: ['ovn-northd'], movedAside: [] };
  const remoteFor = (answer: Partial<RunResult>, down?: string) => {
    const calls: string[][] = [];
    const r: RemoteHost = {
      name: 'c3',
      unreachableReason: async () => down,
      ensureTool: async () => false,
      pushDirectory: async () => undefined,
      close: async () => undefined,
      run: async (argv) => {
        calls.push([...argv]);
        return { stdout: '', stderr: '', exitCode: 0, ...answer };
      },
    };
    return { r, calls };
  };
  it('runs central leave-local on the host and returns its report', async () => {
    const { removeCentral } = await import('../src/deploy/central-remove.js');
    const { r, calls } = remoteFor({ stdout: JSON.stringify(leaveReport) });
    const rep = await removeCentral(site(), 'c3', () => r);
    expect(calls).toEqual([['node', '/opt/ovn-deploy/current/dist/cli.js', 'central', 'leave-local', '--json']]);
    expect(rep.dbs.map((d) => d.outcome)).toEqual(['left', 'left']);
  });
  it('refuses a worker, an unknown host, an unreachable central and reports a failed leave', async () => {
    const { removeCentral } = await import('../src/deploy/central-remove.js');
    const ok = remoteFor({ stdout: '{}' }).r;
    await expect(removeCentral(site(), 'w1', () => ok)).rejects.toThrow(/w1 is not a central/);
    await expect(removeCentral(site(), 'nope', () => ok)).rejects.toThrow(/no host "nope"/);
    await expect(removeCentral(site(), 'c3', () => remoteFor({}, 'Connection refused').r)).rejects.toThrow(/c3 is unreachable \(Connection refused\): it cannot leave the cluster cleanly/);
    await expect(removeCentral(site(), 'c3', () => remoteFor({ exitCode: 1, stderr: 'OVN_Northbound: still "leaving cluster" after 60 s' }).r)).rejects.toThrow(/leave-local on c3 exited 1: OVN_Northbound: still "leaving cluster"/);
  });
});

describe('container images (mocked ssh): shipped only to a host without that image ID, loaded by apply, removed after', () => {
  const ID = 'e'.repeat(64);
  const IMG = 'localhost/ovn-deploy-metadata-agent:t1';

  it('deployHost passes the shipped archive to every apply run and removes it afterwards', async () => {
    const h = site().hosts[3] as Host;
    const remote = new ScriptedHost('w1', createCsr(hostKey, 'w1', ['w1', '10.9.0.21']));
    const archive = `/var/lib/ovn-deploy/images/${ID}.tar`;
    const asked: string[] = [];
    remote.shipImage = async (ref: string) => {
      asked.push(ref);
      return archive;
    };
    const r = await deployHost(h, 'workers', tmp, { ...manifestFor(h), images: [IMG] }, { transport: sshTransport(remote, h), sign: signer(pkiDir), log: () => undefined });
    expect(r).toMatchObject({ status: 'converged', imageShipped: true });
    expect(asked).toEqual([IMG]);
    const applies = remote.calls.filter((c) => c.argv.includes('apply'));
    expect(applies).toHaveLength(2);
    for (const a of applies) expect(a.argv.slice(-2)).toEqual(['--image-archive', archive]);
    expect(remote.calls.at(-1)?.argv).toEqual(['rm', '-f', '--', archive]);
    // Nothing to ship: no --image-archive, nothing removed.
    const none = new ScriptedHost('w1', '');
    none.hasCert = true;
    none.shipImage = async () => undefined;
    const again = await deployHost(h, 'workers', tmp, { ...manifestFor(h), images: [IMG] }, { transport: sshTransport(none, h), sign: signer(pkiDir), log: () => undefined });
    expect(again.imageShipped).toBeUndefined();
    expect(none.calls.map((c) => c.argv.includes('--image-archive') || c.argv[0] === 'rm')).toEqual([false]);
  });

  it('shipImage asks the host for its image ID and sends the archive only when it differs', async () => {
    const file = path.join(tmp, `${ID}.tar`);
    await fs.writeFile(file, 'archive bytes');
    const img = { ref: IMG, id: ID, file, bytes: 13 };
    const host = (hostId: string | undefined) => {
      const calls: { argv: string[]; inputFile?: string }[] = [];
      const r: RemoteHost = {
        name: 'w1',
        unreachableReason: async () => undefined,
        ensureTool: async () => false,
        pushDirectory: async () => undefined,
        close: async () => undefined,
        run: async (argv, o = {}) => {
          calls.push({ argv: [...argv], ...(o.inputFile === undefined ? {} : { inputFile: o.inputFile }) });
          if (argv[0] === 'podman') return hostId === undefined ? { stdout: '', stderr: 'no such image', exitCode: 125 } : { stdout: `${hostId}\n`, stderr: '', exitCode: 0 };
          return { stdout: '', stderr: '', exitCode: 0 };
        },
      };
      return { r, calls };
    };
    const same = host(ID);
    expect(await shipImage(same.r, img)).toBeUndefined();
    expect(same.calls).toHaveLength(1);
    for (const hostId of [undefined, 'f'.repeat(64)]) {
      const other = host(hostId);
      expect(await shipImage(other.r, img)).toBe(`/var/lib/ovn-deploy/images/${ID}.tar`);
      expect(other.calls[1]).toEqual({ argv: ['sh', '-c', RECEIVE_IMAGE_SCRIPT, 'ovn-deploy-image', '/var/lib/ovn-deploy/images', `${ID}.tar`], inputFile: file });
    }
    await expect(removeShippedImage(same.r, '/etc/passwd')).rejects.toThrow(/not an image archive of ours/);
  });

  it('the receiving script writes atomically into a 0700 directory and refuses a symlinked one', async () => {
    const dir = path.join(tmp, 'recv', 'images');
    const run = (d: string) => spawnSync('sh', ['-c', RECEIVE_IMAGE_SCRIPT, 'x', d, `${ID}.tar`], { input: 'payload', encoding: 'utf8' });
    expect(run(dir).status).toBe(0);
    expect(await fs.readFile(path.join(dir, `${ID}.tar`), 'utf8')).toBe('payload');
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fs.readdir(dir)).filter((f) => f.startsWith('.incoming'))).toEqual([]);
    const target = path.join(tmp, 'recv', 'elsewhere');
    await fs.mkdir(target);
    await fs.symlink(target, path.join(tmp, 'recv', 'link'));
    const refused = run(path.join(tmp, 'recv', 'link'));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/symlink/);
    expect(await fs.readdir(target)).toEqual([]);
  });
});

describe('saveLocalImage: the admin-side archive cache', () => {
  it('saves once per image ID, reuses it, and prunes only our own archives of other IDs unused for a week', async () => {
    const dir = path.join(tmp, 'image-cache');
    await fs.mkdir(dir, { recursive: true });
    const ID = '1'.repeat(64);
    const old = path.join(dir, `${'2'.repeat(64)}.tar`);
    const young = path.join(dir, `${'3'.repeat(64)}.tar`);
    const foreign = path.join(dir, 'notes.tar');
    const linkTarget = path.join(tmp, 'elsewhere.tar');
    for (const f of [old, young, foreign, linkTarget]) await fs.writeFile(f, 'x');
    const staleLink = path.join(dir, `${'4'.repeat(64)}.tar`);
    await fs.symlink(linkTarget, staleLink);
    const weekAgo = new Date(Date.now() - 8 * 24 * 3600_000);
    for (const f of [old, foreign]) await fs.utimes(f, weekAgo, weekAgo);
    await fs.lutimes(staleLink, weekAgo, weekAgo);
    const saves: string[][] = [];
    const runner: Runner = {
      run: async (argv) => {
        if (argv[1] === 'image') return { stdout: `${ID}\n`, stderr: '', exitCode: 0 };
        if (argv[1] === 'save') {
          saves.push([...argv]);
          await fs.writeFile(argv[argv.indexOf('--output') + 1] ?? '', 'image bytes');
          return { stdout: '', stderr: '', exitCode: 0 };
        }
        throw new Error(`unexpected ${argv.join(' ')}`);
      },
    };
    const img = await saveLocalImage(runner, 'localhost/agent:1', dir);
    expect(img).toEqual({ ref: 'localhost/agent:1', id: ID, file: path.join(dir, `${ID}.tar`), bytes: 11 });
    expect(saves).toHaveLength(1);
    expect(saves[0]).toContain('docker-archive');
    expect((await fs.readdir(dir)).sort()).toEqual([`${'3'.repeat(64)}.tar`, `${'4'.repeat(64)}.tar`, `${ID}.tar`, 'notes.tar'].sort());
    expect(await fs.readFile(linkTarget, 'utf8')).toBe('x');
    // Same ID again: no second save.
    await saveLocalImage(runner, 'localhost/agent:1', dir);
    expect(saves).toHaveLength(1);
    // Not in the admin's store: nothing saved, the host's podman pulls it.
    const missing: Runner = { run: async () => ({ stdout: '', stderr: 'no such image', exitCode: 125 }) };
    expect(await saveLocalImage(missing, 'registry.example.com/agent:2', dir)).toBeUndefined();
  });
});
