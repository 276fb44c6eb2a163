/**
 * The rendered nftables files are accepted by the real nft in check mode (`nft -c`: parsed and
 * validated by the kernel, nothing is loaded), for every host of the fixture and for a lone
 * central whose RAFT ports are closed to everybody.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderHostBundle, renderSite } from '../src/render/index.js';
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';
import { bundleSource } from '../src/paths.js';

const nft = spawnSync('nft', ['--version']).status === 0;
if (!nft) process.stderr.write('render-firewall: nft is not installed (scripts/install-deps.sh test); skipping nft -c\n');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ovn-deploy-nft-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function check(name: string, content: string): { status: number | null; stderr: string } {
  const file = path.join(tmp, `${name}.nft`);
  writeFileSync(file, content);
  const r = spawnSync('nft', ['-c', '-f', file], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const inv = fixtureInventory();
const site = renderSite(inv, fixturePki(), fixtureOptions());

describe('rendered firewall files', () => {
  it.skipIf(!nft).each(inv.hosts.map((h) => h.name))('%s: nft -c accepts it', (host) => {
    const r = check(host, String(site.get(`${host}/${bundleSource('/etc/ovn-deploy/firewall.nft')}`)?.content));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!nft)('a lone central: nft -c accepts the closed RAFT ports, and rejects a broken file', () => {
    const lone = renderHostBundle({ ...inv, hosts: [inv.hosts[0]!] }, 'central1', fixturePki(), fixtureOptions());
    const content = String(lone.files.get(bundleSource('/etc/ovn-deploy/firewall.nft'))?.content);
    expect(check('lone', content).status).toBe(0);
    expect(check('broken', content.replace('tcp dport 6643 drop', 'tcp dport 6643 dorp')).status).not.toBe(0);
  });
});

describe('rendered firewall files: safe for the operator', () => {
  it.each(inv.hosts.map((h) => h.name))('%s: only its own table, policy accept, loopback/established/own addresses before any drop', (host) => {
    const lines = String(site.get(`${host}/${bundleSource('/etc/ovn-deploy/firewall.nft')}`)?.content)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const tableLines = lines.filter((l) => /^(table|delete|flush|add|create)\b/.test(l));
    expect(tableLines).toEqual(['table inet ovn_deploy {', 'delete table inet ovn_deploy', 'table inet ovn_deploy {']);
    expect(lines.filter((l) => l.includes('policy'))).toEqual(['type filter hook input priority filter; policy accept;']);
    const firstDrop = lines.findIndex((l) => l.endsWith(' drop'));
    expect(firstDrop).toBeGreaterThan(0);
    expect(lines.indexOf('ct state established,related accept')).toBeGreaterThan(-1);
    expect(lines.indexOf('ct state established,related accept')).toBeLessThan(firstDrop);
    expect(lines.indexOf('iif "lo" accept')).toBeLessThan(firstDrop);
    expect(lines.indexOf('iif "lo" accept')).toBeGreaterThan(-1);
    // Every address of the host itself is admitted to every port the file drops.
    const h = inv.hosts.find((x) => x.name === host)!;
    const own = [...h.addresses, ...(h.encap ? [h.encap.ip] : [])];
    // The lines between `iif "lo" accept` and the first port's comment: the host's own addresses.
    const selfRules = lines.slice(lines.indexOf('iif "lo" accept') + 1, firstDrop).filter((l) => /^ip6? saddr/.test(l));
    for (const drop of lines.filter((l) => l.endsWith(' drop'))) {
      const [proto, , port] = drop.split(' ');
      for (const addr of own) {
        expect(selfRules.some((l) => l.includes(addr) && l.includes(`${proto} dport`) && new RegExp(`\\b${port}\\b`).test(l)), `${addr} -> ${proto}/${port}`).toBe(true);
      }
    }
  });
});
