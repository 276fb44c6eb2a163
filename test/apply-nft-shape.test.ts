/**
 * The nftables files apply loads must be of render's shape (src/apply/nft-shape.ts): every one
 * render writes passes, in both TLS modes and for every host of the golden fixture; what an nft
 * file could do to the host beyond ovn-deploy's own tables does not.
 */
import { describe, expect, it } from 'vitest';
import { nftShapeProblems } from '../src/apply/nft-shape.js';
import type { Inventory } from '../src/inventory/types.js';
import { renderSiteBundles } from '../src/render/index.js';
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';

const golden = fixtureInventory();
const native: Inventory = { ...golden, tls: { mode: 'native', sbAdminPort: 6648 }, hosts: golden.hosts.map((h) => ({ ...h, roles: h.roles.filter((r) => r !== 'metadata-agent'), systemId: h.name })) };

describe('nftables files apply loads', () => {
  it('every one render writes is of the accepted shape (stunnel and native, every host)', () => {
    let seen = 0;
    for (const inv of [golden, native]) {
      for (const [host, b] of renderSiteBundles(inv, fixturePki(), fixtureOptions())) {
        for (const [name, f] of b.files) {
          if (!name.endsWith('.nft')) continue;
          seen++;
          expect(nftShapeProblems(String(f.content), name, 'f'), `${inv.tls.mode} ${host} ${name}`).toEqual([]);
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
  });

  it.each([
    ['flush ruleset'],
    ['table ip nat {'],
    ['add rule inet filter input drop'],
    ['type filter hook input priority filter; policy drop;'],
    ['include "/etc/x.nft"'],
    ['tcp dport 22 accept; flush ruleset'],
    ['ip saddr { 10.0.0.1 } tcp dport 6641 accept comment "x"; flush ruleset'],
    ['define x = 1'],
  ])('refuses %j', (line) => {
    const problems = nftShapeProblems(`table inet ovn_deploy {\n${line}\n}\n`, 'firewall.nft', 'files[3]');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: 'firewall.nft', path: 'files[3]' });
    expect(problems[0]?.message).toMatch(/^line 2 is not a rule ovn-deploy writes/);
  });
});
