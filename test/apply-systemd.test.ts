/**
 * apply under systemd (PID 1), with systemctl answered by a recording fixture (mocked: systemd is
 * not PID 1 on this machine). The rest of apply is the real code: real files, real ovsdb-tool.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApply } from '../src/apply/index.js';
import { SystemdHostServices } from '../src/apply/services.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { fixtureTrust, FixtureRunner, oneBoxManifest, writeBundle } from './helpers/apply-fixture.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-systemd-'));
let pkiDir: string;
beforeAll(async () => {
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'apply-systemd' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('apply with systemd units (systemctl mocked)', () => {
  it('daemon-reload, distro units disabled, stage 0 then all enabled --now; a re-apply calls nothing; a changed unit restarts only it', async () => {
    const root = path.join(tmp, 'root');
    const bundleDir = path.join(tmp, 'bundle');
    const ca = readFileSync(pkiPaths(pkiDir).caBundle, 'utf8');
    const stunnelLog = path.join(tmp, 'stunnel-server.log');
    const { manifest, files } = oneBoxManifest('box1', ca, readFileSync(pkiPaths(pkiDir).crl, 'utf8'), { stunnelLog });
    writeBundle(bundleDir, manifest, files, root);
    const runner = new FixtureRunner();
    runner.units.set('ovn-central.service', { active: 'active', enabled: 'enabled', pid: 42 });
    runner.stunnelLogs.set('ovn-deploy-stunnel-server.service', { file: stunnelLog, line: 'Configuration successful' });
    const apply = (more: Partial<Parameters<typeof runApply>[0]> = {}) =>
      runApply({ trustCa: fixtureTrust(), bundleDir, root, runner, services: new SystemdHostServices(runner), skipPackages: true, healthTimeoutMs: 1_000, ...more });
    const first = await apply();
    expect(first.exitCode).toBe(3);
    const cert = (await signCsr(pkiDir, first.report.csr ?? '', { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'] })).certPem;
    writeFileSync(hostPaths(root).ovs.dbSock, '');
    const mark = runner.calls.length;
    const out = await apply({ certificate: { pem: cert, from: '-' } });
    expect(out.report.status).toBe('converged');
    const mutating = () => runner.calls.slice(mark).filter((c) => c.argv[0] === 'systemctl' && c.argv[1] !== 'show').map((c) => c.argv.slice(1).join(' '));
    expect(mutating()).toEqual([
      'disable --now ovn-central.service',
      'enable --now ovn-deploy-ovn-nb-ovsdb.service ovn-deploy-ovn-sb-ovsdb.service ovn-deploy-stunnel-server.service ovn-deploy-ovs-ovsdb.service',
      'enable --now ovn-deploy-ovn-northd.service ovn-deploy-ovs-vswitchd.service ovn-deploy-ovn-controller.service',
    ]);
    // daemon-reload came with the first apply, which placed the unit files (and stopped for the certificate).
    expect(runner.calls.slice(0, mark).some((c) => c.argv.join(' ') === 'systemctl daemon-reload')).toBe(true);
    expect(first.report.changes.some((c) => c.target === '/etc/systemd/system/ovn-deploy-ovn-northd.service')).toBe(true);
    expect(out.report.changes.map((c) => `${c.action}:${c.target}`)).toContain('disable:ovn-central.service');

    const mark2 = runner.calls.length;
    const again = await apply();
    expect(again.report.changes).toEqual([]);
    expect(runner.calls.slice(mark2).filter((c) => c.argv[0] === 'systemctl' && c.argv[1] !== 'show')).toEqual([]);

    files[3]!.content += 'Nice=5\n';
    files[2]!.content += 'debug = 6\n';
    writeBundle(bundleDir, manifest, files, root);
    const mark3 = runner.calls.length;
    const changed = await apply();
    expect(changed.report.changes.map((c) => `${c.kind}:${c.action}:${c.target}`)).toEqual([
      'file:update:/etc/ovn-deploy/stunnel/stunnel-server.conf',
      'file:update:/etc/systemd/system/ovn-deploy-ovn-northd.service',
      'service:daemon-reload:systemd',
      'service:restart:ovn-northd',
      'service:reload:stunnel-server',
    ]);
    expect(runner.calls.slice(mark3).filter((c) => c.argv[0] === 'systemctl' && c.argv[1] !== 'show').map((c) => c.argv.slice(1).join(' '))).toEqual([
      'daemon-reload',
      'restart ovn-deploy-ovn-northd.service',
      'reload ovn-deploy-stunnel-server.service',
    ]);

    // A reload stunnel reports as failed (it keeps the old config) fails the apply.
    runner.stunnelLogs.set('ovn-deploy-stunnel-server.service', { file: stunnelLog, line: 'Failed to reload the configuration file' });
    files[2]!.content += 'debug = 7\n';
    writeBundle(bundleDir, manifest, files, root);
    const failed = await apply();
    expect(failed.report.status).toBe('unhealthy');
    expect(failed.error).toMatch(/failed to reload its configuration/);
  });
});
