/**
 * The sandbox as a certs Deployment, without a running sandbox: its endpoints must be what the
 * real renderer gives each sandbox host (the host's certificate files, its stunnel's service,
 * pid/log files and ports), or a rotation would renew files nobody reads, signal nothing, or
 * issue a certificate that the next `up` throws away. Plus the status view of per-host CRL copies.
 */
import { ovsdbRemotes } from '../src/site/topology.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootedAt } from '../src/apply/observe.js';
import { sandboxEndpoints } from '../src/certs/sandbox-deployment.js';
import { judgeCertsStatus, type Collected } from '../src/certs/status.js';
import { readSitePki } from '../src/deploy/site-pki.js';
import { initPki } from '../src/pki/index.js';
import { renderHostBundle } from '../src/render/index.js';
import { planSandbox } from '../src/sandbox/plan.js';
import { sandboxSite, siteHost } from '../src/sandbox/site.js';

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'od-certs-sb-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('sandboxEndpoints', () => {
  it("each endpoint is its host's own certificate files and stunnel, as the rendered bundle of that host has them", async () => {
    const pkiDir = path.join(root, 'pki');
    await initPki(pkiDir, { keyBits: 2048, commonName: 'plan' });
    const { pki } = await readSitePki(pkiDir);
    const site = sandboxSite(planSandbox({ stateDir: path.join(root, 'sb'), workers: 2, datapath: 'netdev' }));
    const endpoints = sandboxEndpoints(site);
    expect(endpoints.map((e) => [e.host, e.role, e.stunnel.side, e.stunnel.serviceName])).toEqual([
      ['central', 'central', 'server', 'stunnel-server'],
      ['operator', 'cms', 'client', 'stunnel-client'],
      ['worker1', 'worker', 'client', 'stunnel-client'],
      ['worker2', 'worker', 'client', 'stunnel-client'],
    ]);
    for (const e of endpoints) {
      const h = siteHost(site, e.host);
      const bundle = renderHostBundle(site.inventory, e.host, pki, { root: h.root });
      const req = bundle.manifest.certificate;
      const at = rootedAt(h.root);
      expect([e.certPath, e.keyPath, e.caFile, e.crlFile], e.host).toEqual([at(req.cert), at(req.key), at(req.caBundle), at(req.crl)]);
      for (const f of [e.certPath, e.keyPath, e.caFile, e.crlFile]) expect(f.startsWith(`${h.root}/`), f).toBe(true);
      // apply keeps an installed certificate only when it carries exactly the requested names.
      expect([e.role, e.certName, e.sans]).toEqual([req.role, req.name, req.sans]);
      const service = bundle.manifest.services.find((s) => s.name === e.stunnel.serviceName);
      expect(service?.needsCertificate, e.host).toBe(true);
      const confArg = service?.argv.find((a) => a.endsWith('.conf')) ?? '';
      const conf = bundle.files.get(`files/${encodeURIComponent(path.relative(h.root, confArg))}`)?.content.toString() ?? '';
      expect(conf, e.host).toContain(`\npid = ${e.stunnel.pidFile}\n`);
      expect(conf, e.host).toContain(`\noutput = ${e.stunnel.logFile}\n`);
      for (const l of e.stunnel.listeners) {
        expect(l.netns).toBe(h.netns);
        expect(conf).toContain(`\naccept = ${l.host}:${l.port}\n`);
      }
      const probe = e.stunnel.tunnelProbe;
      if (probe !== undefined) {
        // A unix socket of the host's own root: reachable from any namespace, so no netns.
        expect(probe.netns).toBeUndefined();
        expect(probe.remote.startsWith(`unix:${h.root}/`)).toBe(true);
        expect(conf).toContain(`\naccept = ${probe.remote.replace(/^unix:/, '')}\n`);
      }
    }
    // The central's TLS listeners: NB and SB on its underlay address; the workers' probes: the SB remote ovn-controller uses;
    // the operator's: the NB (the one host besides the central the NB admits).
    const central = endpoints[0]!;
    expect(central.stunnel.listeners.map((l) => [l.host, l.port])).toEqual([
      [site.topology.centrals[0]!.address, site.inventory.ports.nb],
      [site.topology.centrals[0]!.address, site.inventory.ports.sb],
    ]);
    expect(endpoints[1]?.stunnel.tunnelProbe).toEqual({ remote: ovsdbRemotes(site.topology, 'nb', site.operator.root), database: 'OVN_Northbound' });
    for (const w of endpoints.slice(2)) expect(w.stunnel.tunnelProbe?.remote).toBe(ovsdbRemotes(site.topology, 'sb', siteHost(site, w.host).root));
  });
});

describe('certs status over per-host CRL copies', () => {
  const at = (iso: string) => new Date(iso);
  const crl = { issuerCommonName: 'CA t', thisUpdate: at('2026-05-30T00:00:00Z'), nextUpdate: at('2026-06-29T00:00:00Z'), crlNumber: 3n, revokedSerials: [] as string[] };
  const ca = { serial: 'ca1', commonName: 'CA t', notBefore: at('2026-01-01T00:00:00Z'), notAfter: at('2036-01-01T00:00:00Z') };
  const collected = (crls: (typeof crl)[]): Collected => ({
    deployment: 'test',
    selector: ['--dir', '/sb'],
    issuingSerial: 'ca1',
    rollover: undefined,
    endpoints: crls.map((c, i) => ({
      endpoint: {
        host: `h${i}`,
        role: 'worker',
        certName: `h${i}`,
        sans: [`h${i}`],
        certPath: `/h${i}/host.pem`,
        keyPath: `/h${i}/host.key`,
        caFile: `/h${i}/ca-bundle.pem`,
        crlFile: `/h${i}/crl.pem`,
        stunnel: { serviceName: 'stunnel-client', pidFile: '/x.pid', logFile: '/x.log', side: 'client', listeners: [] },
      },
      cert: { serial: `s${i}`, commonName: `h${i}`, issuerCommonName: 'CA t', notBefore: at('2026-01-01T00:00:00Z'), notAfter: at('2028-01-01T00:00:00Z'), pem: '' },
      keyMatches: true,
      indexStatus: 'valid',
      served: [],
      tunnel: undefined,
      trusted: [ca],
      crls: [c],
    })),
  });
  const now = at('2026-06-01T00:00:00Z');

  it('the same CRL on every host is one row naming each copy; a host with another one gets its own row', () => {
    const same = judgeCertsStatus(collected([crl, crl, crl]), now);
    expect(same.crls.map((c) => c.files)).toEqual([['h0:/h0/crl.pem', 'h1:/h1/crl.pem', 'h2:/h2/crl.pem']]);
    expect(same.warnings).toEqual([]);
    const behind = judgeCertsStatus(collected([crl, { ...crl, crlNumber: 2n, nextUpdate: at('2026-06-03T00:00:00Z') }, crl]), now);
    expect(behind.crls.map((c) => [c.files, c.revoked])).toEqual([
      [['h0:/h0/crl.pem', 'h2:/h2/crl.pem'], 0],
      [['h1:/h1/crl.pem'], 0],
    ]);
    expect(behind.warnings.join('\n')).toMatch(/in h1:\/h1\/crl.pem needs its next update by 2026-06-03/);
  });

  it('on a site every host has the same CRL path: each host\'s copy is still judged (a stale one is critical)', () => {
    const base = collected([crl, crl, crl]);
    const site: Collected = { ...base, endpoints: base.endpoints.map((x) => ({ ...x, endpoint: { ...x.endpoint, crlFile: '/etc/ovn-deploy/pki/crl.pem' } })) };
    const stale = { ...crl, crlNumber: 1n, thisUpdate: at('2026-04-01T00:00:00Z'), nextUpdate: at('2026-05-01T00:00:00Z') };
    site.endpoints[2] = { ...site.endpoints[2]!, crls: [stale] };
    const r = judgeCertsStatus(site, now);
    expect(r.crls.map((c) => c.files)).toEqual([['h0:/etc/ovn-deploy/pki/crl.pem', 'h1:/etc/ovn-deploy/pki/crl.pem'], ['h2:/etc/ovn-deploy/pki/crl.pem']]);
    expect(r.critical.join('\n')).toMatch(/h2:\/etc\/ovn-deploy\/pki\/crl.pem is STALE since 2026-05-01/);
  });
});
