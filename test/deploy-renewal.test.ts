/**
 * deploy and certificate renewal against scripted hosts ("mocked ssh" and a mocked apply that
 * follows apply's renewal contract): the CSR check, the signing and the keys are real. A host
 * inside its renewal window renews during a normal deploy; `--renew-certificates` makes every
 * host ask; the summary names the hosts that got a new certificate.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BundleManifest } from '../src/bundle/manifest.js';
import { certificateOnlyManifest } from './helpers/deploy-fixture.js';
import { planDeploy } from '../src/deploy/plan.js';
import type { RemoteHost, RemoteRunOptions } from '../src/deploy/remote.js';
import { runDeploy } from '../src/deploy/run.js';
import { deployJson, deploySummaryLines } from '../src/deploy/summary.js';
import { validateInventory, type Host, type Inventory } from '../src/inventory/index.js';
import { createCsr, generateKeyPair, initPki, signCsr } from '../src/pki/index.js';
import type { RunResult } from '../src/runner.js';

let tmp: string;
let pkiDir: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-renewal-test-'));
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'deploy-renewal-test' });
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

function site(): Inventory {
  return validateInventory({
    site: 'lab',
    hosts: [
      { name: 'c1', addresses: ['10.9.0.11'], roles: ['central'] },
      { name: 'w1', addresses: ['10.9.0.21'], roles: ['worker'], encap: { ip: '10.9.0.21' } },
      { name: 'w2', addresses: ['10.9.0.22'], roles: ['worker'], encap: { ip: '10.9.0.22' } },
    ],
  }).inventory;
}

function manifestFor(h: Host): BundleManifest {
  return certificateOnlyManifest(h, 'lab', { renewalWindowDays: 30 });
}

const spki = (keyPem: string): string => createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();

/** A converged host whose apply follows the renewal contract (mocked apply: no daemons here). */
class RenewingHost implements RemoteHost {
  readonly calls: { argv: string[]; input?: string }[] = [];
  serial = '';
  private pendingKey: string | undefined;
  constructor(
    readonly name: string,
    private key: string,
    private readonly sans: string[],
    /** Its certificate is inside the renewal window. */
    private due: boolean,
  ) {}
  async unreachableReason(): Promise<string | undefined> {
    return undefined;
  }
  async ensureTool(): Promise<boolean> {
    return false;
  }
  async pushDirectory(): Promise<void> {}
  async close(): Promise<void> {}
  async run(argv: readonly string[], opts: RemoteRunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv: [...argv], ...(opts.input === undefined ? {} : { input: opts.input }) });
    const report = (status: string, changes: object[], more: object = {}) => JSON.stringify({ host: this.name, status, dryRun: false, changes, health: [], ...more });
    if (argv.includes('--certificate')) {
      const cert = new X509Certificate(opts.input ?? '');
      const pub = cert.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      if (this.pendingKey === undefined || pub !== spki(this.pendingKey)) return { stdout: '', stderr: 'does not match', exitCode: 2 };
      this.key = this.pendingKey;
      this.pendingKey = undefined;
      this.due = false;
      this.serial = cert.serialNumber;
      return { stdout: report('converged', [{ kind: 'certificate', target: 'host.pem', action: 'install' }, { kind: 'service', target: 'stunnel-client', action: 'reload' }]), stderr: '', exitCode: 0 };
    }
    if (this.due || argv.includes('--renew-certificate')) {
      this.pendingKey ??= (await generateKeyPair(2048)).privateKeyPem;
      const csr = createCsr(this.pendingKey, this.name, this.sans);
      return { stdout: report('needs-certificate', [{ kind: 'certificate', target: 'host.pem', action: 'renewal-requested' }], { csr, signCommand: 'x' }), stderr: '', exitCode: 3 };
    }
    return { stdout: report('converged', []), stderr: '', exitCode: 0 };
  }
  get currentKey(): string {
    return this.key;
  }
}

async function hostsOf(inv: Inventory, due: string[]): Promise<Map<string, RenewingHost>> {
  const m = new Map<string, RenewingHost>();
  for (const h of inv.hosts) m.set(h.name, new RenewingHost(h.name, (await generateKeyPair(2048)).privateKeyPem, [h.name, ...h.addresses], due.includes(h.name)));
  return m;
}

const deploy = (inv: Inventory, remotes: Map<string, RenewingHost>, renewCertificates?: boolean) =>
  runDeploy({
    inventory: inv,
    plan: planDeploy(inv),
    render: (h) => ({ manifest: manifestFor(h), files: new Map([['manifest.json', { content: '{}' }]]) }),
    connect: (h) => remotes.get(h.name) as RenewingHost,
    sign: async (csrPem, req, h) => (await signCsr(pkiDir, csrPem, { role: req.role, name: req.name, sans: req.sans, host: h.name })).certPem,
    progress: 'silent',
    ...(renewCertificates === undefined ? {} : { renewCertificates }),
  });

describe('deploy: certificate renewal (mocked ssh, mocked apply)', () => {
  it('a host inside its renewal window renews during a normal deploy; the others are untouched; the summary names it', async () => {
    const inv = site();
    const remotes = await hostsOf(inv, ['w1']);
    const keyBefore = remotes.get('w1')?.currentKey;
    const r = await deploy(inv, remotes);
    expect(r.ok).toBe(true);
    expect(r.hosts.map((h) => `${h.host}:${h.status}:${h.signed}:${h.renewed}`)).toEqual(['c1:converged:false:false', 'w1:converged:true:true', 'w2:converged:false:false']);
    const w1 = remotes.get('w1') as RenewingHost;
    expect(w1.calls.map((c) => c.argv.slice(2).join(' '))).toEqual([
      'apply --bundle /var/lib/ovn-deploy/bundle --trust-ca /var/lib/ovn-deploy/bundle/trust-ca.pem --json',
      'apply --bundle /var/lib/ovn-deploy/bundle --trust-ca /var/lib/ovn-deploy/bundle/trust-ca.pem --json --certificate -',
    ]);
    expect(w1.currentKey).not.toBe(keyBefore);
    expect(w1.serial).not.toBe('');
    const lines = deploySummaryLines(r);
    expect(lines.find((l) => l.startsWith('w1'))).toMatch(/\brenewed\b/);
    expect(lines).toContain('new certificates (new key, new serial): w1');
    expect(deployJson(r).hosts.find((h) => h.host === 'w1')?.renewed).toBe(true);
  });

  it('--renew-certificates: every host asks for a certificate for a new key (first apply only) and gets a new serial', async () => {
    const inv = site();
    const remotes = await hostsOf(inv, []);
    const before = new Map([...remotes].map(([n, h]) => [n, h.currentKey]));
    const r = await deploy(inv, remotes, true);
    expect(r.ok).toBe(true);
    expect(r.hosts.every((h) => h.renewed && h.signed)).toBe(true);
    for (const [name, h] of remotes) {
      expect(h.calls.map((c) => c.argv.slice(8).join(' '))).toEqual(['--renew-certificate', '--certificate -']);
      expect(h.currentKey).not.toBe(before.get(name));
    }
    expect(new Set([...remotes.values()].map((h) => h.serial)).size).toBe(3);
    expect(deploySummaryLines(r)).toContain('new certificates (new key, new serial): c1, w1, w2');
    // Without the flag afterwards: nothing is due, nothing renewed.
    const again = await deploy(inv, remotes);
    expect(again.hosts.some((h) => h.renewed || h.signed)).toBe(false);
    expect(deploySummaryLines(again).some((l) => l.startsWith('new certificates'))).toBe(false);
  });
});

describe('siteSigner', () => {
  it("issues for the inventory's leaf lifetime (certificates.leafValidityDays), not a built-in default", async () => {
    const { siteSigner } = await import('../src/deploy/site-pki.js');
    const host = site().hosts[1] as Host;
    const m = manifestFor(host);
    const key = (await generateKeyPair(2048)).privateKeyPem;
    const csr = createCsr(key, host.name, m.certificate.sans);
    for (const days of [17, 400]) {
      const pem = await siteSigner(pkiDir, days)(csr, m.certificate, host);
      const lifetimeDays = (Date.parse(new X509Certificate(pem).validTo) - Date.now()) / 86_400_000;
      expect(lifetimeDays).toBeGreaterThan(days - 1);
      expect(lifetimeDays).toBeLessThanOrEqual(days + 1);
    }
  });
});
