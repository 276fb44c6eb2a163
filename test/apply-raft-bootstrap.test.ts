/**
 * The RAFT bootstrap guard: the bootstrap central asks its peers (`ovsdb-client query` of
 * `_Server` through the stunnel client) before `ovsdb-tool create-cluster`, joins a cluster a peer
 * already serves, and refuses when it was a member before and no peer answers as one. The peers'
 * answers are mocked (a runner that answers `ovsdb-client`); ovsdb-tool is real. The real thing,
 * with two hosts, is in apply-raft.slow.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runApply } from '../src/apply/index.js';
import { BINARIES } from '../src/render/services.js';
import { decideBootstrap, parseServerAnswer, probePeers, serverQuery, type PeerAnswer } from '../src/apply/raft-bootstrap.js';
import { manifestSchema, type BundleManifestInput } from '../src/bundle/manifest.js';
import { ExitError } from '../src/errors.js';
import { hostPaths, pkiPaths } from '../src/paths.js';
import { initPki, signCsr } from '../src/pki/index.js';
import { RecordingRunner, type RunOptions, type RunResult, type Runner } from '../src/runner.js';
import { fixtureTrust, FixtureRunner, oneBoxManifest, RecordedServices, writeBundle } from './helpers/apply-fixture.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'apply-raft-bootstrap-'));
let pkiDir: string;
let caPem: string;
let crlPem: string;
beforeAll(async () => {
  pkiDir = path.join(tmp, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'raft-bootstrap-test' });
  caPem = readFileSync(pkiPaths(pkiDir).caBundle, 'utf8');
  crlPem = readFileSync(pkiPaths(pkiDir).crl, 'utf8');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CID = '4f1d5a7e-0d7c-4a8e-9a57-3c1e2b9d0a11';
/** The peer's NB/SB through this central's tunnel, as the bundle names them (host paths). */
const PEER = { nb: 'unix:/var/run/ovn-deploy/ovsdb/peer1.nb', sb: 'unix:/var/run/ovn-deploy/ovsdb/peer1.sb' };
/** What apply asks: the same sockets below its --root. */
const asked = (root: string, remote: string): string => remote.replace(/^unix:/, `unix:${root}`);
const member = (cid = CID) => JSON.stringify([{ rows: [{ cid: ['uuid', cid], connected: true, leader: false, model: 'clustered' }] }]);
const joining = JSON.stringify([{ rows: [{ cid: ['uuid', '00000000-0000-0000-0000-000000000000'], connected: false, leader: false, model: 'clustered' }] }]);

/** The fixture runner, plus mocked `ovsdb-client query` answers of the peers. */
class PeersRunner implements Runner {
  readonly queries: { remote: string; db: string }[] = [];
  constructor(
    readonly inner: FixtureRunner,
    public answer: (remote: string, db: string) => Partial<RunResult>,
  ) {}
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (argv[0] !== 'ovsdb-client') return this.inner.run(argv, opts);
    const remote = argv[3] ?? '';
    const db = String((JSON.parse(argv[4] ?? '[]') as [string, { where: [string, string, string][] }])[1].where[0]?.[2]);
    this.queries.push({ remote, db });
    this.inner.calls.push({ argv: [...argv], opts });
    return { stdout: '', stderr: '', exitCode: 0, ...this.answer(remote, db) };
  }
}

let seq = 0;
/** A bootstrap central (the one-box fixture) with one peer. */
function bootstrapCentral(): { root: string; bundle: string } {
  const d = path.join(tmp, `case${++seq}`);
  const c = { root: path.join(d, 'root'), bundle: path.join(d, 'bundle') };
  const { manifest, files } = oneBoxManifest('box1', caPem, crlPem);
  const edited: Omit<BundleManifestInput, 'files'> = {
    ...manifest,
    raft: (manifest.raft ?? []).map((r) => ({
      ...r,
      peers: [r.name === 'OVN_Northbound' ? 'tcp:127.9.9.9:16643' : 'tcp:127.9.9.9:16644'],
      peerRemotes: [r.name === 'OVN_Northbound' ? PEER.nb : PEER.sb],
    })),
  };
  writeBundle(c.bundle, edited, files, c.root);
  return c;
}

async function converge(c: { root: string; bundle: string }, runner: PeersRunner, services: RecordedServices) {
  const first = await runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner, services, healthTimeoutMs: 1_000 });
  expect(first.exitCode).toBe(3);
  const cert = (await signCsr(pkiDir, first.report.csr ?? '', { role: 'central', name: 'box1', sans: ['box1', '192.0.2.10'] })).certPem;
  return runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner, services, healthTimeoutMs: 1_000, certificate: { pem: cert, from: '-' } });
}

const hp = hostPaths('/');

describe('RAFT bootstrap guard in apply (mocked peers, real ovsdb-tool)', () => {
  it('a peer already serves the cluster: the bootstrap central joins it (no create-cluster, no init), tunnels started first', async () => {
    const c = bootstrapCentral();
    const runner = new PeersRunner(new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4'])), () => ({ stdout: member() }));
    const services = new RecordedServices();
    const out = await converge(c, runner, services);
    expect(out.error).toBeUndefined();
    expect(out.exitCode).toBe(0);
    const raft = out.report.changes.filter((ch) => ch.kind === 'raft').map((ch) => `${ch.action}: ${ch.target}`);
    expect(raft).toEqual([
      `joined existing cluster: OVN_Northbound ${hp.ovn.nbDb} (cluster ${CID} via ${asked(c.root, PEER.nb)})`,
      `joined existing cluster: OVN_Southbound ${hp.ovn.sbDb} (cluster ${CID} via ${asked(c.root, PEER.sb)})`,
    ]);
    const argvs = runner.inner.calls.map((x) => x.argv);
    expect(argvs.some((a) => a[1] === 'create-cluster')).toBe(false);
    expect(argvs.filter((a) => a[1] === 'join-cluster').map((a) => a.slice(3))).toEqual([
      ['OVN_Northbound', 'tcp:127.1.2.3:16643', 'tcp:127.9.9.9:16643'],
      ['OVN_Southbound', 'tcp:127.1.2.3:16644', 'tcp:127.9.9.9:16644'],
    ]);
    // The joined cluster was initialised by its creator; init on a follower would wait forever.
    expect(argvs.some((a) => a[0] === BINARIES.nbctl || a[0] === BINARIES.sbctl || a[0] === 'ovn-nbctl' || a[0] === 'ovn-sbctl')).toBe(false);
    // The peers were asked after the stunnel service was up, which is before stage 0.
    expect(services.calls).toEqual(['early stunnel-server', 'stage0 stop=[]', 'all']);
    expect(runner.queries).toEqual([
      { remote: asked(c.root, PEER.nb), db: 'OVN_Northbound' },
      { remote: asked(c.root, PEER.sb), db: 'OVN_Southbound' },
    ]);
    const root = hostPaths(c.root);
    expect(existsSync(root.ovn.nbDb)).toBe(true);
    expect((JSON.parse(readFileSync(root.applied, 'utf8')) as { initialized: boolean }).initialized).toBe(true);
  });

  it('a fresh site (the peers answer, but are only joining): create-cluster and init as before', async () => {
    const c = bootstrapCentral();
    const runner = new PeersRunner(new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4'])), () => ({ stdout: joining }));
    const out = await converge(c, runner, new RecordedServices());
    expect(out.exitCode).toBe(0);
    expect(out.report.changes.filter((ch) => ch.kind === 'raft').map((ch) => ch.action)).toEqual(['create-cluster', 'create-cluster', 'run', 'run']);
  });

  it('the bootstrap central lost its NB file and no peer answers as a member: refuses (exit 1), names the peers, creates nothing', async () => {
    const c = bootstrapCentral();
    const runner = new PeersRunner(new FixtureRunner(new Set(['ovn-central', 'ovn-host', 'stunnel4'])), () => ({ stdout: joining }));
    const services = new RecordedServices();
    expect((await converge(c, runner, services)).exitCode).toBe(0);
    const root = hostPaths(c.root);
    rmSync(root.ovn.nbDb);
    runner.answer = () => ({ exitCode: 1, stderr: 'ovsdb-client: transaction failed (End of file)' });
    const out = await runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner, services, healthTimeoutMs: 1_000 });
    expect(out.exitCode).toBe(1);
    expect(out.report.status).toBe('unhealthy');
    expect(out.error).toContain(`OVN_Northbound: ${hp.ovn.nbDb} is missing`);
    expect(out.error).toContain(`${asked(c.root, PEER.nb)}: no answer (ovsdb-client: transaction failed (End of file))`);
    expect(out.error).toContain('Bring at least one other central up');
    expect(existsSync(root.ovn.nbDb)).toBe(false);
    expect(runner.inner.calls.filter((x) => x.argv[1] === 'create-cluster')).toHaveLength(2); // the first converge only

    // Once the peer is back as a member, the next apply joins it.
    runner.answer = () => ({ stdout: member() });
    const again = await runApply({ trustCa: fixtureTrust(), bundleDir: c.bundle, root: c.root, runner, services, healthTimeoutMs: 1_000 });
    expect(again.error).toBeUndefined();
    expect(again.report.changes.filter((ch) => ch.kind === 'raft').map((ch) => ch.action)).toEqual(['joined existing cluster']);
    expect(existsSync(root.ovn.nbDb)).toBe(true);
  });
});

describe('RAFT bootstrap decision (pure, and the probe with a mocked runner)', () => {
  const db = manifestSchema.parse({ ...oneBoxManifest('box1').manifest, files: [] }).raft[0]!;
  const nb = { ...db, peerRemotes: ['tcp:127.9.9.8:16641', 'tcp:127.9.9.9:16641'] };

  it('parses _Server answers: member, joining, standalone, no such database, garbage', () => {
    expect(parseServerAnswer('r', member())).toEqual({ remote: 'r', kind: 'member', cid: CID });
    expect(parseServerAnswer('r', joining).kind).toBe('no-cluster');
    expect(parseServerAnswer('r', JSON.stringify([{ rows: [{ cid: ['set', []], model: 'standalone' }] }]))).toMatchObject({ kind: 'no-cluster', detail: 'it serves a standalone database' });
    expect(parseServerAnswer('r', JSON.stringify([{ rows: [] }]))).toMatchObject({ kind: 'no-cluster', detail: 'it does not serve this database' });
    expect(parseServerAnswer('r', 'not json').kind).toBe('unreachable');
    expect(JSON.parse(serverQuery('OVN_Southbound'))).toEqual(['_Server', { op: 'select', table: 'Database', where: [['name', '==', 'OVN_Southbound']], columns: ['model', 'cid', 'connected', 'leader'] }]);
  });

  it('join a member; create on a fresh host; refuse with evidence of membership; refuse two different clusters', () => {
    const m = (remote: string, cid = CID): PeerAnswer => ({ remote, kind: 'member', cid });
    const down = (remote: string): PeerAnswer => ({ remote, kind: 'unreachable', detail: 'End of file' });
    expect(decideBootstrap(nb, [down('a'), m('b')], undefined, '/x/applied.json')).toEqual({ action: 'join', cid: CID, via: 'b' });
    expect(decideBootstrap(nb, [down('a'), m('b')], 'evidence', '/x/applied.json')).toEqual({ action: 'join', cid: CID, via: 'b' });
    expect(decideBootstrap(nb, [down('a'), down('b')], undefined, '/x/applied.json')).toEqual({ action: 'create' });
    expect(() => decideBootstrap(nb, [down('a'), down('b')], '/x/applied.json records an initialised cluster', '/x/applied.json')).toThrow(ExitError);
    expect(() => decideBootstrap(nb, [down('a'), down('b')], 'e', '/x/applied.json')).toThrow(/a: no answer \(End of file\)\n {2}b: no answer/);
    expect(() => decideBootstrap(nb, [m('a'), m('b', '11111111-2222-3333-4444-555555555555')], undefined, '/x')).toThrow(/two different clusters/);
  });

  it('probe: asks again while the local stunnel client is not listening yet, stops at the first member or a closed connection; gives up after its window', async () => {
    let calls = 0;
    const starting = new RecordingRunner(() => (++calls <= 2 ? { exitCode: 1, stderr: 'ovsdb-client: failed to connect to "tcp:127.9.9.9:16641" (Connection refused)' } : { stdout: member() }));
    const answers = await probePeers(starting, { ...nb, peerRemotes: ['tcp:127.9.9.9:16641'] }, 5_000, 10);
    expect(answers).toEqual([{ remote: 'tcp:127.9.9.9:16641', kind: 'member', cid: CID }]);
    expect(calls).toBe(3);
    expect(starting.calls[0]?.opts).toMatchObject({ mutates: false, allowFailure: true });

    // The stunnel client is up but cannot reach the peers (it closes): one round is the answer.
    const closed = new RecordingRunner(() => ({ exitCode: 1, stderr: 'ovsdb-client: transaction failed (End of file)' }));
    expect((await probePeers(closed, nb, 5_000, 10)).map((a) => a.kind)).toEqual(['unreachable', 'unreachable']);
    expect(closed.calls).toHaveLength(2);

    // Nothing ever listens locally: asks again until the window is over, then gives up.
    const t0 = Date.now();
    const never = new RecordingRunner(() => ({ exitCode: 1, stderr: 'ovsdb-client: failed to connect to "tcp:127.9.9.8:16641" (Connection refused)' }));
    const gone = await probePeers(never, nb, 300, 50);
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(gone.map((a) => a.kind)).toEqual(['unreachable', 'unreachable']);
    expect(never.calls.length).toBeGreaterThan(2);
  });
});
