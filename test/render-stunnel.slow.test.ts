/**
 * The rendered stunnel configs load in the real stunnel (certificates, key, CA bundle, CRL,
 * ciphers, checkHost on server services), through the check that binds nothing. The PKI paths
 * of a real host are pointed at a throwaway PKI made here.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostPaths, pkiPaths, bundleSource } from '../src/paths.js';
import { initPki, issueCertificate } from '../src/pki/index.js';
import { renderSite } from '../src/render/index.js';
import { ZxRunner } from '../src/runner.js';
import { checkStunnelConfig, stunnelBinary } from '../src/tools/stunnel.js';

const stunnelBinaryPath = (): string => stunnelBinary();
import { fixtureInventory, fixtureOptions, fixturePki } from './helpers/render-fixture.js';
import { Daemons, freePorts, waitForListener } from './helpers/tls-daemons.js';

const runner = new ZxRunner();
let dir: string;
let files: { cert: string; key: string; ca: string; crl: string };
let pkiDir: string;
const daemons = new Daemons();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-render-stunnel-'));
  pkiDir = path.join(dir, 'pki');
  await initPki(pkiDir, { keyBits: 2048, commonName: 'render-test' });
  await issueCertificate(pkiDir, { name: 'central1', role: 'central', sans: ['central1', '192.0.2.11'], keyBits: 2048 });
  await issueCertificate(pkiDir, { name: 'central2', role: 'central', sans: ['central2', '192.0.2.12'], keyBits: 2048 });
  await issueCertificate(pkiDir, { name: 'worker1', role: 'worker', sans: ['worker1', '192.0.2.21'], keyBits: 2048 });
  // A certificate of the same CA for a name that is no host of the site.
  await issueCertificate(pkiDir, { name: 'stranger', role: 'worker', sans: ['stranger'], keyBits: 2048 });
  const p = pkiPaths(pkiDir);
  files = { cert: p.cert('central1'), key: p.key('central1'), ca: p.caBundle, crl: p.crl };
});
afterAll(async () => {
  await daemons.stopAll();
  await rm(dir, { recursive: true, force: true });
});

/** The rendered config with the host's PKI paths pointed at the test PKI. */
function withTestPki(conf: string): string {
  const pki = hostPaths().pki;
  return conf.replace(pki.cert, files.cert).replace(pki.key, files.key).replace(pki.caBundle, files.ca).replace(pki.crl, files.crl);
}

/** Sends a line through a TLS connection as `name` and resolves with what comes back ('' when refused). */
async function echoAs(name: string, port: number): Promise<string> {
  const p = pkiPaths(pkiDir);
  const [cert, key, ca] = await Promise.all([readFile(p.cert(name), 'utf8'), readFile(p.key(name), 'utf8'), readFile(p.caBundle, 'utf8')]);
  return new Promise((resolve) => {
    let got = '';
    const sock = tls.connect({ host: '127.0.0.1', port, cert, key, ca, checkServerIdentity: () => undefined, maxVersion: 'TLSv1.2' });
    const timer = setTimeout(() => sock.destroy(), 3000);
    sock.on('secureConnect', () => sock.write('hello\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      sock.end();
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

describe('rendered stunnel configs', () => {
  it('load in stunnel without a warning, on every host', async () => {
    const site = renderSite(fixtureInventory(), fixturePki(), fixtureOptions());
    const confs = [...site].filter(([rel]) => /stunnel-(server|client)\.conf$/.test(rel));
    expect(confs.length).toBe(9);
    for (const [rel, f] of confs) {
      const conf = withTestPki(String(f.content));
      const file = path.join(dir, rel.replace(/[/%]/g, '_'));
      await writeFile(file, conf);
      const check = await checkStunnelConfig(runner, file);
      expect(check.warnings, rel).toEqual([]);
    }
  });
});

describe('a central\'s rendered TLS server', () => {
  it('admits by role: NB and RAFT only for centrals, SB for the hosts of the site, nothing for a name outside it', async () => {
    const site = renderSite(fixtureInventory(), fixturePki(), fixtureOptions());
    let conf = withTestPki(String(site.get(`central1/${bundleSource('/etc/ovn-deploy/stunnel/stunnel-server.conf')}`)?.content));
    const [echoPort, ...ports] = await freePorts(5);
    // A plain echo server stands in for ovsdb-server behind every service.
    const echo = net.createServer((s) => s.pipe(s)).listen(echoPort, '127.0.0.1');
    try {
      const accept: Record<string, number> = {};
      ['nb', 'sb', 'nbRaft', 'sbRaft'].forEach((svc, i) => {
        accept[svc] = ports[i]!;
        conf = conf.replace(new RegExp(`(\\[${svc}\\]\naccept = )\\S+\nconnect = \\S+`), `$1127.0.0.1:${ports[i]}\nconnect = 127.0.0.1:${echoPort}`);
      });
      conf = conf.replace(/^pid = .*$/m, `pid = ${path.join(dir, 'server.pid')}`).replace(/^output = .*$/m, `output = ${path.join(dir, 'server.log')}`);
      const file = path.join(dir, 'server-live.conf');
      await writeFile(file, conf);
      daemons.start([stunnelBinaryPath(), file]);
      for (const port of Object.values(accept)) await waitForListener('127.0.0.1', port);
      expect(await echoAs('worker1', accept.sb!)).toBe('hello\n');
      expect(await echoAs('central2', accept.nb!)).toBe('hello\n');
      // A chassis never gets the Northbound (the fixture site has no cms host).
      expect(await echoAs('worker1', accept.nb!)).toBe('');
      expect(await echoAs('stranger', accept.sb!)).toBe('');
      expect(await echoAs('stranger', accept.nb!)).toBe('');
      expect(await echoAs('central2', accept.nbRaft!)).toBe('hello\n');
      expect(await echoAs('central2', accept.sbRaft!)).toBe('hello\n');
      expect(await echoAs('worker1', accept.nbRaft!)).toBe('');
      expect(await echoAs('worker1', accept.sbRaft!)).toBe('');
    } finally {
      echo.close();
    }
  });
});
