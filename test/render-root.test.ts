/**
 * render with a host root: every path a daemon, a config or a unit names moves below the root,
 * destinations stay paths on the host, the manifest records the root, and apply refuses the
 * bundle under any other --root (exit 2, nothing written; a bundle for '/' too) while it takes
 * it under its own.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runApply } from '../src/apply/index.js';
import { applyFiles } from '../src/fsx.js';
import { renderSiteBundles } from '../src/render/index.js';
import { FixtureRunner, RecordedServices, fixtureSigner, fixtureTrust } from './helpers/apply-fixture.js';
import { runCli } from './helpers/cli.js';
import { expectRefused } from './helpers/refusals.js';
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';

const ROOT = '/srv/hosts/h1/root';
const slash = renderSiteBundles(fixtureInventory(), fixturePki(), fixtureOptions());
const rooted = renderSiteBundles(fixtureInventory(), fixturePki(), { ...fixtureOptions(), root: ROOT });

/** The distribution directories render names (hostPaths/hostRenderedPaths at '/'). */
const DIST = String.raw`/(?:etc/ovn-deploy|etc/openvswitch|var/(?:lib|run|log)/(?:ovn-deploy|ovn|openvswitch))(?=[/"\s,]|$)`;
const escaped = ROOT.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const anyDist = (s: string): number => s.match(new RegExp(DIST, 'g'))?.length ?? 0;
/** Distribution paths NOT below ROOT. */
const bareDist = (s: string): number => s.match(new RegExp(`(?<!${escaped})${DIST}`, 'g'))?.length ?? 0;
const underRoot = (s: string): number => s.match(new RegExp(`${escaped}${DIST}`, 'g'))?.length ?? 0;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'render-root-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('render --root (pure)', () => {
  const hosts = [...slash.keys()];

  it.each(hosts)('%s: every config and unit names its paths below the root, as many as the / render names', (host) => {
    const a = slash.get(host);
    const b = rooted.get(host);
    if (a === undefined || b === undefined) throw new Error(`no bundle for ${host}`);
    const files = [...a.files.keys()].filter((f) => f.startsWith('files/'));
    expect([...b.files.keys()].filter((f) => f.startsWith('files/')).sort()).toEqual([...files].sort());
    let total = 0;
    for (const f of files) {
      const before = String(a.files.get(f)?.content);
      const after = String(b.files.get(f)?.content);
      expect(bareDist(after), `${host}/${f}`).toBe(0);
      expect(underRoot(after), `${host}/${f}`).toBe(anyDist(before));
      total += anyDist(before);
    }
    // Not vacuous: stunnel configs, units, drop-ins and the firewall file all name such paths.
    expect(total).toBeGreaterThan(10);
  });

  it.each(hosts)('%s: argv, env, log files and init commands below the root; destinations and host paths unchanged; root recorded', (host) => {
    const a = slash.get(host)?.manifest;
    const m = rooted.get(host)?.manifest;
    if (a === undefined || m === undefined) throw new Error(`no bundle for ${host}`);
    expect(a.root).toBeUndefined();
    expect(m.root).toBe(ROOT);
    const verbatim = JSON.stringify([m.services.map((s) => [s.argv, s.env, s.logFile]), m.initCommands]);
    expect(bareDist(verbatim)).toBe(0);
    expect(underRoot(verbatim)).toBe(anyDist(JSON.stringify([a.services.map((s) => [s.argv, s.env, s.logFile]), a.initCommands])));
    const hostSide = (x: typeof m) => JSON.stringify([x.files.map((f) => f.dest), x.certificate, x.raft, x.standaloneDbs, x.ovs?.dbSock, x.health]);
    expect(hostSide(m)).toBe(hostSide(a));
  });

  it("the default root renders no root field (the golden files stay the '/' bundle's bytes)", () => {
    for (const b of slash.values()) expect(String(b.files.get('manifest.json')?.content)).not.toMatch(/"root": /);
    for (const b of rooted.values()) expect(String(b.files.get('manifest.json')?.content)).toContain(`"root": "${ROOT}"`);
  });
});

describe('apply and the recorded root', () => {
  const bundleFor = async (root: string): Promise<string> => {
    const dir = mkdtempSync(path.join(tmp, 'bundle-'));
    const b = renderSiteBundles(fixtureInventory(), fixturePki(), { ...fixtureOptions(), root, signer: fixtureSigner() }).get('central1');
    if (b === undefined) throw new Error('no central1');
    await applyFiles(dir, b.files);
    return dir;
  };
  const caFile = async (): Promise<string> => {
    const dir = mkdtempSync(path.join(tmp, 'ca-'));
    await applyFiles(dir, new Map([['ca.pem', { content: fixtureTrust().pem }]]));
    return path.join(dir, 'ca.pem');
  };

  it('under another --root: exit 2 naming manifest.json, root and both roots; nothing written there', async () => {
    const renderedFor = path.join(tmp, 'host-a');
    const other = path.join(tmp, 'host-b');
    const bundle = await bundleFor(renderedFor);
    const r = await runCli(['apply', '--bundle', bundle, '--root', other, '--trust-ca', await caFile(), '--skip-packages', '--supervisor', 'own']);
    expectRefused(r, new RegExp(`manifest\\.json: root: the bundle was rendered for root ${renderedFor} but apply runs with --root ${other}`));
    expect(existsSync(other)).toBe(false);
    // On the machine's own root too (no --root): refused before anything is read or locked.
    const own = await runCli(['apply', '--bundle', bundle, '--trust-ca', await caFile(), '--skip-packages', '--supervisor', 'own', '--dry-run']);
    expectRefused(own, /root: the bundle was rendered for root .*host-a but apply runs with --root \//);
    // And a bundle for '/' (no root recorded) below another root: its daemons would use this machine's files.
    const forSlash = await bundleFor('/');
    const staged = await runCli(['apply', '--bundle', forSlash, '--root', other, '--trust-ca', await caFile(), '--skip-packages', '--supervisor', 'own']);
    expectRefused(staged, new RegExp(`manifest\\.json: root: the bundle was rendered for root / but apply runs with --root ${other}`));
    expect(existsSync(other)).toBe(false);
  });

  it('under its own --root: accepted (a fresh host: key and CSR below the root, exit 3)', async () => {
    const root = path.join(tmp, 'host-c');
    const bundle = await bundleFor(root);
    const out = await runApply({ trustCa: fixtureTrust(), bundleDir: bundle, root, runner: new FixtureRunner(), services: new RecordedServices(), skipPackages: true, healthTimeoutMs: 1_000 });
    expect(out.report.status).toBe('needs-certificate');
    expect(readdirSync(path.join(root, 'etc', 'ovn-deploy', 'pki')).sort()).toContain('host.key');
  });
});
