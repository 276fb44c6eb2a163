#!/usr/bin/env node
/**
 * OVSDB through three transports, in one run: plaintext (ovsdb-server `ptcp:`), stunnel (what
 * ovn-deploy's stunnel mode runs: ovsdb-server on a unix socket behind an stunnel server, clients
 * through a local stunnel client, both configs rendered by ovn-deploy's own renderer) and native
 * (ovsdb-server's own TLS, `pssl:` with nativeTlsArgs' protocol and ciphers). Each transport has
 * its own ovsdb-server serving the same NB (empty) and SB (seeded with --rows MAC_Binding rows)
 * standalone databases. The same work runs on each, interleaved (the order rotates every
 * repetition), and the medians are compared with plaintext's:
 *   (a) connection setup: one `ovn-nbctl --db=REMOTE ls-list` process, start to exit;
 *   (b) write-heavy: --txns NB transactions (one Logical_Switch insert each, waiting for each
 *       reply) over one long-lived JSON-RPC connection;
 *   (c) large read: `ovsdb-client dump REMOTE OVN_Southbound` (process), and the same select of
 *       every SB table as one JSON-RPC transact (wire bytes counted);
 *   (d) --clients connections opened at the same moment, each connect + handshake + list_dbs +
 *       close, time until all are closed; (d') the same with at most --in-flight at a time;
 *   (e) VmRSS of ovsdb-server and the stunnel server + client, idle and with --clients
 *       connections held open.
 * Every process it starts is its child, killed at the end; its temp dirs are removed (--keep
 * keeps them), also on failure or Ctrl-C.
 *
 * Usage: npm run build && node bench/tls/run.mjs [--reps N] [--quick] [--json] [--keep]
 *          [--txns N] [--rows N] [--clients N] [--in-flight N] [--setup-runs N]
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '..', '..', 'dist');
if (!existsSync(path.join(dist, 'stunnel', 'render.js'))) {
  process.stderr.write('bench/tls: dist/ is missing: run `npm run build` first\n');
  process.exit(1);
}
const { initPki, issueCertificate } = await import(path.join(dist, 'pki', 'index.js'));
const { pkiPaths } = await import(path.join(dist, 'paths.js'));
const { renderStunnelConfig } = await import(path.join(dist, 'stunnel', 'render.js'));
const { TLS_VERSION, TLS_CIPHERS, TLS_CURVES } = await import(path.join(dist, 'stunnel', 'policy.js'));

const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';
const SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema';
const { stunnelBinary } = await import(path.join(dist, 'tools', 'stunnel.js'));
const STUNNEL = stunnelBinary(); // stunnel4 on Debian, stunnel elsewhere
const HOST = '127.0.0.1';
const TRANSPORTS = ['plaintext', 'stunnel', 'native'];

const USAGE = 'usage: node bench/tls/run.mjs [--reps N] [--quick] [--json] [--keep] [--txns N] [--rows N] [--clients N] [--in-flight N] [--setup-runs N]';

function parseArgs(argv) {
  const o = { reps: 5, quick: false, json: false, keep: false, txns: undefined, rows: undefined, clients: undefined, inFlight: undefined, setupRuns: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v <= 0) {
        process.stderr.write(`bench/tls: ${a} needs a positive integer\n${USAGE}\n`);
        process.exit(2);
      }
      return v;
    };
    if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--reps') o.reps = num();
    else if (a === '--txns') o.txns = num();
    else if (a === '--rows') o.rows = num();
    else if (a === '--clients') o.clients = num();
    else if (a === '--in-flight') o.inFlight = num();
    else if (a === '--setup-runs') o.setupRuns = num();
    else {
      process.stderr.write(`bench/tls: unknown option ${a}\n${USAGE}\n`);
      process.exit(2);
    }
  }
  if (o.quick && !argv.includes('--reps')) o.reps = 2;
  o.txns ??= o.quick ? 300 : 2000;
  o.rows ??= o.quick ? 2000 : 10_000;
  o.clients ??= 50;
  o.inFlight ??= 8;
  o.setupRuns ??= o.quick ? 5 : 4 * o.reps;
  o.rounds = 2 * o.reps; // of (d)
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (line) => process.stderr.write(`bench/tls: ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** The order of the transports in repetition `rep`: rotated, so none always goes first. */
const order = (rep) => TRANSPORTS.map((_, i) => TRANSPORTS[(i + rep) % TRANSPORTS.length]);

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed at the end, by its own pid only.

const children = new Set();

function startDaemon(name, argv, cwd) {
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const d = { name, child, pid: child.pid, tail: '', exited: null };
  child.stderr.on('data', (b) => (d.tail = (d.tail + b).slice(-4000)));
  child.once('error', (err) => (d.exited = `could not start: ${err.message}`));
  child.once('exit', (code, signal) => {
    d.exited = `exited ${code ?? signal}`;
    children.delete(d);
  });
  children.add(d);
  return d;
}

async function stopDaemon(d) {
  if (d.exited !== null) return;
  const gone = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  const t = setTimeout(() => d.child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

async function stopAll() {
  await Promise.all([...children].map(stopDaemon));
}

/** Runs a command to its end; wall ms and stdout byte count. Throws on a non-zero exit. */
function timedRun(argv, { env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let err = '';
    child.stdout.on('data', (b) => (bytes += b.length));
    child.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve({ ms, bytes });
      else reject(new Error(`${argv.join(' ')} exited ${code}:\n${err}`));
    });
  });
}

async function run(argv, o) {
  await timedRun(argv, o);
}

// ---------------------------------------------------------------------------------------------
// A minimal OVSDB JSON-RPC client (RFC 7047): concatenated JSON objects on a byte stream.

class Rpc {
  /** target: { kind: 'tcp', host, port } | { kind: 'unix', path } | { kind: 'tls', host, port, tls } */
  static open(target, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      let sock;
      const ready = target.kind === 'tls' ? 'secureConnect' : 'connect';
      if (target.kind === 'unix') sock = net.connect({ path: target.path });
      else if (target.kind === 'tcp') sock = net.connect({ host: target.host, port: target.port, noDelay: true });
      else sock = tls.connect({ host: target.host, port: target.port, noDelay: true, ...target.tls });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${describeTarget(target)} timed out`));
      }, timeoutMs);
      const fail = (err) => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      sock.once('error', fail);
      sock.once(ready, () => {
        clearTimeout(timer);
        sock.off('error', fail);
        resolve(new Rpc(sock));
      });
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.nextId = 1;
    this.pending = new Map();
    this.parts = [];
    this.depth = 0;
    this.inString = false;
    this.escape = false;
    this.bytesRead = 0;
    this.closed = new Promise((r) => sock.once('close', r));
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('error', (err) => this.failAll(err));
    sock.on('close', () => this.failAll(new Error('connection closed')));
  }

  failAll(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  onData(chunk) {
    this.bytesRead += chunk.length;
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c) this.escape = true;
        else if (c === 0x22) this.inString = false;
      } else if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if ((c === 0x7d || c === 0x5d) && --this.depth === 0) {
        this.parts.push(chunk.subarray(start, i + 1));
        const text = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
        this.parts = [];
        start = i + 1;
        this.dispatch(JSON.parse(text.toString('utf8')));
      }
    }
    if (start < chunk.length) this.parts.push(chunk.subarray(start));
  }

  dispatch(msg) {
    if (msg.method === 'echo') {
      // The server's inactivity probe: answer it or it drops the session.
      this.sock.write(JSON.stringify({ id: msg.id, result: msg.params, error: null }));
      return;
    }
    if (msg.method !== undefined) return; // notifications (update, locked, ...)
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    if (msg.error !== null && msg.error !== undefined) p.reject(new Error(`OVSDB error: ${JSON.stringify(msg.error)}`));
    else p.resolve(msg.result);
  }

  request(method, params) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ method, params, id }));
    });
  }

  /** A transact whose operations all succeeded (OVSDB reports failed operations in the result). */
  async transact(db, ...ops) {
    const result = await this.request('transact', [db, ...ops]);
    const bad = result.find((r) => r !== null && r.error !== undefined);
    if (bad !== undefined) throw new Error(`transaction failed: ${JSON.stringify(bad)}`);
    return result;
  }

  async close() {
    this.sock.end();
    const t = setTimeout(() => this.sock.destroy(), 5000);
    await this.closed;
    clearTimeout(t);
  }
}

const describeTarget = (t) => (t.kind === 'unix' ? `unix:${t.path}` : `${t.kind}:${t.host}:${t.port}`);

// ---------------------------------------------------------------------------------------------
// Setup: PKI, databases, the three transports.

async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, HOST, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function makePki(dir) {
  await initPki(dir, { keyBits: 2048, commonName: 'bench-tls' });
  const [server, client] = await Promise.all([
    issueCertificate(dir, { name: HOST, role: 'central', keyBits: 2048, sans: [HOST] }),
    issueCertificate(dir, { name: 'bench-client', role: 'worker', keyBits: 2048, sans: ['bench-client'] }),
  ]);
  const p = pkiPaths(dir);
  return {
    ca: p.caBundle,
    crl: p.crl,
    server: { cert: server.certPath, key: server.keyPath },
    client: { cert: client.certPath, key: client.keyPath },
  };
}

/** Node TLS options of a client with the bench's client certificate and ovn-deploy's policy. */
async function clientTls(pki) {
  const [cert, key, ca] = await Promise.all([pki.client.cert, pki.client.key, pki.ca].map((f) => fs.readFile(f)));
  // One context for every connection (as a long-running OVS client loads its files once): with
  // cert/key/ca passed to each tls.connect, Node would parse the key and CA again every time.
  const secureContext = tls.createSecureContext({
    cert,
    key,
    ca,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    ciphers: TLS_CIPHERS.join(':'),
    ecdhCurve: TLS_CURVES.join(':'),
  });
  // The server certificate's SAN is the IP 127.0.0.1: Node's default identity check applies.
  return { secureContext };
}

function ovsdbServerArgv(dir, remotes, extra = []) {
  return [
    'ovsdb-server',
    path.join(dir, 'nb.db'),
    path.join(dir, 'sb.db'),
    ...remotes.map((r) => `--remote=${r}`),
    `--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`,
    `--log-file=${path.join(dir, 'ovsdb-server.log')}`,
    '-vconsole:off',
    '-vsyslog:off',
    ...extra,
  ];
}

/** Retries `list_dbs` through `target` until it answers (or the daemons died / 15 s passed). */
async function waitReady(target, daemons) {
  const deadline = performance.now() + 15_000;
  let last;
  for (;;) {
    for (const d of daemons) {
      if (d.exited !== null) throw new Error(`${d.name} ${d.exited}:\n${d.tail}`);
    }
    try {
      const c = await Rpc.open(target, 2000);
      try {
        const dbs = await c.request('list_dbs', []);
        if (dbs.includes('OVN_Northbound') && dbs.includes('OVN_Southbound')) return;
        last = new Error(`list_dbs answered ${JSON.stringify(dbs)}`);
      } finally {
        await c.close();
      }
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`${describeTarget(target)} not ready: ${last?.message}\n${daemons.map((d) => `${d.name}: ${d.tail}`).join('\n')}`);
    await sleep(50);
  }
}

/** The SB seed: one Datapath_Binding and `rows` MAC_Binding rows referencing it. */
async function seedSb(work, rows) {
  const dir = await fs.mkdtemp(path.join(work, 'seed-'));
  await run(['ovsdb-tool', 'create', path.join(dir, 'nb.db'), NB_SCHEMA]);
  await run(['ovsdb-tool', 'create', path.join(dir, 'sb.db'), SB_SCHEMA]);
  const sock = path.join(dir, 'db.sock');
  const d = startDaemon('seed ovsdb-server', ovsdbServerArgv(dir, [`punix:${sock}`]), dir);
  try {
    await waitReady({ kind: 'unix', path: sock }, [d]);
    const c = await Rpc.open({ kind: 'unix', path: sock });
    const [dp] = await c.transact('OVN_Southbound', { op: 'insert', table: 'Datapath_Binding', row: { tunnel_key: 1, external_ids: ['map', [['name', 'bench']]] } });
    const dpUuid = dp.uuid;
    const batch = 2000;
    for (let i = 0; i < rows; i += batch) {
      const ops = [];
      for (let j = i; j < Math.min(rows, i + batch); j++) {
        ops.push({
          op: 'insert',
          table: 'MAC_Binding',
          row: {
            logical_port: `lrp-bench-${j % 64}`,
            ip: `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`,
            mac: `0a:00:00:${((j >> 16) & 255).toString(16).padStart(2, '0')}:${((j >> 8) & 255).toString(16).padStart(2, '0')}:${(j & 255).toString(16).padStart(2, '0')}`,
            timestamp: 1_700_000_000_000 + j,
            datapath: dpUuid,
          },
        });
      }
      await c.transact('OVN_Southbound', ...ops);
    }
    await c.close();
  } finally {
    await stopDaemon(d);
  }
  await run(['ovsdb-tool', 'compact', path.join(dir, 'sb.db')]);
  return path.join(dir, 'sb.db');
}

async function transportDir(work, name, seed) {
  // Each transport in its own temp dir (inside the bench's work dir, so one rm removes all).
  const dir = await fs.mkdtemp(path.join(work, `${name}-`));
  await run(['ovsdb-tool', 'create', path.join(dir, 'nb.db'), NB_SCHEMA]);
  await fs.copyFile(seed, path.join(dir, 'sb.db'));
  return dir;
}

async function startPlaintext(work, seed, port) {
  const dir = await transportDir(work, 'plaintext', seed);
  const ovsdb = startDaemon('plaintext ovsdb-server', ovsdbServerArgv(dir, [`ptcp:${port}:${HOST}`]), dir);
  const target = { kind: 'tcp', host: HOST, port };
  await waitReady(target, [ovsdb]);
  return { name: 'plaintext', dir, ovsdb, stunnel: [], target, remote: `tcp:${HOST}:${port}`, sslArgs: [] };
}

async function startStunnel(work, seed, pki, serverPort, clientPort) {
  const dir = await transportDir(work, 'stunnel', seed);
  const sock = path.join(dir, 'db.sock');
  const ovsdb = startDaemon('stunnel ovsdb-server', ovsdbServerArgv(dir, [`punix:${sock}`]), dir);
  await waitReady({ kind: 'unix', path: sock }, [ovsdb]);
  const common = (kind, pair) => ({
    kind,
    site: 'bench-tls',
    host: kind === 'server' ? 'bench-central' : 'bench-client',
    tls: { cert: pair.cert, key: pair.key, caFile: pki.ca, crlFile: pki.crl },
    pidFile: path.join(dir, `stunnel-${kind}.pid`),
    logFile: path.join(dir, `stunnel-${kind}.log`),
    foreground: true,
  });
  const serverConf = renderStunnelConfig({
    ...common('server', pki.server),
    // As ovn-deploy's central: TLS in on the address, plaintext out to ovsdb-server's unix
    // socket, admission by the client certificate's name on top of the chain and CRL check.
    services: [{ name: 'ovsdb', accept: `${HOST}:${serverPort}`, connect: sock, checkHost: ['bench-client'] }],
  });
  const clientConf = renderStunnelConfig({
    ...common('client', pki.client),
    // As ovn-deploy's worker: plaintext in on loopback, TLS out, the central's name checked.
    services: [{ name: 'ovsdb', accept: `${HOST}:${clientPort}`, connect: [`${HOST}:${serverPort}`], checkIP: [HOST] }],
  });
  await fs.writeFile(path.join(dir, 'stunnel-server.conf'), serverConf);
  await fs.writeFile(path.join(dir, 'stunnel-client.conf'), clientConf);
  const server = startDaemon('stunnel server', [STUNNEL, path.join(dir, 'stunnel-server.conf')], dir);
  const client = startDaemon('stunnel client', [STUNNEL, path.join(dir, 'stunnel-client.conf')], dir);
  const target = { kind: 'tcp', host: HOST, port: clientPort };
  await waitReady(target, [ovsdb, server, client]);
  return { name: 'stunnel', dir, ovsdb, stunnel: [server, client], target, remote: `tcp:${HOST}:${clientPort}`, sslArgs: [], serverPort };
}

async function startNative(work, seed, pki, port, tlsOpts) {
  const dir = await transportDir(work, 'native', seed);
  // nativeTlsArgs() (src/site/native-tls.ts) with this bench's files instead of a host's.
  const nativeArgs = [
    `--private-key=${pki.server.key}`,
    `--certificate=${pki.server.cert}`,
    `--ca-cert=${pki.ca}`,
    `--ssl-protocols=${TLS_VERSION}`,
    `--ssl-ciphers=${TLS_CIPHERS.join(':')}`,
  ];
  const ovsdb = startDaemon('native ovsdb-server', ovsdbServerArgv(dir, [`pssl:${port}:${HOST}`], nativeArgs), dir);
  const target = { kind: 'tls', host: HOST, port, tls: tlsOpts };
  await waitReady(target, [ovsdb]);
  // What an OVS client takes (nativeTlsFiles): key, certificate, CA; the policy is the server's.
  const sslArgs = [`--private-key=${pki.client.key}`, `--certificate=${pki.client.cert}`, `--ca-cert=${pki.ca}`];
  return { name: 'native', dir, ovsdb, stunnel: [], target, remote: `ssl:${HOST}:${port}`, sslArgs };
}

/** What a TLS listener negotiates with a client of this policy: protocol, cipher, ECDHE group. */
async function negotiated(port, tlsOpts) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: HOST, port, ...tlsOpts }, () => {
      const r = { protocol: s.getProtocol(), cipher: s.getCipher().standardName ?? s.getCipher().name, cipherOpenssl: s.getCipher().name, group: s.getEphemeralKeyInfo()?.name ?? null };
      s.end();
      resolve(r);
    });
    s.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements.

async function vmRssKb(pid) {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

async function rss(t) {
  const ovsdb = await vmRssKb(t.ovsdb.pid);
  const stunnel = t.stunnel.length === 0 ? 0 : (await Promise.all(t.stunnel.map((d) => vmRssKb(d.pid)))).reduce((a, b) => a + b, 0);
  return { ovsdbKb: ovsdb, stunnelKb: stunnel, totalKb: ovsdb + stunnel };
}

/** CPU time (user + system, all threads, exited ones included) of the transport's daemons, ms. */
let clockTicks = 100;
async function daemonCpuMs(t) {
  let ticks = 0;
  for (const d of [t.ovsdb, ...t.stunnel]) {
    const stat = await fs.readFile(`/proc/${d.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  }
  return (ticks * 1000) / clockTicks;
}

/** This process's CPU ms (the bench's JSON-RPC clients: for native they do the client side of TLS). */
const selfCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function openMany(t, n) {
  const conns = await Promise.all(Array.from({ length: n }, () => Rpc.open(t.target)));
  await Promise.all(conns.map((c) => c.request('list_dbs', [])));
  return conns;
}

async function memory(t) {
  const idle = await rss(t);
  const conns = await openMany(t, opts.clients);
  await sleep(300);
  const held = await rss(t);
  await Promise.all(conns.map((c) => c.close()));
  return { idle, held };
}

function cleanEnv() {
  const env = { ...process.env };
  for (const k of ['OVN_NB_DAEMON', 'OVN_NB_DB', 'OVN_SB_DB', 'OVS_RUNDIR']) delete env[k];
  return env;
}

async function setupOnce(t, env) {
  const cpu = await daemonCpuMs(t);
  const r = await timedRun(['ovn-nbctl', `--db=${t.remote}`, ...t.sslArgs, 'ls-list'], { env, cwd: t.dir });
  return { ms: r.ms, cpuMs: (await daemonCpuMs(t)) - cpu };
}

async function writeHeavy(t, rep) {
  const c = await Rpc.open(t.target);
  try {
    await c.request('list_dbs', []);
    const cpu = await daemonCpuMs(t);
    const self = selfCpuMs();
    const started = performance.now();
    for (let k = 0; k < opts.txns; k++) {
      await c.transact('OVN_Northbound', { op: 'insert', table: 'Logical_Switch', row: { name: `bench-${rep}-${k}` } });
    }
    const ms = performance.now() - started;
    const clientCpuMs = selfCpuMs() - self;
    const cpuMs = (await daemonCpuMs(t)) - cpu;
    const [del] = await c.transact('OVN_Northbound', { op: 'delete', table: 'Logical_Switch', where: [] });
    if (del.count !== opts.txns) throw new Error(`${t.name}: deleted ${del.count} Logical_Switch rows, expected ${opts.txns}`);
    return { ms, cpuMs, clientCpuMs };
  } finally {
    await c.close();
  }
}

let sbTables;
async function selectAll(t) {
  const c = await Rpc.open(t.target);
  try {
    await c.request('list_dbs', []);
    const before = c.bytesRead;
    const cpu = await daemonCpuMs(t);
    const self = selfCpuMs();
    const started = performance.now();
    const result = await c.transact('OVN_Southbound', ...sbTables.map((table) => ({ op: 'select', table, where: [] })));
    const ms = performance.now() - started;
    const clientCpuMs = selfCpuMs() - self;
    const cpuMs = (await daemonCpuMs(t)) - cpu;
    const macRows = result[sbTables.indexOf('MAC_Binding')].rows.length;
    if (macRows !== opts.rows) throw new Error(`${t.name}: select returned ${macRows} MAC_Binding rows, expected ${opts.rows}`);
    return { ms, cpuMs, clientCpuMs, bytes: c.bytesRead - before };
  } finally {
    await c.close();
  }
}

async function dump(t, env) {
  const cpu = await daemonCpuMs(t);
  const r = await timedRun(['ovsdb-client', ...t.sslArgs, 'dump', t.remote, 'OVN_Southbound'], { env, cwd: t.dir });
  return { ...r, cpuMs: (await daemonCpuMs(t)) - cpu };
}

/**
 * TcpExt counters of this network namespace: accept-queue overflows (a SYN or final ACK dropped
 * because the listener's backlog was full) and SYN retransmissions (the client's 1 s retry).
 * Namespace-wide: other processes' TCP traffic counts too, but nothing else here bursts.
 */
async function tcpCounters() {
  const lines = (await fs.readFile('/proc/net/netstat', 'utf8')).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0].split(/\s+/).slice(1);
  const values = lines[1].split(/\s+/).slice(1).map(Number);
  const get = (n) => values[names.indexOf(n)] ?? 0;
  return { listenOverflows: get('ListenOverflows'), synRetrans: get('TCPSynRetrans') };
}

/** opts.clients connections, each connect + handshake + list_dbs + close, at most `limit` at a time. */
async function burst(t, limit = opts.clients) {
  const before = await tcpCounters();
  const cpu = await daemonCpuMs(t);
  const self = selfCpuMs();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < opts.clients) {
      next++;
      const c = await Rpc.open(t.target);
      await c.request('list_dbs', []);
      await c.close();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, opts.clients) }, worker));
  const ms = performance.now() - started;
  const clientCpuMs = selfCpuMs() - self;
  const cpuMs = (await daemonCpuMs(t)) - cpu;
  const after = await tcpCounters();
  return { ms, cpuMs, clientCpuMs, listenOverflows: after.listenOverflows - before.listenOverflows, synRetrans: after.synRetrans - before.synRetrans };
}

// ---------------------------------------------------------------------------------------------

function versionOf(argv) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.once('error', () => resolve('?'));
    child.once('close', () => resolve(out));
  });
}

let work;
let cleaning;
/** Stops every daemon this run started and removes its work dir; every caller waits for the same pass. */
function cleanup() {
  cleaning ??= (async () => {
    await stopAll();
    if (work !== undefined) {
      if (opts.keep) log(`kept ${work}`);
      else await fs.rm(work, { recursive: true, force: true });
    }
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const load = os.loadavg();
  const missing = [];
  for (const f of [NB_SCHEMA, SB_SCHEMA]) if (!existsSync(f)) missing.push(f);
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const prog of ['ovsdb-server', 'ovsdb-tool', 'ovsdb-client', 'ovn-nbctl', STUNNEL]) {
    if (!dirs.some((d) => existsSync(path.join(d, prog)))) missing.push(prog);
  }
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: install the packages of scripts/install-deps.sh`);
  clockTicks = Number((await versionOf(['getconf', 'CLK_TCK'])).trim()) || 100;
  sbTables = Object.keys(JSON.parse(await fs.readFile(SB_SCHEMA, 'utf8')).tables).sort();
  const versions = {
    ovsdbServer: (await versionOf(['ovsdb-server', '--version'])).split('\n')[0].trim(),
    stunnel: ((await versionOf([STUNNEL, '-version'])).split('\n').find((l) => /^stunnel \d/.test(l)) ?? '?').trim(),
    node: process.version,
    openssl: process.versions.openssl,
  };
  log(`${os.cpus().length} CPUs, load average ${load.map((x) => x.toFixed(2)).join(' ')}; ${versions.ovsdbServer}; ${versions.stunnel}`);

  work = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-bench-tls-'));
  log(`work dir ${work}; PKI (RSA 2048 CA, server and client certificates)`);
  const pki = await makePki(path.join(work, 'pki'));
  const tlsOpts = await clientTls(pki);
  log(`seeding the SB with ${opts.rows} MAC_Binding rows`);
  const seed = await seedSb(work, opts.rows);
  const [plainPort, stunnelServerPort, stunnelClientPort, nativePort] = await freePorts(4);
  const T = {
    plaintext: await startPlaintext(work, seed, plainPort),
    stunnel: await startStunnel(work, seed, pki, stunnelServerPort, stunnelClientPort),
    native: await startNative(work, seed, pki, nativePort, tlsOpts),
  };
  const tlsSeen = { stunnel: await negotiated(stunnelServerPort, tlsOpts), native: await negotiated(nativePort, tlsOpts) };
  log(`up: plaintext ${T.plaintext.remote}; stunnel ${T.stunnel.remote} -> TLS ${HOST}:${stunnelServerPort} (${tlsSeen.stunnel.protocol} ${tlsSeen.stunnel.cipherOpenssl} ${tlsSeen.stunnel.group}); native ${T.native.remote} (${tlsSeen.native.protocol} ${tlsSeen.native.cipherOpenssl} ${tlsSeen.native.group})`);

  const env = cleanEnv();
  const samples = Object.fromEntries(TRANSPORTS.map((n) => [n, { setupMs: [], writeMs: [], dumpMs: [], dumpBytes: [], selectMs: [], selectBytes: [], burstMs: [], burstListenOverflows: [], burstSynRetrans: [], pacedMs: [], pacedListenOverflows: [] }]));
  const mem = {};
  // Daemon CPU ms summed over every measured run of a workload (divided by the runs below).
  const cpu = Object.fromEntries(TRANSPORTS.map((n) => [n, { setup: 0, write: 0, dump: 0, select: 0, burst: 0, paced: 0 }]));
  // The same for the bench's own (JSON-RPC client) CPU, where the client is this process.
  const clientCpu = Object.fromEntries(TRANSPORTS.map((n) => [n, { write: 0, select: 0, burst: 0, paced: 0 }]));

  // (e) first, on fresh daemons (same data loaded in each), so the others' heap growth does not count.
  log(`(e) memory: idle and with ${opts.clients} connections held`);
  for (const n of TRANSPORTS) mem[n] = await memory(T[n]);

  // One unmeasured round of everything: page cache, first-run costs.
  log('warm-up round');
  for (const n of TRANSPORTS) {
    await setupOnce(T[n], env);
    await writeHeavy(T[n], 'warm');
    await dump(T[n], env);
    await selectAll(T[n]);
    await burst(T[n]);
  }

  log(`(a) connection setup: ovn-nbctl ls-list x ${opts.setupRuns}`);
  for (let i = 0; i < opts.setupRuns; i++) {
    for (const n of order(i)) {
      const a = await setupOnce(T[n], env);
      samples[n].setupMs.push(a.ms);
      cpu[n].setup += a.cpuMs;
    }
  }

  for (let rep = 0; rep < opts.reps; rep++) {
    for (const n of order(rep)) {
      const w = await writeHeavy(T[n], rep);
      samples[n].writeMs.push(w.ms);
      cpu[n].write += w.cpuMs;
      clientCpu[n].write += w.clientCpuMs;
      const d = await dump(T[n], env);
      samples[n].dumpMs.push(d.ms);
      samples[n].dumpBytes.push(d.bytes);
      cpu[n].dump += d.cpuMs;
      const s = await selectAll(T[n]);
      samples[n].selectMs.push(s.ms);
      samples[n].selectBytes.push(s.bytes);
      cpu[n].select += s.cpuMs;
      clientCpu[n].select += s.clientCpuMs;
      log(`rep ${rep + 1}/${opts.reps} ${n.padEnd(9)} (b) ${opts.txns} txns ${w.ms.toFixed(0)} ms  (c) dump ${d.ms.toFixed(0)} ms, select ${s.ms.toFixed(0)} ms`);
    }
  }

  log(`(d) ${opts.clients} clients at once, (d') at most ${opts.inFlight} in flight, x ${opts.rounds} rounds`);
  for (let r = 0; r < opts.rounds; r++) {
    for (const n of order(r)) {
      const b = await burst(T[n]);
      samples[n].burstMs.push(b.ms);
      samples[n].burstListenOverflows.push(b.listenOverflows);
      samples[n].burstSynRetrans.push(b.synRetrans);
      cpu[n].burst += b.cpuMs;
      clientCpu[n].burst += b.clientCpuMs;
      await sleep(50);
      const p = await burst(T[n], opts.inFlight);
      samples[n].pacedMs.push(p.ms);
      samples[n].pacedListenOverflows.push(p.listenOverflows);
      cpu[n].paced += p.cpuMs;
      clientCpu[n].paced += p.clientCpuMs;
      await sleep(50);
    }
  }

  const memEnd = {};
  for (const n of TRANSPORTS) memEnd[n] = await rss(T[n]);

  // -------------------------------------------------------------------------------------------
  const med = Object.fromEntries(
    TRANSPORTS.map((n) => {
      const s = samples[n];
      return [n, {
        setupMs: round(median(s.setupMs)),
        writeMs: round(median(s.writeMs)),
        writeUsPerTxn: round((median(s.writeMs) * 1000) / opts.txns, 1),
        writeTxnsPerSecond: round((opts.txns / median(s.writeMs)) * 1000, 0),
        dumpMs: round(median(s.dumpMs)),
        dumpBytes: median(s.dumpBytes),
        selectMs: round(median(s.selectMs)),
        selectBytes: median(s.selectBytes),
        burstMs: round(median(s.burstMs)),
        burstListenOverflows: median(s.burstListenOverflows),
        burstSynRetrans: median(s.burstSynRetrans),
        pacedMs: round(median(s.pacedMs)),
        pacedListenOverflows: median(s.pacedListenOverflows),
      }];
    }),
  );
  const runsOf = { setup: opts.setupRuns, write: opts.reps, dump: opts.reps, select: opts.reps, burst: opts.rounds, paced: opts.rounds };
  const daemonCpuMsPerRun = Object.fromEntries(
    TRANSPORTS.map((n) => [n, Object.fromEntries(Object.entries(cpu[n]).map(([k, v]) => [k, round(v / runsOf[k], 1)]))]),
  );
  const benchCpuMsPerRun = Object.fromEntries(
    TRANSPORTS.map((n) => [n, Object.fromEntries(Object.entries(clientCpu[n]).map(([k, v]) => [k, round(v / runsOf[k], 1)]))]),
  );
  const ratios = (key, a, b) => round(med[a][key] / med[b][key]);
  const keys = ['setupMs', 'writeMs', 'dumpMs', 'selectMs', 'burstMs', 'pacedMs'];
  const ratio = {
    stunnelVsPlaintext: Object.fromEntries(keys.map((k) => [k, ratios(k, 'stunnel', 'plaintext')])),
    nativeVsPlaintext: Object.fromEntries(keys.map((k) => [k, ratios(k, 'native', 'plaintext')])),
    nativeVsStunnel: Object.fromEntries(keys.map((k) => [k, ratios(k, 'native', 'stunnel')])),
  };
  const tlsCostMs = {
    setup: { stunnel: round(med.stunnel.setupMs - med.plaintext.setupMs), native: round(med.native.setupMs - med.plaintext.setupMs) },
  };
  // The TLS layer's memory: stunnel's two processes plus ovsdb-server's growth beyond plaintext's;
  // for native, ovsdb-server's RSS beyond plaintext's.
  const tlsLayerKb = Object.fromEntries(
    ['stunnel', 'native'].map((n) => [n, {
      idle: mem[n].idle.totalKb - mem.plaintext.idle.totalKb,
      held: mem[n].held.totalKb - mem.plaintext.held.totalKb,
      perConnection: round((mem[n].held.totalKb - mem[n].idle.totalKb - (mem.plaintext.held.totalKb - mem.plaintext.idle.totalKb)) / opts.clients, 1),
    }]),
  );
  const result = {
    bench: 'tls',
    reps: opts.reps,
    quick: opts.quick,
    setupRuns: opts.setupRuns,
    txns: opts.txns,
    rows: opts.rows,
    clients: opts.clients,
    inFlight: opts.inFlight,
    rounds: opts.rounds,
    cpus: os.cpus().length,
    loadAverageAtStart: load.map((x) => round(x)),
    versions,
    tls: tlsSeen,
    medians: med,
    daemonCpuMsPerRun,
    benchCpuMsPerRun,
    ratio,
    tlsCostMs,
    memoryKb: { start: mem, end: memEnd, tlsLayer: tlsLayerKb },
    samples,
  };

  if (!opts.json) process.stdout.write(renderTables(result));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function renderTables(r) {
  const m = r.medians;
  const cpu = (n, k) => `${r.daemonCpuMsPerRun[n][k].toFixed(1)} ms`;
  const self = (n, k) => `${r.benchCpuMsPerRun[n][k].toFixed(1)} ms`;
  const out = [];
  const rat = (n, key) => (n === 'plaintext' ? '1.00x' : `${r.ratio[`${n}VsPlaintext`][key].toFixed(2)}x`);
  const table = (title, head, rows) => {
    const all = [head, ...rows];
    const w = head.map((_, i) => Math.max(...all.map((row) => String(row[i]).length)));
    out.push(title);
    for (const row of all) out.push(`  ${row.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('   ')}`);
    out.push('');
  };
  const ms = (x) => `${x.toFixed(1)} ms`;
  const kb = (x) => `${(x / 1024).toFixed(1)} MiB`;
  const vs = (key) => `native/stunnel ${r.ratio.nativeVsStunnel[key].toFixed(2)}x`;
  out.push(
    `bench/tls: ${r.reps} reps, ${r.cpus} CPUs, load average ${r.loadAverageAtStart.join(' ')} at start`,
    `  ${r.versions.ovsdbServer}; ${r.versions.stunnel}; Node ${r.versions.node} (OpenSSL ${r.versions.openssl})`,
    `  TLS negotiated: stunnel ${r.tls.stunnel.protocol} ${r.tls.stunnel.cipherOpenssl} ${r.tls.stunnel.group}; native ${r.tls.native.protocol} ${r.tls.native.cipherOpenssl} ${r.tls.native.group}`,
    '',
  );
  table(`(a) connection setup: one \`ovn-nbctl --db=REMOTE ls-list\` process, median of ${r.setupRuns} (${vs('setupMs')})`,
    ['', 'median', 'TLS cost', 'vs plaintext', 'daemon CPU'],
    TRANSPORTS.map((n) => [n, ms(m[n].setupMs), n === 'plaintext' ? '-' : `+${(m[n].setupMs - m.plaintext.setupMs).toFixed(1)} ms`, rat(n, 'setupMs'), cpu(n, 'setup')]));
  table(`(b) write-heavy: ${r.txns} Logical_Switch inserts, one per transaction, one connection, median of ${r.reps} (${vs('writeMs')})`,
    ['', 'median', 'per txn', 'txn/s', 'vs plaintext', 'daemon CPU', 'bench CPU'],
    TRANSPORTS.map((n) => [n, ms(m[n].writeMs), `${m[n].writeUsPerTxn.toFixed(0)} us`, m[n].writeTxnsPerSecond, rat(n, 'writeMs'), cpu(n, 'write'), self(n, 'write')]));
  table(`(c) large read: ${r.rows} MAC_Binding rows, median of ${r.reps} (dump ${vs('dumpMs')}; select ${vs('selectMs')})`,
    ['', 'ovsdb-client dump', 'output', 'vs plaintext', 'daemon CPU', 'JSON-RPC select', 'payload', 'vs plaintext', 'daemon CPU', 'bench CPU'],
    TRANSPORTS.map((n) => [n, ms(m[n].dumpMs), `${(m[n].dumpBytes / 1e6).toFixed(2)} MB`, rat(n, 'dumpMs'), cpu(n, 'dump'), ms(m[n].selectMs), `${(m[n].selectBytes / 1e6).toFixed(2)} MB`, rat(n, 'selectMs'), cpu(n, 'select'), self(n, 'select')]));
  table(`(d) ${r.clients} clients at once (connect, handshake, list_dbs, close), median of ${r.rounds} rounds (${vs('burstMs')})`,
    ['', 'all done', 'per client', 'vs plaintext', 'daemon CPU', 'bench CPU', 'listen overflows', 'SYN retransmits'],
    TRANSPORTS.map((n) => [n, ms(m[n].burstMs), `${(m[n].burstMs / r.clients).toFixed(2)} ms`, rat(n, 'burstMs'), cpu(n, 'burst'), self(n, 'burst'), m[n].burstListenOverflows, m[n].burstSynRetrans]));
  out.push('  (listen overflows, SYN retransmits: median per round, TcpExt counters of the network namespace; a dropped SYN is retried after 1 s)', '');
  table(`(d') the same ${r.clients} connections, at most ${r.inFlight} in flight (below ovsdb-server's listen backlog of 10), median of ${r.rounds} rounds (${vs('pacedMs')})`,
    ['', 'all done', 'per client', 'vs plaintext', 'daemon CPU', 'bench CPU', 'listen overflows'],
    TRANSPORTS.map((n) => [n, ms(m[n].pacedMs), `${(m[n].pacedMs / r.clients).toFixed(2)} ms`, rat(n, 'pacedMs'), cpu(n, 'paced'), self(n, 'paced'), m[n].pacedListenOverflows]));
  out.push(
    '  (daemon CPU: user + system time of ovsdb-server and, for stunnel, both stunnel processes, mean per run; 10 ms ticks, so small values are coarse;',
    '   bench CPU: this Node process, the JSON-RPC clients: for native it does the client side of TLS, for stunnel the stunnel client does)',
    '',
  );
  const e = r.memoryKb.start;
  const layer = r.memoryKb.tlsLayer;
  table(`(e) memory (VmRSS) at start, idle and with ${r.clients} connections held open`,
    ['', 'ovsdb idle', 'ovsdb held', 'stunnel idle', 'stunnel held', 'total idle', 'total held', 'held vs plaintext', 'TLS layer held', 'per conn'],
    TRANSPORTS.map((n) => [
      n,
      kb(e[n].idle.ovsdbKb),
      kb(e[n].held.ovsdbKb),
      n === 'stunnel' ? kb(e[n].idle.stunnelKb) : '-',
      n === 'stunnel' ? kb(e[n].held.stunnelKb) : '-',
      kb(e[n].idle.totalKb),
      kb(e[n].held.totalKb),
      `${(e[n].held.totalKb / e.plaintext.held.totalKb).toFixed(2)}x`,
      n === 'plaintext' ? '-' : `+${kb(layer[n].held)}`,
      n === 'plaintext' ? '-' : `${layer[n].perConnection.toFixed(0)} KiB`,
    ]));
  out.push(`  (stunnel = its server + client processes; TLS layer = total minus plaintext's total; per conn = extra growth per held connection beyond plaintext's)`, '');
  return `${out.join('\n')}\n`;
}

main()
  .then(cleanup, async (err) => {
    process.stderr.write(`bench/tls: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    await cleanup();
    process.exit(1);
  });
