/**
 * Health checks of a host in another network namespace: the tcp-listen checks go to the caller's
 * probe (this process could only connect from its own namespace), the others run as always, and
 * the results keep the manifest's order. The probe is a stand-in here; the slow test
 * transport-local.slow.test.ts runs the real one inside a namespace.
 */
import { describe, expect, it } from 'vitest';
import type { HealthCheck } from '../src/bundle/manifest.js';
import { healthChecks } from '../src/apply/probe-health.js';
import { FixtureRunner, RecordedServices } from './helpers/apply-fixture.js';

const checks: HealthCheck[] = [
  { kind: 'tcp-listen', address: '127.9.9.9', port: 1, service: 'stunnel-server' },
  { kind: 'service-running', service: 'ovn-northd' },
  { kind: 'tcp-listen', address: '127.9.9.9', port: 2 },
];

describe('health checks with a tcp probe (probe stubbed: the real one runs in transport-local.slow.test.ts)', () => {
  it('tcp-listen answered by the probe, retried until it passes; other checks unchanged; manifest order kept', async () => {
    const services = new RecordedServices();
    services.state.set('ovn-northd', { running: true, pid: 42 });
    const asked: string[] = [];
    let calls = 0;
    const probe = async (address: string, port: number) => {
      asked.push(`${address}:${port}`);
      calls++;
      // Port 2 comes up on the second round.
      return port === 1 || calls > 2 ? { ok: true, detail: 'probed' } : { ok: false, detail: 'refused' };
    };
    const out = await healthChecks({ runner: new FixtureRunner(), services, at: (p) => p }, checks, 5_000, 10, () => undefined, probe);
    expect(out).toEqual([
      // Each names the service it is about (the probed ones too); the unattributed one is the host's.
      { check: 'tcp-listen 127.9.9.9:1', ok: true, detail: 'probed', service: 'stunnel-server' },
      { check: 'service-running ovn-northd', ok: true, detail: 'pid 42', service: 'ovn-northd' },
      { check: 'tcp-listen 127.9.9.9:2', ok: true, detail: 'probed' },
    ]);
    expect(asked.slice(0, 2)).toEqual(['127.9.9.9:1', '127.9.9.9:2']);
    expect(asked.length).toBeGreaterThan(2);
  });

  it('a probe that never passes: the check fails with its detail at the deadline', async () => {
    const out = await healthChecks({ runner: new FixtureRunner(), services: new RecordedServices(), at: (p) => p }, [checks[0] as HealthCheck], 50, 10, () => undefined, async () => ({ ok: false, detail: 'refused' }));
    expect(out).toEqual([{ check: 'tcp-listen 127.9.9.9:1', ok: false, detail: 'refused', service: 'stunnel-server' }]);
  });
});
