/**
 * Certificate renewal on a real host (the built CLI, real stunnel, ovsdb-server RAFT, ovn-northd,
 * ovs-vswitchd, ovn-controller in a throw-away network + mount namespace, as apply.slow.test.ts):
 * a converged host whose certificate is inside the renewal window asks for a certificate for a NEW
 * key while stunnel keeps serving the old one; once signed and installed, stunnel serves the new
 * serial from the same process (SIGHUP reload) and an OVSDB session opened through stunnel before
 * the renewal is still the same TCP connection and still receives updates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyReport } from '../src/apply/report.js';
import { applyFiles } from '../src/fsx.js';
import { parseInventory } from '../src/inventory/index.js';
import { cliPath, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { renderHostBundle } from '../src/render/index.js';
import { bundleSigner } from '../src/deploy/site-pki.js';
import { servedSerial } from '../src/tools/tls.js';
import { createHostNamespace, type HostNamespace } from './helpers/host-namespace.js';

const SITE = `site: renewt
certificates:
  leafValidityDays: 365
  renewalWindowDays: 30
hosts:
  - name: box1
    addresses: [192.0.2.10]
    roles: [central, worker]
    datapath: netdev
    encap: { type: geneve, ip: 192.0.2.10, interface: ul0 }
  - name: admin1
    addresses: [192.0.2.99]
    roles: [cms]
`;
const SANS = ['box1', '192.0.2.10'];
const NB_TLS_PORT = 6641;

let host: HostNamespace;
let tmp: string;
let bundleDir: string;
let pkiDir: string;
let monitor: ChildProcess | undefined;
let monitorOut = '';

async function apply(extra: string[] = [], input?: string): Promise<{ code: number; report: ApplyReport; stderr: string }> {
  const r = await host.run([process.execPath, cliPath, 'apply', '--trust-ca', pkiPaths(pkiDir).caCert, '--bundle', bundleDir, '--json', '--skip-packages', ...extra], {
    allowFailure: true,
    timeoutMs: 180_000,
    ...(input === undefined ? {} : { input }),
  });
  try {
    return { code: r.exitCode, report: JSON.parse(r.stdout) as ApplyReport, stderr: r.stderr };
  } catch {
    throw new Error(`apply printed no JSON report (exit ${r.exitCode}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/**
 * The stunnel server's pid as the system sees it (not the supervisor's status file): the one
 * process in this host's network namespace whose command line is the bundle's stunnel argv
 * (other tests' namespaces may run the same argv).
 */
function stunnelPid(): number {
  const manifest = JSON.parse(readFileSync(path.join(bundleDir, 'manifest.json'), 'utf8')) as { services: { name: string; argv: string[] }[] };
  const argv = manifest.services.find((s) => s.name === 'stunnel-server')?.argv;
  expect(argv, 'stunnel-server in the bundle').toBeDefined();
  const cmdline = `${(argv as string[]).join('\0')}\0`;
  const netns = readlinkSync(`/proc/${host.holderPid}/ns/net`);
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/ns/net`) === netns && readFileSync(`/proc/${p}/cmdline`, 'latin1') === cmdline;
      } catch {
        return false; // exited meanwhile
      }
    });
  expect(pids, `processes running ${(argv as string[]).join(' ')} in the host namespace`).toHaveLength(1);
  expect(pids[0]).toBeGreaterThan(1);
  return pids[0] as number;
}

const normSerial = (hex: string): string => hex.toLowerCase().replace(/^0+/, '');
const spkiOfKey = (pem: string): string => createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'pem' }).toString();
const spkiOfCsr = (pem: string): string => {
  const k = forge.pki.certificationRequestFromPem(pem).publicKey as forge.pki.rsa.PublicKey;
  return createPublicKey(forge.pki.publicKeyToPem(k)).export({ type: 'spki', format: 'pem' }).toString();
};

/** A client identity of its own (not the host's files, which the renewal replaces). */
let clientCert: string;
let clientKey: string;
let caFile: string;

const served = async (): Promise<string> =>
  normSerial(await servedSerial(host.runner, { host: '192.0.2.10', port: NB_TLS_PORT, cert: clientCert, key: clientKey, caFile }));

/** The established TCP connections to the stunnel server's NB port (`local peer` pairs). */
async function nbConnections(): Promise<string[]> {
  const r = await host.run(['ss', '-Htn', 'state', 'established', `( dport = :${NB_TLS_PORT} )`]);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => `${f[2]} ${f[3]}`)
    .sort();
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; monitor output:\n${monitorOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createSwitch(name: string): Promise<void> {
  await host.run(['ovn-nbctl', '--db=unix:/var/run/ovn/ovnnb_db.sock', 'ls-add', name]);
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-renewal-slow-'));
  pkiDir = path.join(tmp, 'pki');
  bundleDir = path.join(tmp, 'bundle');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'apply-renewal-slow' });
  caFile = pkiPaths(pkiDir).caBundle;
  const inv = parseInventory(SITE, 'site.yaml').inventory;
  const bundle = renderHostBundle(inv, 'box1', { caBundlePem: readFileSync(caFile, 'utf8'), crlPem: readFileSync(pkiPaths(pkiDir).crl, 'utf8') }, { signer: await bundleSigner(pkiDir) });
  expect(bundle.manifest.certificate.renewalWindowDays).toBe(30);
  await applyFiles(bundleDir, bundle.files);
  // The admin's certificate (role cms: the NB admits centrals and cms hosts only) for the probes and the monitor.
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  clientKey = path.join(tmp, 'client.key');
  writeFileSync(clientKey, forge.pki.privateKeyToPem(keys.privateKey), { mode: 0o600 });
  const { createCsr } = await import('../src/pki/index.js');
  const clientPem = (await signCsr(pkiDir, createCsr(forge.pki.privateKeyToPem(keys.privateKey), 'admin1', ['admin1']), { role: 'cms', name: 'admin1', sans: ['admin1'] })).certPem;
  clientCert = path.join(tmp, 'client.pem');
  writeFileSync(clientCert, clientPem);
  host = await createHostNamespace('ovnd-renew');
  await host.run(['ip', 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0p']);
  await host.run(['ip', 'addr', 'add', '192.0.2.10/24', 'dev', 'ul0']);
  await host.run(['ip', 'link', 'set', 'ul0', 'up']);
  await host.run(['ip', 'link', 'set', 'ul0p', 'up']);
}, 60_000);

afterAll(async () => {
  monitor?.kill('SIGKILL');
  await host?.destroy();
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
});

describe('certificate renewal on a real host (stunnel reloads, established OVSDB session survives)', () => {
  let oldSerial = '';
  let pid = 0;
  let connections: string[] = [];
  let renewalCsr = '';

  it('converges with a certificate valid for 10 days (inside the 30-day window)', async () => {
    const first = await apply();
    expect(first.code).toBe(3);
    const cert = await signCsr(pkiDir, first.report.csr ?? '', { role: 'central', name: 'box1', sans: SANS, validityDays: 10 });
    const r = await apply(['--certificate', '-'], cert.certPem);
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    oldSerial = normSerial(new X509Certificate(cert.certPem).serialNumber);
    expect(await served()).toBe(oldSerial);
    pid = stunnelPid();
    expect(pid).toBeGreaterThan(0);
  });

  it('an OVSDB monitor through stunnel (TLS to the NB port) is established and receives updates', async () => {
    const argv = [
      'nsenter', `--target=${host.holderPid}`, '--mount', '--net', '--',
      'ovsdb-client', `--private-key=${clientKey}`, `--certificate=${clientCert}`, `--ca-cert=${caFile}`,
      'monitor', `ssl:192.0.2.10:${NB_TLS_PORT}`, 'OVN_Northbound', 'Logical_Switch', 'name',
    ];
    monitor = spawn(argv[0] ?? 'nsenter', argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    monitor.stdout?.on('data', (d: Buffer) => (monitorOut += d.toString()));
    monitor.stderr?.on('data', (d: Buffer) => (monitorOut += d.toString()));
    await createSwitch('before-renewal');
    await waitFor('the monitor to see before-renewal', () => monitorOut.includes('before-renewal'));
    connections = await nbConnections();
    expect(connections).toHaveLength(1);
  });

  it('apply inside the window: exit 3, a CSR for a NEW key, stunnel still serves the old certificate from the same pid', async () => {
    const keyBefore = (await host.run(['cat', '/etc/ovn-deploy/pki/host.key'])).stdout;
    const r = await apply();
    expect(r.code).toBe(3);
    expect(r.report.status).toBe('needs-certificate');
    expect(r.report.changes).toContainEqual({ kind: 'certificate', target: '/etc/ovn-deploy/pki/host.pem', action: 'renewal-requested' });
    expect(r.report.changes.some((c) => c.kind === 'service')).toBe(false);
    renewalCsr = r.report.csr ?? '';
    const next = (await host.run(['cat', '/etc/ovn-deploy/pki/host.key.next'])).stdout;
    expect(spkiOfCsr(renewalCsr)).toBe(spkiOfKey(next));
    expect(spkiOfCsr(renewalCsr)).not.toBe(spkiOfKey(keyBefore));
    expect((await host.run(['stat', '-c', '%a', '/etc/ovn-deploy/pki/host.key.next'])).stdout.trim()).toBe('600');
    expect(await served()).toBe(oldSerial);
    expect(stunnelPid()).toBe(pid);
    // Asked again: the same pending key, the same CSR.
    const again = await apply();
    expect(again.code).toBe(3);
    expect(again.report.csr).toBe(renewalCsr);
  });

  it('apply --certificate - with the signed CSR: stunnel serves the NEW serial, same pid, the old session is the same connection and still gets updates', async () => {
    const cert = await signCsr(pkiDir, renewalCsr, { role: 'central', name: 'box1', sans: SANS, validityDays: 365 });
    const newSerial = normSerial(new X509Certificate(cert.certPem).serialNumber);
    expect(newSerial).not.toBe(oldSerial);
    const r = await apply(['--certificate', '-'], cert.certPem);
    expect(r.report.health.filter((h) => !h.ok)).toEqual([]);
    expect(r.code).toBe(0);
    const changes = r.report.changes.map((c) => `${c.kind}:${c.action}:${c.target}`);
    expect(changes).toContain('certificate:rotate-key:/etc/ovn-deploy/pki/host.key');
    expect(changes).toContain('service:reload:stunnel-server');
    expect(changes.some((c) => c.startsWith('service:restart'))).toBe(false);
    await waitFor('stunnel to serve the new serial', async () => (await served()) === newSerial);
    expect(stunnelPid()).toBe(pid);
    expect((await host.run(['test', '-e', '/etc/ovn-deploy/pki/host.key.next'], { allowFailure: true })).exitCode).not.toBe(0);
    // The session opened before the renewal: still running, the same TCP connection, still served.
    expect(monitor?.exitCode).toBe(null);
    expect(await nbConnections()).toEqual(connections);
    await createSwitch('after-renewal');
    await waitFor('the monitor to see after-renewal', () => monitorOut.includes('after-renewal'));
    expect(await nbConnections()).toEqual(connections);
    // Nothing is owed any more.
    const quiet = await apply();
    expect(quiet.code).toBe(0);
    expect(quiet.report.changes).toEqual([]);
  });
});
