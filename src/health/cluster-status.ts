/**
 * Parser of `ovn-appctl -t <ctl> cluster/status <DB>` (OVS 3.1 / OVN 23.03 text output). Pure, so it
 * is tested on output captured from real clusters (test/fixtures/cluster-status/).
 *
 * A member's connection state comes from the `Connections:` line, the only place the server says
 * whether a peer's session is up: each entry is `<-SID` (incoming) or `->SID` (outgoing), in
 * parentheses while not connected, SID `0000` while the peer's id is still unknown. "last msg N ms
 * ago" only says when the last message arrived, which a follower may never record for a peer.
 */

export interface RaftServer {
  /** Short server id (4 hex digits), as the output prints it. */
  sid: string;
  /** RAFT address, e.g. `tcp:127.45.3.9:16643`. */
  address: string;
  self: boolean;
  /** This server holds a connected session with the member (always true for itself). */
  connected: boolean;
  /** "last msg N ms ago", when printed. */
  lastMsgMs?: number;
}

export interface RaftStatus {
  name: string;
  /** Short cluster id and the full UUID. */
  clusterId: string;
  clusterUuid: string;
  serverId: string;
  serverUuid: string;
  address: string;
  /** `cluster member`, `joining cluster`, `leaving cluster`, `left cluster`, `disconnected from the cluster (...)`. */
  status: string;
  role: 'leader' | 'follower' | 'candidate' | string;
  term: number;
  /** Short id of the leader (`self` resolved to this server's id), or undefined when unknown. */
  leader: string | undefined;
  /** Short id voted for, or undefined (`unknown`). */
  vote: string | undefined;
  electionTimerMs: number | undefined;
  connections: { sid: string; incoming: boolean; connected: boolean }[];
  servers: RaftServer[];
}

export class ClusterStatusParseError extends Error {
  constructor(message: string) {
    super(`cannot read cluster/status output: ${message}`);
    this.name = 'ClusterStatusParseError';
  }
}

/** `2328 (23289c3f-...)` -> ['2328', '23289c3f-...']. */
function idPair(value: string, field: string): [string, string] {
  const m = /^([0-9a-f]+) \(([0-9a-f-]+)\)$/.exec(value);
  if (m === null) throw new ClusterStatusParseError(`${field}: expected "SID (UUID)", got ${JSON.stringify(value)}`);
  return [m[1] as string, m[2] as string];
}

const CONNECTION = /^(\()?(<-|->)([0-9a-f]+)\)?$/;
// `    321c (321c at tcp:127.0.0.1:47642) (self) next_index=5 match_index=4 last msg 0 ms ago`
const SERVER = /^\s+([0-9a-f]+) \(([0-9a-f]+) at (\S+)\)(.*)$/;

export function parseClusterStatus(text: string): RaftStatus {
  const fields = new Map<string, string>();
  const serverLines: string[] = [];
  let inServers = false;
  for (const line of text.split('\n')) {
    if (inServers) {
      if (/^\s+\S/.test(line)) {
        serverLines.push(line);
        continue;
      }
      inServers = false;
    }
    if (line.startsWith('Servers:')) {
      inServers = true;
      continue;
    }
    const m = /^([A-Z][A-Za-z ]*): ?(.*)$/.exec(line);
    if (m !== null && !fields.has(m[1] as string)) fields.set(m[1] as string, (m[2] as string).trim());
  }
  const need = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined) throw new ClusterStatusParseError(`no "${key}:" line`);
    return v;
  };
  const [clusterId, clusterUuid] = idPair(need('Cluster ID'), 'Cluster ID');
  const [serverId, serverUuid] = idPair(need('Server ID'), 'Server ID');
  const term = Number(need('Term'));
  if (!Number.isInteger(term)) throw new ClusterStatusParseError(`Term: expected a number, got ${JSON.stringify(fields.get('Term'))}`);
  const who = (v: string | undefined): string | undefined => (v === undefined || v === 'unknown' ? undefined : v === 'self' ? serverId : v);

  const connections = (fields.get('Connections') ?? '')
    .split(/\s+/)
    .filter((t) => t !== '')
    .map((t) => {
      const c = CONNECTION.exec(t);
      if (c === null) throw new ClusterStatusParseError(`Connections: unexpected entry ${JSON.stringify(t)}`);
      return { sid: c[3] as string, incoming: c[2] === '<-', connected: c[1] === undefined };
    });

  const servers = serverLines.map((line): RaftServer => {
    const s = SERVER.exec(line);
    if (s === null) throw new ClusterStatusParseError(`Servers: unexpected line ${JSON.stringify(line.trim())}`);
    const sid = s[1] as string;
    const rest = s[4] as string;
    const self = /\(self\)/.test(rest);
    const last = /last msg (\d+) ms ago/.exec(rest);
    return {
      sid,
      address: s[3] as string,
      self,
      connected: self || connections.some((c) => c.sid === sid && c.connected),
      ...(last === null ? {} : { lastMsgMs: Number(last[1]) }),
    };
  });
  if (servers.length === 0) throw new ClusterStatusParseError('no "Servers:" list');

  const timer = fields.get('Election timer');
  return {
    name: need('Name'),
    clusterId,
    clusterUuid,
    serverId,
    serverUuid,
    address: need('Address'),
    status: need('Status'),
    role: need('Role'),
    term,
    leader: who(fields.get('Leader')),
    vote: who(fields.get('Vote')),
    electionTimerMs: timer === undefined || !/^\d+$/.test(timer) ? undefined : Number(timer),
    connections,
    servers,
  };
}

/**
 * The health verdict for one member: in the cluster with a known leader. A text the parser cannot
 * read (e.g. a joining server, whose cluster id is "not yet known") is not healthy.
 */
export function memberVerdict(text: string): { ok: boolean; detail: string } {
  let s: RaftStatus;
  try {
    s = parseClusterStatus(text);
  } catch (err) {
    if (err instanceof ClusterStatusParseError) return { ok: false, detail: err.message };
    throw err;
  }
  // The parser resolves `self`; the detail keeps the server's own word for it.
  const leader = s.leader === undefined ? 'unknown' : s.leader === s.serverId ? 'self' : s.leader;
  return { ok: s.status === 'cluster member' && s.leader !== undefined, detail: `status ${s.status}, role ${s.role}, leader ${leader}, term ${s.term}` };
}
