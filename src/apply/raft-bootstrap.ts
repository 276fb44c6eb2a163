/**
 * The guard in front of `ovsdb-tool create-cluster` on the bootstrap central. "Bootstrap" only
 * means "first central in the inventory": if an operator puts a new central at the top of a
 * running site, or the bootstrap central lost its database file, creating a cluster there would
 * start a SECOND cluster with the same name next to the real one (split brain). So before
 * creating, apply asks the peers (their client port, through the local stunnel client) whether
 * one of them is a member of a cluster already; if so it joins instead. If none answers and this
 * host was a member before, nothing can be decided safely and apply refuses.
 */
import type { RaftDb } from '../bundle/manifest.js';
import { ExitError } from '../errors.js';
import type { Runner } from '../runner.js';
import { hostPaths } from '../paths.js';
import { sleep } from '../tools/retry.js';

/** What one peer said about the database: a member of a cluster (with its id), no cluster, or nothing. */
export type PeerAnswer =
  | { remote: string; kind: 'member'; cid: string }
  /** It answered, but is no member of an existing cluster (joining, standalone, no such db). */
  | { remote: string; kind: 'no-cluster'; detail: string }
  | { remote: string; kind: 'unreachable'; detail: string };

export type BootstrapDecision = { action: 'create' } | { action: 'join'; cid: string; via: string };

/** A joining server reports this cid until it got into the cluster. */
const NO_CID = '00000000-0000-0000-0000-000000000000';

export const PROBE_WINDOW_MS = 3_000;
const PROBE_TIMEOUT_S = 2;

/** The `_Server` query that says whether a server is a member of a cluster of `db`. */
export function serverQuery(db: string): string {
  return JSON.stringify(['_Server', { op: 'select', table: 'Database', where: [['name', '==', db]], columns: ['model', 'cid', 'connected', 'leader'] }]);
}

/** Parses `ovsdb-client query` output of serverQuery(). */
export function parseServerAnswer(remote: string, stdout: string): PeerAnswer {
  let rows: unknown;
  try {
    rows = (JSON.parse(stdout) as { rows?: unknown }[])[0]?.rows;
  } catch {
    return { remote, kind: 'unreachable', detail: `unreadable answer: ${stdout.trim().slice(0, 200)}` };
  }
  if (!Array.isArray(rows)) return { remote, kind: 'unreachable', detail: `unreadable answer: ${stdout.trim().slice(0, 200)}` };
  const row = rows[0] as { model?: unknown; cid?: unknown } | undefined;
  if (row === undefined) return { remote, kind: 'no-cluster', detail: 'it does not serve this database' };
  if (row.model !== 'clustered') return { remote, kind: 'no-cluster', detail: `it serves a ${String(row.model)} database` };
  // An OVSDB optional uuid: ["uuid", "..."] when set, ["set", []] when not.
  const cid = Array.isArray(row.cid) && row.cid[0] === 'uuid' && typeof row.cid[1] === 'string' ? row.cid[1] : undefined;
  if (cid === undefined || cid === NO_CID) return { remote, kind: 'no-cluster', detail: 'it is still joining a cluster itself' };
  return { remote, kind: 'member', cid };
}

async function askPeer(runner: Runner, remote: string, db: string, tls: readonly string[]): Promise<PeerAnswer> {
  const r = await runner.run(['ovsdb-client', `--timeout=${PROBE_TIMEOUT_S}`, ...(remote.startsWith('ssl:') ? tls : []), 'query', remote, serverQuery(db)], {
    mutates: false,
    allowFailure: true,
    timeoutMs: (PROBE_TIMEOUT_S + 3) * 1000,
  });
  if (r.exitCode !== 0) return { remote, kind: 'unreachable', detail: (r.stderr.trim().split('\n').pop() ?? '').trim() || `exit ${r.exitCode}` };
  return parseServerAnswer(remote, r.stdout);
}

/** Nobody listens on the local end: the stunnel client has not bound its port or socket yet. */
const notListening = (a: PeerAnswer): boolean => a.kind === 'unreachable' && /connection refused|no such file/i.test(a.detail);

/**
 * Asks every peer; again within `windowMs` while the local stunnel client is not listening yet
 * (it may have just started). A closed connection (the stunnel client could not reach the peer)
 * is an answer: asking again would not change it. The last answer of each peer.
 */
export async function probePeers(runner: Runner, db: RaftDb, windowMs = PROBE_WINDOW_MS, pauseMs = 300, at: (hostPath: string) => string = (p) => p): Promise<PeerAnswer[]> {
  const deadline = Date.now() + windowMs;
  // A `unix:` remote names a host path: below apply's root.
  const remotes = db.peerRemotes.map((r) => (r.startsWith('unix:') ? `unix:${at(r.slice('unix:'.length))}` : r));
  // Native TLS (`ssl:` peers): the host's own key and certificate, below apply's root.
  const pki = hostPaths().pki;
  const tls = [`--private-key=${at(pki.key)}`, `--certificate=${at(pki.cert)}`, `--ca-cert=${at(pki.caBundle)}`];
  for (;;) {
    const answers = await Promise.all(remotes.map((remote) => askPeer(runner, remote, db.name, tls)));
    if (answers.some((a) => a.kind === 'member') || !answers.some(notListening) || Date.now() + pauseMs > deadline) return answers;
    await sleep(pauseMs);
  }
}

/**
 * join when a peer is a member of a cluster; create when none is and this host never was a
 * member (a fresh site: the others have no cluster to offer yet); refuse otherwise.
 * `wasMember`: why this host must have been a member before (undefined: no evidence).
 */
export function decideBootstrap(db: RaftDb, answers: readonly PeerAnswer[], wasMember: string | undefined, appliedFile: string): BootstrapDecision {
  const member = answers.find((a): a is Extract<PeerAnswer, { kind: 'member' }> => a.kind === 'member');
  if (member !== undefined) {
    const other = answers.find((a): a is Extract<PeerAnswer, { kind: 'member' }> => a.kind === 'member' && a.cid !== member.cid);
    if (other !== undefined) {
      throw new ExitError(
        `${db.name}: the peers belong to two different clusters (${member.remote}: ${member.cid}, ${other.remote}: ${other.cid}); ` +
          'refusing to create or join either: resolve the split by hand (ovs-appctl cluster/status on each central) and apply again',
      );
    }
    return { action: 'join', cid: member.cid, via: member.remote };
  }
  if (wasMember === undefined) return { action: 'create' };
  const said = answers.map((a) => `  ${a.remote}: ${a.kind === 'no-cluster' ? `answered, no cluster member (${a.detail})` : `no answer (${'detail' in a ? a.detail : ''})`}`).join('\n');
  throw new ExitError(
    `${db.name}: ${db.dbFile} is missing on this bootstrap central, which was a cluster member before (${wasMember}), ` +
      'and none of its peers (through the local stunnel client) says it is a member of a cluster:\n' +
      `${said}\n` +
      'Creating a new cluster here could leave the site with two clusters. Bring at least one other central up (its ' +
      'ovsdb-server and stunnel server; `ovn-deploy status --inventory ...` shows which) and apply again: this host then ' +
      'joins the existing cluster. Only if every member lost its data for good: delete the other database files of this ' +
      `host and ${appliedFile}, and apply again to create a new, empty cluster.`,
  );
}
