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
    const r = check(host, String(site.get(`${host}/files/etc/ovn-deploy/firewall.nft`)?.content));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!nft)('a lone central: nft -c accepts the closed RAFT ports, and rejects a broken file', () => {
    const lone = renderHostBundle({ ...inv, hosts: [inv.hosts[0]!] }, 'central1', fixturePki(), fixtureOptions());
    const content = String(lone.files.get('files/etc/ovn-deploy/firewall.nft')?.content);
    expect(check('lone', content).status).toBe(0);
    expect(check('broken', content.replace('tcp dport 6643 drop', 'tcp dport 6643 dorp')).status).not.toBe(0);
  });
});
