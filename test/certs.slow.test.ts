/**
 * The certificate lifecycle on a real sandbox (`up --workers 2`: stunnel, ovsdb-server,
 * ovn-controller in namespaces), one sandbox for the whole file:
 * status -> rotate under OVSDB traffic -> a rotation with a mismatched key rolled back ->
 * a 1-day certificate shown as due and renewed -> CA rollover refused out of order, then done
 * under traffic -> revoke worker2. Figures (rotation time, probe writes lost, rollover time) are
 * printed at the end.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxDeployment, type SandboxDeployment } from '../src/certs/sandbox-deployment.js';
import { connectsWith, inspectListener } from '../src/certs/probes.js';
import { rotateCertificates, RotationError } from '../src/certs/rotate.js';
import type { CertsStatusReport } from '../src/certs/status.js';
import { pkiPaths, rolloverPaths } from '../src/paths.js';
import { generateKeyPair, readBundle, readIndex } from '../src/pki/index.js';
import { startNbMonitor, startProbeWriter, type NbMonitor, type ProbeReport } from './helpers/ovsdb-traffic.js';
import { makeLeaf } from './helpers/tls-fixtures.js';
import { cli, cliOk, inNetns, nbNames, requireBuiltCli } from './sandbox-helpers.js';

const notRoot = process.getuid?.() !== 0;
if (notRoot) console.warn('certs.slow.test.ts: skipped, needs root (network namespaces, daemons)');

/** A probe write takes well under 0.4 s here even on a loaded machine: a second is a stall, not noise. */
const SLOWEST_WRITE_MS = 1000;

/** `certs status --json`: exit 0 when nothing needs attention, 1 when something is due or critical. */
async function certsStatus(dir: string): Promise<CertsStatusReport> {
  const r = await cli(['certs', 'status', '--dir', dir, '--json']);
  const report = JSON.parse(r.stdout) as CertsStatusReport;
  expect(r.code, `certs status exit with warnings ${JSON.stringify(report.warnings)}\n${r.stderr}`).toBe(report.warnings.length === 0 ? 0 : 1);
  return report;
}

describe.skipIf(notRoot)('ovn-deploy certs on the up sandbox (1 central + 2 workers)', () => {
  let parent: string;
  let dir: string;
  let d: SandboxDeployment;
  const tag = randomBytes(3).toString('hex');
  const figures: Record<string, number | string> = {};

  beforeAll(async () => {
    requireBuiltCli();
    parent = await mkdtemp(path.join(os.tmpdir(), 'od-certs-'));
    dir = path.join(parent, 'sb');
    await cliOk(['up', '--dir', dir, '--workers', '2', '--quiet'], { timeoutMs: 180_000 });
    d = await sandboxDeployment(dir);
  });

  afterAll(async () => {
    if (dir !== undefined) await cli(['down', '--dir', dir]);
    if (parent !== undefined) await rm(parent, { recursive: true, force: true });
    console.log(`certs.slow figures: ${JSON.stringify(figures)}`);
  });

  const central = () => d.endpoints.find((e) => e.stunnel.side === 'server')!;
  const worker = (i: number) => d.plan.workers[i - 1]!;
  const ep = (host: string) => d.endpoints.find((e) => e.host === host)!;
  /** The central's SB as worker i reaches it: its own tunnel's unix socket. */
  const sbVia = (i: number) => `unix:${d.site.workers[i - 1]!.paths.ovsdbSocket('central', 'sb')}`;
  const servedSerial = async () => (await inspectListener(d.runner, central().stunnel.listeners[0]!, { cert: central().certPath, key: central().keyPath })).servedSerial;

  /** Runs `action` with a monitor session and a 100 ms NB writer going through the operator's tunnel (the NB admits no worker). */
  async function underTraffic<T>(label: string, action: () => Promise<T>): Promise<{ result: T; probes: ProbeReport; monitor: NbMonitor }> {
    const w1 = worker(1);
    const monitor = startNbMonitor(w1.netns, d.remotes.nb);
    await monitor.waitFor('network1');
    const writer = startProbeWriter(w1.netns, d.remotes.nb, `${label}-${tag}`);
    // Some writes before, during and after the action.
    await new Promise((r) => setTimeout(r, 400));
    let result: T;
    let probes: ProbeReport;
    try {
      result = await action();
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      probes = await writer.stop();
    }
    return { result, probes, monitor };
  }

  async function assertTrafficSurvived(label: string, probes: ProbeReport, monitor: NbMonitor): Promise<void> {
    expect(probes.failures, JSON.stringify(probes.failures.slice(0, 3))).toEqual([]);
    expect(probes.attempts).toBeGreaterThan(5);
    // No write waited out the change either: a stall (a listener closed during a reload, a
    // handshake held up) would show here long before it became a lost write.
    expect(probes.slowestMs, `slowest probe write of ${label}`).toBeLessThan(SLOWEST_WRITE_MS);
    // Every write is in the NB, and the monitor session that was open all along printed each.
    const switches = new Set(nbNames(dir, 'Logical_Switch'));
    for (const name of probes.names) expect(switches.has(name), name).toBe(true);
    const last = probes.names[probes.names.length - 1]!;
    await monitor.waitFor(last);
    for (const name of probes.names) expect(monitor.output()).toContain(name);
    expect(monitor.alive(), `monitor died:\n${monitor.output().slice(-500)}`).toBe(true);
    await monitor.stop();
    figures[`${label}ProbeWrites`] = probes.attempts;
    figures[`${label}ProbeWritesLost`] = probes.failures.length;
    figures[`${label}SlowestWriteMs`] = probes.slowestMs;
  }

  /**
   * A later `up` re-renders every bundle (CA bundle and CRL from the PKI) and applies it: the
   * certificates the certs commands installed must stay, not be replaced by new CSRs.
   */
  async function upKeepsCertificates(): Promise<void> {
    const before = await certsStatus(dir);
    const r = await cliOk(['up', '--dir', dir, '--workers', '2'], { timeoutMs: 180_000 });
    const said = `${r.stdout}${r.stderr}`;
    expect(said).toMatch(/no change on any host/);
    expect(said).toMatch(/Certificates: 0 issued, 4 reused/);
    const after = await certsStatus(dir);
    expect(after.endpoints.map((e) => e.serial)).toEqual(before.endpoints.map((e) => e.serial));
    expect(after.endpoints[0]!.served.every((s) => s.matchesFile)).toBe(true);
    expect(after.warnings).toEqual([]);
  }

  it('certs status --json: every endpoint, the serial each listener serves, tunnels working, nothing due', async () => {
    const s = await certsStatus(dir);
    expect(s.endpoints.map((e) => [e.host, e.role, e.side])).toEqual([
      ['central', 'central', 'server'],
      ['operator', 'cms', 'client'],
      ['worker1', 'worker', 'client'],
      ['worker2', 'worker', 'client'],
    ]);
    const c = s.endpoints[0]!;
    expect(c.served).toHaveLength(2);
    for (const served of c.served) expect(served.serial).toBe(c.serial);
    for (const e of s.endpoints.slice(1)) expect(e.tunnel?.ok, e.tunnel?.detail).toBe(true);
    for (const e of s.endpoints) {
      expect(e.status).toBe('valid');
      expect(e.due).toBe(false);
      expect(e.keyMatchesCert).toBe(true);
      expect(e.daysLeft).toBeGreaterThan(700);
    }
    expect(s.due).toEqual([]);
    expect(s.crls).toHaveLength(1);
    expect(s.warnings).toEqual([]);
  });

  it('stunnel reloads refuse no new connection: the listeners are socket-activated and stay open', async () => {
    const w1 = worker(1);
    let running = true;
    const results = { attempts: 0, failed: [] as string[] };
    const loop = (async () => {
      while (running) {
        results.attempts += 1;
        const r = await d.runner.run(['ovsdb-client', '--timeout=3', 'list-dbs', d.remotes.sb], { netns: w1.netns, allowFailure: true, mutates: false });
        if (r.exitCode !== 0 || !r.stdout.includes('OVN_Southbound')) results.failed.push(r.stderr.trim());
      }
    })();
    // Both ends of the tunnel reload while new connections keep coming.
    const reloads = 10;
    for (let i = 0; i < reloads; i++) {
      await d.reload(i % 2 === 0 ? central() : ep('worker1'));
      await new Promise((r) => setTimeout(r, 50));
    }
    running = false;
    await loop;
    figures.reloadStressConnections = results.attempts;
    figures.reloadStressRefused = results.failed.length;
    expect(results.failed).toEqual([]);
    expect(results.attempts).toBeGreaterThan(reloads);
  });

  it('certs rotate --force under traffic: the monitor session survives, no probe write fails, new serials are served', async () => {
    const before = await certsStatus(dir);
    const { result, probes, monitor } = await underTraffic('rotate', () => cliOk(['certs', 'rotate', '--dir', dir, '--force', '--json']));
    const r = JSON.parse(result.stdout) as { outcomes: { certName: string; action: string; oldSerial: string; newSerial: string }[]; durationMs: number };
    figures.rotateAllMs = r.durationMs;
    figures.rotateAllCliMs = result.ms;
    expect(r.outcomes.map((o) => [o.certName, o.action])).toEqual([
      ['central', 'renewed'],
      ['operator', 'renewed'],
      ['worker1', 'renewed'],
      ['worker2', 'renewed'],
    ]);
    const after = await certsStatus(dir);
    for (const [i, e] of after.endpoints.entries()) {
      expect(e.serial).not.toBe(before.endpoints[i]!.serial);
      expect(e.serial).toBe(r.outcomes[i]!.newSerial);
    }
    // The listener serves the new certificate, and a new key came with it.
    expect(await servedSerial()).toBe(after.endpoints[0]!.serial);
    expect(after.endpoints[0]!.served.every((s) => s.matchesFile)).toBe(true);
    expect(await fs.readFile(central().keyPath, 'utf8')).not.toBe(await fs.readFile(`${central().keyPath}.prev`, 'utf8'));
    await assertTrafficSurvived('rotate', probes, monitor);
  });

  it('a later up after the rotation changes nothing and keeps the new serials', async () => {
    await upKeepsCertificates();
  });

  it('a rotation whose new key does not match its certificate is detected, rolled back and reported', async () => {
    const old = await servedSerial();
    const wrongKey = (await generateKeyPair(2048)).privateKeyPem;
    let error: unknown;
    try {
      await rotateCertificates(d, {
        hosts: ['central'],
        force: true,
        testHooks: {
          // Another key than the certificate's, as a broken copy would leave it.
          beforeReload: async (e) => fs.writeFile(e.keyPath, wrongKey, { mode: 0o600 }),
        },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RotationError);
    const e = error as RotationError;
    expect(e.message).toMatch(/failed to reload its configuration/);
    expect(e.message).toMatch(/rolled back/);
    const outcome = e.result.outcomes[0]!;
    expect(outcome.action).toBe('rolled-back');
    expect(outcome.restored).toBe(true);
    // The old certificate is served again and is the current one in the index; the abandoned one is revoked.
    expect(await servedSerial()).toBe(old);
    const index = await readIndex(d.pkiDir);
    const strip = (s: string) => s.replace(/^0+/, '');
    expect(index.find((x) => strip(x.serial) === old)?.status).toBe('valid');
    expect(index.find((x) => strip(x.serial) === outcome.newSerial)?.status).toBe('revoked');
    const s = await certsStatus(dir);
    expect(s.endpoints[0]!.serial).toBe(old);
    expect(s.endpoints[0]!.keyMatchesCert).toBe(true);
    expect(s.warnings).toEqual([]);
  });

  it('a certificate made to expire in 1 day shows as due in certs status, and rotate renews just that one', async () => {
    await cliOk(['certs', 'rotate', '--dir', dir, '--host', 'worker1', '--force', '--days', '1']);
    const s = await certsStatus(dir);
    const w1 = s.endpoints.find((e) => e.host === 'worker1')!;
    expect(w1.daysLeft).toBe(0);
    expect(w1.due).toBe(true);
    expect(s.due).toEqual(['worker1']);
    expect(s.warnings.join('\n')).toMatch(/worker1.*is due/);
    const r = await cliOk(['certs', 'rotate', '--dir', dir]);
    expect(r.stdout).toMatch(/1 certificate\(s\) renewed, 3 not due/);
    const after = await certsStatus(dir);
    const w1After = after.endpoints.find((e) => e.host === 'worker1')!;
    expect(w1After.serial).not.toBe(w1.serial);
    expect(w1After.due).toBe(false);
    expect(w1After.daysLeft).toBeGreaterThan(700);
    expect(after.due).toEqual([]);
  });

  it('ca-rollover under traffic: issuing from the new CA before every bundle trusts it is refused (and why), then the full rollover keeps every session and write', async () => {
    const cliMs: number[] = [];
    const { probes, monitor } = await underTraffic('rollover', async () => {
      const trust = await cli(['certs', 'ca-rollover', '--dir', dir, '--phase', 'trust', '--host', 'worker1,worker2']);
      expect(trust.code, trust.stderr).toBe(0);
      cliMs.push(trust.ms);
      const refused = await cli(['certs', 'ca-rollover', '--dir', dir, '--phase', 'issue']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/refusing phase 2 \(issue\)/);
      expect(refused.stderr).toMatch(/central: has not completed phase trust/);
      // Nothing switched: both CAs trusted, the old one still issues.
      const state = JSON.parse(await fs.readFile(rolloverPaths(d.pkiDir).state, 'utf8')) as { oldCa: { serial: string }; newCa: { serial: string } };
      expect(state.newCa.serial).not.toBe(state.oldCa.serial);
      expect((await readBundle(d.pkiDir)).map((c) => c.serial)).toEqual([state.oldCa.serial, state.newCa.serial]);
      expect((await certsStatus(dir)).cas.find((c) => c.issuing)?.serial).toBe(state.oldCa.serial);
      // Why it matters: the central has not reloaded its bundle, so a leaf from the new CA is refused.
      const store = pkiPaths(rolloverPaths(d.pkiDir).caStore(state.newCa.serial));
      const newCaLeaf = await makeLeaf(path.join(parent, 'why'), 'worker1', { cert: store.caCert, key: store.caKey }, ['extendedKeyUsage=clientAuth', 'authorityKeyIdentifier=keyid']);
      const listener = central().stunnel.listeners[1]!;
      const asNewCaLeaf = { netns: worker(1).netns, cert: newCaLeaf.cert, key: newCaLeaf.key };
      const before = await connectsWith(d.runner, listener, asNewCaLeaf);
      expect(before.ok, before.detail).toBe(false);
      expect(before.detail).toMatch(/unknown ca/);
      expect((await connectsWith(d.runner, listener, { netns: worker(1).netns, cert: ep('worker1').certPath, key: ep('worker1').keyPath })).ok).toBe(true);
      // Once the central completed phase 1 it accepts the new CA's leaves.
      const central1 = await cliOk(['certs', 'ca-rollover', '--dir', dir, '--phase', 'trust', '--host', 'central']);
      cliMs.push(central1.ms);
      const after = await connectsWith(d.runner, listener, asNewCaLeaf);
      expect(after.ok, after.detail).toBe(true);
      // The rest (issue, retire) in one go.
      const rest = await cliOk(['certs', 'ca-rollover', '--dir', dir]);
      cliMs.push(rest.ms);
      expect(rest.stdout).toMatch(/CA rollover complete/);
    });
    figures.caRolloverMs = cliMs.reduce((a, b) => a + b, 0);
    const s = await certsStatus(dir);
    const state = JSON.parse(await fs.readFile(rolloverPaths(d.pkiDir).state, 'utf8')) as { newCa: { commonName: string }; completedAt?: string };
    expect(state.completedAt).toBeDefined();
    expect(s.cas.map((c) => [c.commonName, c.issuing])).toEqual([[state.newCa.commonName, true]]);
    for (const e of s.endpoints) expect(e.issuer).toBe(state.newCa.commonName);
    for (const served of s.endpoints[0]!.served) {
      expect(served.matchesFile).toBe(true);
      expect(served.acceptedCas).toEqual([state.newCa.commonName]);
    }
    expect(s.crls.map((c) => c.issuer)).toEqual([state.newCa.commonName]);
    expect(s.rollover?.phase).toBe('complete');
    expect(s.warnings).toEqual([]);
    await assertTrafficSurvived('rollover', probes, monitor);
    // ovn-controller's own sessions through the tunnels were never cut either.
    const status = JSON.parse((await cli(['status', '--dir', dir, '--json'])).stdout) as { healthy: boolean; problems: string[] };
    expect(status.problems).toEqual([]);
    expect(status.healthy).toBe(true);
    // A leaf of the retired CA (worker1's previous certificate) no longer gets in.
    const old = await connectsWith(d.runner, central().stunnel.listeners[1]!, { netns: worker(1).netns, cert: `${ep('worker1').certPath}.prev`, key: `${ep('worker1').keyPath}.prev` });
    expect(old.ok, old.detail).toBe(false);
  });

  it('a later up after the CA rollover accepts the bundles signed by the new CA and keeps every certificate', async () => {
    await upKeepsCertificates();
  });

  it('certs revoke worker2: worker2 can no longer connect, worker1 still can', async () => {
    const r = await cliOk(['certs', 'revoke', 'worker2', '--dir', dir, '--json']);
    const result = JSON.parse(r.stdout) as { revoked: { name: string }[]; checks: { what: string; expected: string; outcome: { ok: boolean } }[] };
    expect(result.revoked.length).toBeGreaterThan(0);
    expect(result.revoked.every((e) => e.name === 'worker2')).toBe(true);
    // New connections through worker2's tunnel fail, through worker1's work.
    const w2 = inNetns(worker(2).netns, ['ovn-sbctl', `--db=${sbVia(2)}`, '--timeout=3', 'show']);
    expect(w2.code, w2.out).not.toBe(0);
    const w1 = inNetns(worker(1).netns, ['ovn-sbctl', `--db=${sbVia(1)}`, '--timeout=5', 'show']);
    expect(w1.code, w1.out).toBe(0);
    expect(w1.out).toContain('worker1');
    const direct = await connectsWith(d.runner, central().stunnel.listeners[1]!, { netns: worker(2).netns, cert: ep('worker2').certPath, key: ep('worker2').keyPath });
    expect(direct.ok).toBe(false);
    expect(direct.detail).toMatch(/certificate revoked/);
    const s = await certsStatus(dir);
    expect(s.endpoints.find((e) => e.host === 'worker2')?.status).toBe('revoked');
    expect(s.crls[0]?.revoked).toBeGreaterThan(0);
  });
});
