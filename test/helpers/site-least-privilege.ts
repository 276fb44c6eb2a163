/**
 * Issue #20's probes on a host of a test site (site-hosts.ts), run inside it over the test's exec:
 * who on the host reaches which OVSDB endpoint. Each probe runs as root first (the control: the
 * endpoint is there and serves, so a refusal below is about the user) and then as `nobody`
 * (setpriv, no groups). The probes return findings (one line per violation) instead of failing
 * at the first one, so a broken feature shows everything it lets through at once.
 */
import type { ExecResult } from './site-hosts.js';

export type HostExec = (host: string, argv: string[]) => Promise<ExecResult>;

/** An unprivileged local user: uid/gid 65534 (nobody/nogroup), no supplementary groups. */
export const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] as const;

/** The distribution's plaintext OVSDB sockets (NB, SB on a central; OVS's conf.db on a chassis). */
export const DISTRIBUTION_SOCKETS = ['/var/run/ovn/ovnnb_db.sock', '/var/run/ovn/ovnsb_db.sock', '/var/run/openvswitch/db.sock'] as const;

/** TCP connect to argv[1]:argv[2]: exit 0 connected, 3 refused (the error on stdout). */
const TCP_CONNECT = [
  'import socket, sys',
  'try:',
  '    socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()',
  'except OSError as e:',
  '    print(type(e).__name__, e)',
  '    sys.exit(3)',
  "print('connected')",
].join('\n');

const out = (r: ExecResult): string => `exit ${r.code}: ${`${r.stdout} ${r.stderr}`.replace(/\s+/g, ' ').trim().slice(0, 300)}`;

/** The unix sockets in `dir` (names only), as root sees them. */
export async function socketsIn(exec: HostExec, host: string, dir: string): Promise<string[]> {
  const r = await exec(host, ['find', dir, '-mindepth', '1', '-maxdepth', '1', '-type', 's', '-printf', '%f\\n']);
  if (r.code !== 0) throw new Error(`${host}: find ${dir}: ${out(r)}`);
  return r.stdout.split('\n').filter((l) => l !== '').sort();
}

/** Those of DISTRIBUTION_SOCKETS that exist on the host. */
export async function distributionSockets(exec: HostExec, host: string): Promise<string[]> {
  const found: string[] = [];
  for (const s of DISTRIBUTION_SOCKETS) if ((await exec(host, ['test', '-S', s])).code === 0) found.push(s);
  return found;
}

/** Every TCP listener on a loopback address (`addr:port`, IPv6 in brackets), from ss. */
export async function loopbackTcpListeners(exec: HostExec, host: string): Promise<string[]> {
  const r = await exec(host, ['ss', '-Htln']);
  if (r.code !== 0) throw new Error(`${host}: ss -Htln: ${out(r)}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3] ?? '')
    .filter((a) => a.startsWith('127.') || a.startsWith('[::1]') || a.startsWith('[::ffff:127.'))
    .sort();
}

export type OvsdbName = 'OVN_Northbound' | 'OVN_Southbound' | 'Open_vSwitch';

/**
 * A read of the database's one global row with its own ctl (what a host of the role has
 * installed: a cms host has ovn-common, without ovsdb-client): prints that row's uuid.
 */
function readGlobalRow(db: OvsdbName, socket: string): string[] {
  const read = ['--timeout=10', '--bare', '--columns=_uuid', 'list'];
  if (db === 'Open_vSwitch') return ['ovs-vsctl', `--db=unix:${socket}`, ...read, 'Open_vSwitch'];
  return [db === 'OVN_Northbound' ? 'ovn-nbctl' : 'ovn-sbctl', `--db=unix:${socket}`, '--no-leader-only', ...read, db === 'OVN_Northbound' ? 'NB_Global' : 'SB_Global'];
}

/**
 * An OVSDB unix socket: root reads the database's global row through it; nobody is refused by
 * the file system (Permission denied), not by anything else.
 */
export async function probeUnixSocket(exec: HostExec, host: string, socket: string, db: OvsdbName): Promise<string[]> {
  const findings: string[] = [];
  const argv = readGlobalRow(db, socket);
  const root = await exec(host, argv);
  if (root.code !== 0 || !/^[0-9a-f]{8}-[0-9a-f-]{27}$/m.test(root.stdout)) findings.push(`${host}: root cannot read ${db} on unix:${socket} (control) ${out(root)}`);
  const nobody = await exec(host, [...AS_NOBODY, ...argv]);
  if (nobody.code === 0) findings.push(`${host}: nobody reached unix:${socket} ${out(nobody)}`);
  else if (!/Permission denied/.test(nobody.stdout + nobody.stderr)) findings.push(`${host}: nobody failed on unix:${socket} for another reason than Permission denied ${out(nobody)}`);
  return findings;
}

/** A loopback TCP listener: root connects; nobody's connection is refused (reset). */
export async function probeTcp(exec: HostExec, host: string, address: string): Promise<string[]> {
  const findings: string[] = [];
  const i = address.lastIndexOf(':');
  const argv = ['python3', '-c', TCP_CONNECT, address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), address.slice(i + 1)];
  const root = await exec(host, argv);
  if (root.code !== 0) findings.push(`${host}: root cannot connect to tcp:${address} (control) ${out(root)}`);
  const nobody = await exec(host, [...AS_NOBODY, ...argv]);
  if (nobody.code === 0) findings.push(`${host}: nobody connected to tcp:${address}`);
  else if (nobody.code !== 3 || !/ConnectionRefused/.test(nobody.stdout)) findings.push(`${host}: nobody failed on tcp:${address} for another reason than a refused connection ${out(nobody)}`);
  return findings;
}

/** The host's private key: readable by root, not by nobody (so nobody cannot present the host's identity either). */
export async function probeKey(exec: HostExec, host: string, keyFile: string): Promise<string[]> {
  const findings: string[] = [];
  const root = await exec(host, ['head', '-c', '40', keyFile]);
  if (root.code !== 0 || !root.stdout.includes('PRIVATE KEY')) findings.push(`${host}: root cannot read ${keyFile} (control) ${out(root)}`);
  const nobody = await exec(host, [...AS_NOBODY, 'head', '-c', '40', keyFile]);
  if (nobody.code === 0 || !/Permission denied/.test(nobody.stderr)) findings.push(`${host}: nobody read ${keyFile} ${out(nobody)}`);
  return findings;
}

/**
 * A TLS handshake to host:port made on `from` with `from`'s own certificate and key, TLS 1.2: the
 * server's verdict on the client certificate is part of the handshake in 1.2 (in 1.3 the client
 * would only learn it after the handshake), so the exit code is that verdict.
 */
export async function handshake(exec: HostExec, from: string, target: { host: string; port: number }, pki: { cert: string; key: string; ca: string }): Promise<ExecResult> {
  return exec(from, [
    'sh',
    '-c',
    'exec openssl s_client -tls1_2 -verify_return_error -connect "$1" -cert "$2" -key "$3" -CAfile "$4" </dev/null',
    'handshake',
    `${target.host}:${target.port}`,
    pki.cert,
    pki.key,
    pki.ca,
  ]);
}

export const summary = out;
