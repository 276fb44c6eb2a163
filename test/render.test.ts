import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manifestSchema, MANIFEST_FILE, type BundleManifest } from '../src/bundle/manifest.js';
import { InputError } from '../src/errors.js';
import type { Host, Inventory } from '../src/inventory/types.js';
import { manifestJson, renderHostBundle, renderSite, renderSiteBundles } from '../src/render/index.js';
import { renderStunnelConfig, type StunnelConfigSpec } from '../src/stunnel/index.js';
import { centralLoopback, siteTopology } from '../src/site/topology.js';
import { fixtureInventory, fixtureOptions, fixturePki, fixtureSecret } from './helpers/render-fixture.js';
import { bundleSource } from '../src/paths.js';

const inv = fixtureInventory();
const pki = fixturePki();
const opts = fixtureOptions();

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  throw new Error('expected an InputError');
}

const text = (c: string | Uint8Array | undefined): string => (typeof c === 'string' ? c : Buffer.from(c ?? '').toString('utf8'));

function manifestOf(files: Map<string, { content: string | Uint8Array }>, host: string): BundleManifest {
  return manifestSchema.parse(JSON.parse(text(files.get(`${host}/${MANIFEST_FILE}`)?.content)));
}

function withHosts(hosts: Host[], base: Inventory = inv): Inventory {
  return { ...base, hosts };
}

const site = renderSite(inv, pki, opts);

describe('renderSite: bundles', () => {
  it('renders the same bytes twice, and from a copy of the inventory', () => {
    const again = renderSite(structuredClone(inv), { ...pki }, { ...opts });
    expect([...again.keys()]).toEqual([...site.keys()]);
    for (const [rel, f] of site) {
      expect(text(again.get(rel)?.content), rel).toBe(text(f.content));
      expect(again.get(rel)?.mode, rel).toBe(f.mode);
    }
  });

  it('puts no private key, no timestamp of now and the secret only into the 0600 fragment', () => {
    const year = String(new Date().getUTCFullYear());
    for (const [rel, f] of site) {
      const body = text(f.content);
      expect(body, rel).not.toMatch(/PRIVATE KEY/);
      if (rel.endsWith('metadata-secret.ini')) {
        expect(f.mode, rel).toBe(0o600);
        expect(body).toContain(fixtureSecret());
      } else {
        expect(body, rel).not.toContain(fixtureSecret());
        expect(f.mode ?? 0o644, rel).toBe(0o644);
      }
      // The PEMs carry their own validity dates; nothing else may carry the render time.
      if (!rel.endsWith('.pem')) expect(body.includes(`${year}-`) && /\d\d:\d\d:\d\dZ?/.test(body), rel).toBe(false);
    }
  });

  it('writes a manifest per host that parses, lists every file with its true checksum, and nothing else', () => {
    for (const host of inv.hosts) {
      const raw = text(site.get(`${host.name}/${MANIFEST_FILE}`)?.content);
      expect(raw.endsWith('}\n')).toBe(true);
      const m = manifestOf(site, host.name);
      // What render writes already has every default filled in: parsing changes nothing.
      expect(manifestJson(m)).toBe(raw);
      expect(JSON.parse(raw)).toEqual(JSON.parse(JSON.stringify(m)));
      expect(m.host).toBe(host.name);
      const bundleFiles = [...site.keys()].filter((k) => k.startsWith(`${host.name}/files/`)).map((k) => k.slice(host.name.length + 1));
      expect(m.files.map((f) => f.source).sort()).toEqual(bundleFiles.sort());
      for (const f of m.files) {
        const content = site.get(`${host.name}/${f.source}`);
        expect(createHash('sha256').update(text(content?.content)).digest('hex'), f.dest).toBe(f.sha256);
        expect(f.source).toBe(bundleSource(f.dest));
        expect(content?.mode ?? 0o644).toBe(f.mode);
        for (const s of [...f.reload, ...f.restart]) expect(m.services.map((x) => x.name), `${f.dest} -> ${s}`).toContain(s);
      }
      expect(m.files.map((f) => f.dest)).toEqual(m.files.map((f) => f.dest).sort());
      for (const s of m.services) {
        expect(m.files.some((f) => f.dest === `/etc/systemd/system/${s.unit}`), s.unit).toBe(true);
        for (const dep of s.after) expect(m.services.map((x) => x.name)).toContain(dep);
        expect(s.argv[0]).toMatch(/^\//);
        expect(s.argv).not.toContain('--detach');
      }
      expect(m.certificate.sans).toEqual([...new Set([host.name, ...host.dnsNames, ...host.addresses])]);
    }
  });

  it('gives each role its services, stages and packages', () => {
    const names = (h: string) => manifestOf(site, h).services.map((s) => `${s.stage}:${s.name}`);
    expect(names('central1')).toEqual(['0:ovn-nb-ovsdb', '0:ovn-sb-ovsdb', '0:stunnel-server', '0:stunnel-client', '1:ovn-northd']);
    expect(names('central3')).toEqual([
      '0:ovn-nb-ovsdb',
      '0:ovn-sb-ovsdb',
      '0:stunnel-server',
      '0:stunnel-client',
      '0:ovs-ovsdb',
      '1:ovn-northd',
      '1:ovs-vswitchd',
      '1:ovn-controller',
    ]);
    expect(names('worker1')).toEqual(['0:stunnel-client', '0:ovs-ovsdb', '1:ovs-vswitchd', '1:ovn-controller', '1:ovn-metadata-agent']);
    expect(names('worker2')).toEqual(['0:stunnel-client', '0:ovs-ovsdb', '1:ovs-vswitchd', '1:ovn-controller']);
    expect(manifestOf(site, 'central1').packages.apt).toEqual(['ovn-central', 'stunnel4']);
    expect(manifestOf(site, 'worker1').packages.apt).toEqual(['haproxy', 'neutron-ovn-metadata-agent', 'openvswitch-switch', 'ovn-host', 'stunnel4']);
    const stunnel = manifestOf(site, 'central1').services.find((s) => s.name === 'stunnel-server');
    expect(stunnel).toMatchObject({ needsCertificate: true, reloadSignal: 'SIGHUP', argv: ['/usr/bin/stunnel4', '/etc/ovn-deploy/stunnel/stunnel-server.conf'] });
  });

  it('makes the first central the RAFT bootstrap with the init commands; the others join its peers', () => {
    const topo = siteTopology(inv);
    const lo = (name: string) => centralLoopback(inv.site, name);
    const c1 = manifestOf(site, 'central1');
    const c2 = manifestOf(site, 'central2');
    expect(c1.raft.map((r) => [r.name, r.bootstrap])).toEqual([
      ['OVN_Northbound', true],
      ['OVN_Southbound', true],
    ]);
    expect(c2.raft.every((r) => !r.bootstrap)).toBe(true);
    expect(c2.raft[0]).toMatchObject({
      localAddress: `tcp:${lo('central2')}:16643`,
      peers: [`tcp:${lo('central1')}:16643`, `tcp:${lo('central3')}:16643`],
      dbFile: '/var/lib/ovn/ovnnb_db.db',
      ctl: '/var/run/ovn/ovnnb_db.ctl',
    });
    expect(c1.initCommands).toEqual([
      ['/usr/bin/ovn-nbctl', '--db=unix:/var/run/ovn/ovnnb_db.sock', 'init'],
      ['/usr/bin/ovn-sbctl', '--db=unix:/var/run/ovn/ovnsb_db.sock', 'init'],
    ]);
    expect(c2.initCommands).toEqual([]);
    expect(manifestOf(site, 'worker1').raft).toEqual([]);
    expect(topo.sbRemotes).toBe(['central1', 'central2', 'central3'].map((c) => `tcp:${lo(c)}:16642`).join(','));
    const northd = c2.services.find((s) => s.name === 'ovn-northd');
    expect(northd?.argv).toContain(`--ovnnb-db=${topo.nbRemotes}`);
    const nb = c2.services.find((s) => s.name === 'ovn-nb-ovsdb');
    expect(nb?.argv).toContain(`--remote=ptcp:16641:${lo('central2')}`);
  });

  it('wires each worker: external_ids, standalone conf.db, the underlay of a netdev worker only', () => {
    const topo = siteTopology(inv);
    const w2 = manifestOf(site, 'worker2');
    expect(w2.ovs?.externalIds).toEqual({
      hostname: 'worker2',
      'ovn-bridge': 'br-int',
      'ovn-bridge-datapath-type': 'system',
      'ovn-encap-ip': '198.51.100.22',
      'ovn-encap-type': 'geneve',
      'ovn-remote': topo.sbRemotes,
      'system-id': 'chassis-worker2',
    });
    expect(w2.ovs?.underlay).toBeUndefined();
    expect(w2.standaloneDbs).toEqual([{ service: 'ovs-ovsdb', dbFile: '/etc/openvswitch/conf.db', schema: '/usr/share/openvswitch/vswitch.ovsschema' }]);
    const w3 = manifestOf(site, 'worker3');
    expect(w3.ovs).toMatchObject({ datapath: 'netdev', underlay: { bridge: 'br-phy', interface: 'eth1', ip: '198.51.100.23' } });
    expect(manifestOf(site, 'central1').ovs).toBeUndefined();
    expect(manifestOf(site, 'central1').standaloneDbs).toEqual([]);
  });

  it('opens the TLS ports to all, RAFT only to the other centrals, tunnels only to the other chassis', () => {
    expect(manifestOf(site, 'central2').firewall).toEqual([
      { proto: 'tcp', port: 6641, from: [], why: expect.any(String) as string },
      { proto: 'tcp', port: 6642, from: [], why: expect.any(String) as string },
      { proto: 'tcp', port: 6643, from: ['192.0.2.11', '192.0.2.13'], why: expect.any(String) as string },
      { proto: 'tcp', port: 6644, from: ['192.0.2.11', '192.0.2.13'], why: expect.any(String) as string },
    ]);
    expect(manifestOf(site, 'worker1').firewall).toEqual([
      { proto: 'udp', port: 6081, from: ['198.51.100.13', '198.51.100.22', '198.51.100.23'], why: expect.any(String) as string },
    ]);
    const nft = text(site.get(`central2/${bundleSource('/etc/ovn-deploy/firewall.nft')}`)?.content);
    expect(nft).toContain('ip saddr { 192.0.2.11, 192.0.2.13 } tcp dport 6643 accept\n\t\ttcp dport 6643 drop');
    // A lone central has no RAFT peer: the RAFT ports are not opened to anybody.
    const lone = renderHostBundle(withHosts([inv.hosts[0]!]), 'central1', pki, opts);
    expect(lone.manifest.firewall.map((r) => r.port)).toEqual([6641, 6642]);
    expect(text(lone.files.get(bundleSource('/etc/ovn-deploy/firewall.nft'))?.content)).toMatch(/\t\ttcp dport 6643 drop\n/);
  });

  it('carries the RAFT ports only for certificates named after a central, and tunnels each peer to that peer alone', () => {
    const server = text(site.get(`central1/${bundleSource('/etc/ovn-deploy/stunnel/stunnel-server.conf')}`)?.content);
    const section = (conf: string, name: string) => conf.split(`[${name}]\n`)[1]?.split('\n\n')[0] ?? '';
    expect(section(server, 'nbRaft')).toMatch(/checkHost = central1\ncheckHost = central2\ncheckHost = central3$/);
    expect(section(server, 'sbRaft')).toContain('checkHost = central2');
    expect(section(server, 'nb')).not.toContain('checkHost');
    expect(section(server, 'sb')).not.toContain('checkHost');
    const client = text(site.get(`worker2/${bundleSource('/etc/ovn-deploy/stunnel/stunnel-client.conf')}`)?.content);
    expect([...client.matchAll(/^\[(.*)\]$/gm)].map((m) => m[1])).toEqual(['nb-central1', 'sb-central1', 'nb-central2', 'sb-central2', 'nb-central3', 'sb-central3']);
    expect(section(client, 'sb-central2')).toBe(
      `accept = ${centralLoopback('golden', 'central2')}:16642\nconnect = 192.0.2.12:6642\n; the peer's certificate must carry one of these names\ncheckHost = central2\ncheckIP = 192.0.2.12\ncheckIP = 2001:db8::12`,
    );
    const centralClient = text(site.get(`central1/${bundleSource('/etc/ovn-deploy/stunnel/stunnel-client.conf')}`)?.content);
    expect([...centralClient.matchAll(/^\[(.*)\]$/gm)].map((m) => m[1])).toEqual([
      'nb-central2',
      'sb-central2',
      'nbRaft-central2',
      'sbRaft-central2',
      'nb-central3',
      'sb-central3',
      'nbRaft-central3',
      'sbRaft-central3',
    ]);
    // A lone central needs no client at all.
    const lone = renderHostBundle(withHosts([inv.hosts[0]!]), 'central1', pki, opts);
    expect(lone.manifest.services.map((s) => s.name)).not.toContain('stunnel-client');
    expect([...lone.files.keys()].some((k) => k.includes('stunnel-client'))).toBe(false);
  });

  it('gives the same bundles by host as files', () => {
    const bundles = renderSiteBundles(inv, pki, opts);
    expect([...bundles.keys()]).toEqual(inv.hosts.map((h) => h.name));
    expect(manifestJson(bundles.get('central2')!.manifest)).toBe(text(site.get('central2/manifest.json')?.content));
  });

  it('changes no central file and no firewall when the workers are listed in another order', () => {
    const centrals = inv.hosts.filter((h) => h.roles.includes('central') && !h.roles.includes('worker'));
    const workers = inv.hosts.filter((h) => !centrals.includes(h));
    const reordered = renderSite(withHosts([...centrals, ...[...workers].reverse()]), pki, opts);
    for (const [rel, f] of site) {
      if (centrals.some((c) => rel.startsWith(`${c.name}/`)) || rel.endsWith('firewall.nft')) {
        expect(text(reordered.get(rel)?.content), rel).toBe(text(f.content));
      }
    }
  });

  it('renders one host alone exactly as within the site', () => {
    const one = renderHostBundle(inv, 'worker3', pki, opts);
    for (const [rel, f] of one.files) expect(text(f.content), rel).toBe(text(site.get(`worker3/${rel}`)?.content));
    expect(one.files.size).toBe([...site.keys()].filter((k) => k.startsWith('worker3/')).length);
  });
});

describe('central loopback addresses', () => {
  it('are 127.a.b.c with a in 1..254 and c in 1..254, from sha256 of site/name', () => {
    for (let i = 0; i < 500; i++) {
      const ip = centralLoopback('s', `c${i}`);
      const [p, a, b, c] = ip.split('.').map(Number);
      expect(p).toBe(127);
      expect(a).toBeGreaterThanOrEqual(1);
      expect(a).toBeLessThanOrEqual(254);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThanOrEqual(255);
      expect(c).toBeGreaterThanOrEqual(1);
      expect(c).toBeLessThanOrEqual(254);
    }
    const d = createHash('sha256').update('golden/central1').digest();
    expect(centralLoopback('golden', 'central1')).toBe(`127.${1 + (d[0]! % 254)}.${d[1]}.${1 + (d[2]! % 254)}`);
    expect(centralLoopback('other', 'central1')).not.toBe(centralLoopback('golden', 'central1'));
  });

  it('stay the same for every central when a central is added, and so do the other centrals stunnel files', () => {
    const before = siteTopology(inv).centrals.map((c) => [c.host.name, c.loopback]);
    const added: Host = { name: 'central0', addresses: ['192.0.2.10'], dnsNames: [], roles: ['central'], datapath: 'system', systemId: 'central0' };
    const grown = withHosts([added, ...inv.hosts]);
    const after = new Map(siteTopology(grown).centrals.map((c) => [c.host.name, c.loopback]));
    for (const [name, lo] of before) expect(after.get(name!)).toBe(lo);
    // The new first central bootstraps only a new site; existing ones keep their members' addresses.
    const c2 = renderHostBundle(grown, 'central2', pki, opts).manifest;
    expect(c2.raft[0]?.localAddress).toBe(`tcp:${centralLoopback('golden', 'central2')}:16643`);
  });

  it('reject two centrals that would share one, naming both', () => {
    const seen = new Map<string, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined; i++) {
      const name = `c${i}`;
      const ip = centralLoopback('golden', name);
      const other = seen.get(ip);
      if (other !== undefined) pair = [other, name];
      seen.set(ip, name);
    }
    const [a, b] = pair;
    const central = (name: string, n: number): Host => ({ name, addresses: [`192.0.2.${n}`], dnsNames: [], roles: ['central'], datapath: 'system', systemId: name });
    const problems = problemsOf(() => renderSite(withHosts([central(a, 1), central(b, 2)]), pki, opts));
    expect(problems).toEqual([
      `hosts[1].name: central ${b} would get the loopback address ${centralLoopback('golden', a)}, which central ${a} (hosts[0]) already has ` +
        '(both derive from sha256 of "site/name"): rename one of them',
    ]);
  });
});

describe('render input errors', () => {
  it('requires the metadataAgent section and the secret for a metadata-agent host', () => {
    const { metadataAgent: _drop, ...without } = inv;
    void _drop;
    expect(problemsOf(() => renderSite(without, pki, { generator: 'x' }))).toEqual([
      'metadataAgent: required: host worker1 has the metadata-agent role; add metadataAgent: { novaMetadataHost: ... } (novaMetadataPort and workers are optional)',
      '--metadata-secret-file: required: host worker1 has the metadata-agent role; give a file holding the metadata proxy shared secret',
    ]);
    expect(problemsOf(() => renderHostBundle(inv, 'worker1', pki, { generator: 'x' }))).toEqual([
      '--metadata-secret-file: required: host worker1 has the metadata-agent role; give a file holding the metadata proxy shared secret',
    ]);
    // Hosts without the role need neither.
    expect(renderHostBundle(without, 'worker2', pki, {}).manifest.host).toBe('worker2');
    expect(problemsOf(() => renderSite(inv, pki, { metadataSecret: 'short' }))).toEqual([
      'secret: expected 16-256 printable characters without spaces (the value is not shown)',
    ]);
  });

  it('refuses PKI input that is not a CA bundle and a CRL, or that holds a key', () => {
    const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    expect(problemsOf(() => renderSite(inv, { caBundlePem: pki.caBundlePem + key, crlPem: 'x' }, opts))).toEqual([
      'crl: expected a PEM CRL (-----BEGIN X509 CRL-----)',
      'caBundle: holds a private key: a bundle must never carry one',
    ]);
  });

  it('names an unknown host', () => {
    expect(problemsOf(() => renderHostBundle(inv, 'nope', pki, opts))).toEqual(['hosts: no host named "nope" in site golden']);
  });
});

describe('stunnel server services restricted by peer name', () => {
  const spec = (svc: Record<string, unknown>): StunnelConfigSpec =>
    ({
      kind: 'server',
      site: 's',
      host: 'h',
      tls: { cert: '/c', key: '/k', caFile: '/ca', crlFile: '/crl' },
      pidFile: '/p',
      logFile: '/l',
      foreground: true,
      services: [{ name: 'nbRaft', accept: '192.0.2.1:6643', connect: '127.1.2.3:16643', ...svc }],
    }) as StunnelConfigSpec;

  it('renders checkHost/checkIP under the service, and nothing for an open service', () => {
    expect(renderStunnelConfig(spec({ checkHost: ['c1', 'c2'], checkIP: ['192.0.2.9'] }))).toMatch(
      /\[nbRaft\]\naccept = 192\.0\.2\.1:6643\nconnect = 127\.1\.2\.3:16643\n; only clients .*\ncheckHost = c1\ncheckHost = c2\ncheckIP = 192\.0\.2\.9\n$/,
    );
    expect(renderStunnelConfig(spec({}))).toMatch(/connect = 127\.1\.2\.3:16643\n$/);
  });

  it('rejects an empty restriction, bad names and injected lines', () => {
    expect(problemsOf(() => renderStunnelConfig(spec({ checkHost: [] })))).toEqual([
      'services[0]: checkHost/checkIP are given but empty: list the peer names to admit, or leave both out',
    ]);
    expect(problemsOf(() => renderStunnelConfig(spec({ checkHost: ['c1\nverifyChain = no'], checkIP: ['c2'] })))).toEqual([
      'services[0].checkHost[0]: must be one line without control characters (got "c1\\nverifyChain = no")',
      'services[0].checkIP[0]: must be an IP address (got c2)',
    ]);
  });
});
