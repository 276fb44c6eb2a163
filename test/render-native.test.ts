/**
 * What render makes of `tls.mode: native` (pure, no daemon): the golden fixture's site with the
 * mode switched (its metadata agent and its worker's own system-id dropped, which native mode
 * refuses). The daemons' behaviour with these argv is native-tls.slow's and site-native.slow's.
 */
import { describe, expect, it } from 'vitest';
import { policyProblems } from '../src/apply/policy.js';
import type { Inventory } from '../src/inventory/types.js';
import { hostPaths } from '../src/paths.js';
import { renderSiteBundles } from '../src/render/index.js';
import { TLS_CIPHERS } from '../src/stunnel/policy.js';
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';

const golden = fixtureInventory();
const inv: Inventory = {
  ...golden,
  tls: { mode: 'native', sbAdminPort: 6648 },
  hosts: golden.hosts.map((h) => ({ ...h, roles: h.roles.filter((r) => r !== 'metadata-agent'), systemId: h.name })),
};
const { metadataSecret: _secret, ...opts } = fixtureOptions();
const bundles = renderSiteBundles(inv, fixturePki(), opts);
const manifest = (host: string) => bundles.get(host)!.manifest;
const argvOf = (host: string, service: string) => manifest(host).services.find((s) => s.name === service)?.argv ?? [];
const pki = hostPaths().pki;
const FILES = [`--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.caBundle}`];
const POLICY = ['--ssl-protocols=TLSv1.2', `--ssl-ciphers=${TLS_CIPHERS.join(':')}`];

describe('render, tls.mode native', () => {
  it('no host gets stunnel: no service, no config file, no package, no local-access table', () => {
    for (const [host, b] of bundles) {
      expect(b.manifest.services.map((s) => s.name).filter((n) => n.startsWith('stunnel')), host).toEqual([]);
      // (The drop-in that keeps the distribution's stunnel4.service off stays, as for every distribution unit.)
      expect(b.manifest.files.map((f) => f.dest).filter((d) => /\/stunnel\/|local-access/.test(d)), host).toEqual([]);
      expect([...b.manifest.packages.apt, ...b.manifest.packages.dnf].filter((p) => p.startsWith('stunnel')), host).toEqual([]);
    }
  });

  it("a central's ovsdb-servers: their own TLS listeners on its address with the policy, the SB's chassis listener from the Connection table", () => {
    const nb = argvOf('central2', 'ovn-nb-ovsdb');
    const sb = argvOf('central2', 'ovn-sb-ovsdb');
    expect(nb).toContain('--remote=pssl:6641:192.0.2.12');
    expect(sb).toEqual(expect.arrayContaining(['--remote=db:OVN_Southbound,SB_Global,connections', '--remote=pssl:6648:192.0.2.12']));
    for (const argv of [nb, sb]) {
      expect(argv).toEqual(expect.arrayContaining([...FILES, ...POLICY]));
      expect(argv.filter((a) => a.startsWith('--remote=ptcp') || a.startsWith('--remote=tcp'))).toEqual([]);
    }
    // RAFT over ovsdb-server's TLS, on the central's address; the peers asked on their TLS ports.
    const raft = manifest('central2').raft;
    expect(raft.map((r) => [r.name, r.localAddress, r.peers])).toEqual([
      ['OVN_Northbound', 'ssl:192.0.2.12:6643', ['ssl:192.0.2.11:6643', 'ssl:192.0.2.13:6643']],
      ['OVN_Southbound', 'ssl:192.0.2.12:6644', ['ssl:192.0.2.11:6644', 'ssl:192.0.2.13:6644']],
    ]);
    expect(raft[1]!.peerRemotes).toEqual(['ssl:192.0.2.11:6648', 'ssl:192.0.2.13:6648']);
  });

  it('only the bootstrap central sets the chassis listener, once, with role ovn-controller on every address', () => {
    const set = (host: string) => manifest(host).initCommands.filter((c) => c.includes('set-connection'));
    // Every central's primary address is IPv4 (clients connect to those): IPv4 only.
    expect(set('central1')).toEqual([['/usr/bin/ovn-sbctl', `--db=unix:${hostPaths().ovn.sbSock}`, 'set-connection', 'role=ovn-controller', 'pssl:6642']]);
    expect(set('central2')).toEqual([]);
    const v6: Inventory = { ...inv, hosts: inv.hosts.map((h) => (h.name === 'central2' ? { ...h, addresses: ['2001:db8::12'] } : h)) };
    const m = renderSiteBundles(v6, fixturePki(), opts).get('central1')!.manifest;
    expect(m.initCommands.find((c) => c.includes('set-connection'))?.at(-1)).toBe('pssl:6642:[::]');
  });

  it('northd and ovn-controller connect with ssl: remotes and the host files, without the policy options OVN 23.03 clients abort on', () => {
    const northd = argvOf('central1', 'ovn-northd');
    expect(northd).toContain('--ovnnb-db=ssl:192.0.2.11:6641,ssl:192.0.2.12:6641,ssl:192.0.2.13:6641');
    expect(northd).toContain('--ovnsb-db=ssl:192.0.2.11:6648,ssl:192.0.2.12:6648,ssl:192.0.2.13:6648');
    const controller = argvOf('worker1', 'ovn-controller');
    for (const argv of [northd, controller]) {
      expect(argv).toEqual(expect.arrayContaining(FILES));
      expect(argv.filter((a) => a.startsWith('--ssl-'))).toEqual([]);
    }
    // The chassis' SB remote is the RBAC port, not the admin one.
    expect(manifest('worker1').ovs?.externalIds['ovn-remote']).toBe('ssl:192.0.2.11:6642,ssl:192.0.2.12:6642,ssl:192.0.2.13:6642');
  });

  it("a central's firewall: NB and the admin SB port from the other centrals only (no cms host here), the chassis' SB from the site's hosts, loaded without --firewall", () => {
    const m = manifest('central1');
    expect(m.firewallRequired).toBe(true);
    const rule = (port: number) => m.firewall.find((r) => r.port === port);
    const others = ['192.0.2.12', '192.0.2.13', '2001:db8::12'];
    expect(rule(6641)?.from).toEqual(others);
    expect(rule(6648)?.from).toEqual(others);
    // Every other host's addresses and encap IPs: a certificate of a host no longer in the site gets nothing.
    expect(rule(6642)?.from).toEqual(['192.0.2.12', '192.0.2.13', '192.0.2.21', '192.0.2.22', '192.0.2.23', '198.51.100.13', '198.51.100.21', '198.51.100.22', '198.51.100.23', '2001:db8::12', '2001:db8::22']);
    expect(manifest('worker1').firewallRequired).toBeUndefined();
  });

  it("a central's NB and SB units load the firewall before the daemon starts (at boot too)", () => {
    const unit = (name: string) => {
      const f = [...bundles.get('central1')!.files.entries()].find(([k]) => k.endsWith(`ovn-deploy-${name}.service`))?.[1].content;
      return typeof f === 'string' ? f : Buffer.from(f ?? '').toString('utf8');
    };
    for (const name of ['ovn-nb-ovsdb', 'ovn-sb-ovsdb']) expect(unit(name)).toMatch(/^ExecStartPre=\/usr\/sbin\/nft -f \/etc\/ovn-deploy\/firewall\.nft$/m);
  });

  it('health: the TLS listeners on the central, no tunnel sockets on a worker', () => {
    const tcp = manifest('central1').health.filter((c) => c.kind === 'tcp-listen');
    expect(tcp.map((c) => (c.kind === 'tcp-listen' ? `${c.address}:${c.port}` : ''))).toEqual(['192.0.2.11:6641', '192.0.2.11:6642', '192.0.2.11:6648', '192.0.2.11:6643', '192.0.2.11:6644']);
    expect(manifest('worker1').health.filter((c) => c.kind === 'unix-listen')).toEqual([]);
  });

  it("a metadata agent (the distribution's process) reaches the chassis' SB with the host's files; its health check asks there", () => {
    const withAgent: Inventory = { ...inv, hosts: inv.hosts.map((h) => (h.name === 'worker1' ? { ...h, roles: ['worker', 'metadata-agent'] } : h)) };
    const b = renderSiteBundles(withAgent, fixturePki(), fixtureOptions()).get('worker1')!;
    const ini = [...b.files.entries()].find(([k]) => k.endsWith('neutron_ovn_metadata_agent.ini'))?.[1].content;
    const text = typeof ini === 'string' ? ini : Buffer.from(ini ?? '').toString('utf8');
    expect(text).toContain('ovn_sb_connection = ssl:192.0.2.11:6642,ssl:192.0.2.12:6642,ssl:192.0.2.13:6642');
    expect(text).toContain(`ovn_sb_private_key = ${pki.key}\novn_sb_certificate = ${pki.cert}\novn_sb_ca_cert = ${pki.caBundle}\n`);
    const check = b.manifest.health.find((c) => c.kind === 'metadata-registered');
    expect(check?.kind === 'metadata-registered' ? check.sbRemotes : undefined).toEqual(['ssl:192.0.2.11:6642', 'ssl:192.0.2.12:6642', 'ssl:192.0.2.13:6642']);
    expect(policyProblems(b.manifest, 'worker1/manifest.json')).toEqual([]);
  });

  it("apply's policy admits every native manifest, and no other set-connection", () => {
    for (const [host, b] of bundles) expect(policyProblems(b.manifest, `${host}/manifest.json`), host).toEqual([]);
    const m = manifest('central1');
    const i = m.initCommands.findIndex((c) => c.includes('set-connection'));
    for (const target of ['ptcp:6642', 'pssl:6642:evil.example.org', 'punix:/tmp/x']) {
      const bad = { ...m, initCommands: m.initCommands.map((c, j) => (j === i ? [...c.slice(0, 4), target] : c)) };
      expect(policyProblems(bad, 'manifest.json').map((p) => p.path)).toEqual([`initCommands[${i}]`]);
    }
    const noRole = { ...m, initCommands: m.initCommands.map((c, j) => (j === i ? [...c.slice(0, 3), 'pssl:6642'] : c)) };
    expect(policyProblems(noRole, 'manifest.json').map((p) => p.path)).toEqual([`initCommands[${i}]`]);
    const badPeer = { ...m, raft: m.raft.map((r, j) => (j === 0 ? { ...r, peerRemotes: ['ssl:evil.example.org:6641'] } : r)) };
    expect(policyProblems(badPeer, 'manifest.json').map((p) => p.path)).toEqual(['raft[0].peerRemotes[0]']);
  });
});
