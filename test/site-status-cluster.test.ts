/** cluster/status parsing on output captured from a real 3-member OVN_Northbound cluster (ovsdb-server on loopback). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterStatusParseError, parseClusterStatus } from '../src/health/cluster-status.js';

const fixture = (name: string): string => readFileSync(path.join(import.meta.dirname, 'fixtures', 'cluster-status', name), 'utf8');

describe('parseClusterStatus', () => {
  it('reads the leader of a healthy 3-member cluster', () => {
    const s = parseClusterStatus(fixture('nb-3-a.txt'));
    expect(s).toMatchObject({
      name: 'OVN_Northbound',
      clusterId: '2328',
      clusterUuid: '23289c3f-b214-4d1b-a94d-2ab6a8b9089d',
      serverId: '8c74',
      address: 'tcp:127.0.0.1:47641',
      status: 'cluster member',
      role: 'leader',
      term: 1,
      leader: '8c74',
      vote: '8c74',
      electionTimerMs: 1000,
    });
    expect(s.servers.map((m) => [m.sid, m.address, m.self, m.connected])).toEqual([
      ['321c', 'tcp:127.0.0.1:47642', false, true],
      ['8c74', 'tcp:127.0.0.1:47641', true, true],
      ['9c4d', 'tcp:127.0.0.1:47643', false, true],
    ]);
    expect(s.servers[0]?.lastMsgMs).toBe(113);
    expect(s.connections).toHaveLength(4);
  });

  it('reads a follower: leader by id, vote unknown, members without "last msg"', () => {
    const s = parseClusterStatus(fixture('nb-3-b.txt'));
    expect(s.role).toBe('follower');
    expect(s.leader).toBe('8c74');
    expect(s.vote).toBeUndefined();
    expect(s.servers.find((m) => m.sid === '9c4d')).toMatchObject({ connected: true });
    expect(s.servers.find((m) => m.sid === '9c4d')?.lastMsgMs).toBeUndefined();
  });

  it('after the leader died: the new leader sees the old one disconnected', () => {
    const s = parseClusterStatus(fixture('nb-leader-down-b.txt'));
    expect(s).toMatchObject({ role: 'leader', term: 2, leader: '321c' });
    const dead = s.servers.find((m) => m.sid === '8c74');
    expect(dead).toMatchObject({ connected: false, lastMsgMs: 4131 });
    expect(s.servers.find((m) => m.sid === '9c4d')?.connected).toBe(true);
    // "(->0000)": an outgoing session still trying to connect.
    expect(s.connections[0]).toEqual({ sid: '0000', incoming: false, connected: false });
    const follower = parseClusterStatus(fixture('nb-leader-down-c.txt'));
    expect(follower).toMatchObject({ role: 'follower', leader: '321c', vote: '321c', term: 2 });
  });

  it('a candidate without a leader and a server leaving the cluster', () => {
    const cand = parseClusterStatus(fixture('nb-candidate-b.txt'));
    expect(cand).toMatchObject({ role: 'candidate', leader: undefined, term: 5, status: 'disconnected from the cluster (election timeout)' });
    expect(cand.servers).toHaveLength(2);
    const leaving = parseClusterStatus(fixture('nb-left-c.txt'));
    expect(leaving.status).toBe('leaving cluster');
    expect(leaving.leader).toBeUndefined();
  });

  it('a site central (RAFT over stunnel) whose peer host is down: the known peer id in "(->82b9)" is not connected', () => {
    // Captured from a deployed 3-central test site (containers) with central2 stopped.
    const s = parseClusterStatus(fixture('sb-site-member-down.txt'));
    expect(s).toMatchObject({ name: 'OVN_Southbound', role: 'leader', leader: 'e742', address: 'tcp:127.167.43.10:16644' });
    expect(s.servers.map((m) => [m.sid, m.connected])).toEqual([
      ['b3c3', true],
      ['e742', true],
      ['82b9', false],
    ]);
    expect(s.connections[0]).toEqual({ sid: '82b9', incoming: false, connected: false });
  });

  it('refuses output that is not cluster/status', () => {
    expect(() => parseClusterStatus('ovsdb-server: OVN_Northbound: not a clustered database\n')).toThrow(ClusterStatusParseError);
    const broken = fixture('nb-3-a.txt').replace(/^Term: 1$/m, 'Term: x');
    expect(() => parseClusterStatus(broken)).toThrow(/Term/);
  });
});
