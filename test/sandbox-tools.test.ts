import { describe, expect, it } from 'vitest';
import { RecordingRunner } from '../src/runner.js';
import { Ip, parseAddrs, parseLinks, parseNetnsList } from '../src/tools/netns.js';
import { decodeOvsdbValue, parseOvsdbTable, str, strs } from '../src/tools/ovsdb-json.js';
import { Nbctl } from '../src/tools/ovn.js';
import { Vsctl } from '../src/tools/ovs.js';

describe('ovsdb --format=json tables', () => {
  it('decodes uuids, sets, maps and optional values', () => {
    const rows = parseOvsdbTable(
      '{"data":[["vm2",["uuid","98736c10"],true,["map",[["iface-id","vm2"]]]],["net2-router1",["set",[]],false,["map",[]]],["x",["set",["a","b"]],false,["map",[]]]],"headings":["logical_port","chassis","up","external_ids"]}',
    );
    expect(rows[0]).toEqual({ logical_port: 'vm2', chassis: '98736c10', up: true, external_ids: { 'iface-id': 'vm2' } });
    expect(rows[1]?.chassis).toBeNull();
    expect(strs(rows[2] ?? {}, 'chassis')).toEqual(['a', 'b']);
    expect(str(rows[1] ?? {}, 'chassis')).toBe('');
    expect(decodeOvsdbValue(['named-uuid', 'row1'])).toBe('row1');
    expect(() => parseOvsdbTable('{"x":1}')).toThrow(/not an OVSDB table/);
  });
});

describe('ip JSON parsing', () => {
  it('reads links, addresses and namespaces', () => {
    expect(parseLinks('[{"ifindex":2,"ifname":"vm1","flags":["NO-CARRIER","UP"],"mtu":1500,"operstate":"DOWN","address":"40:44:00:00:00:01"}]')).toEqual([
      { ifname: 'vm1', flags: ['NO-CARRIER', 'UP'], mtu: 1500, operstate: 'DOWN', address: '40:44:00:00:00:01' },
    ]);
    expect(parseAddrs('[{"ifname":"br-phy","addr_info":[{"local":"10.1.2.11","prefixlen":24}]}]')).toEqual([{ ifname: 'br-phy', addresses: ['10.1.2.11/24'] }]);
    expect(parseNetnsList('[{"name":"odab12-ul"},{"name":"x","id":0}]')).toEqual(['odab12-ul', 'x']);
    expect(parseNetnsList('')).toEqual([]);
  });
});

describe('tool wrappers (mocked runner)', () => {
  it('ip uses -n for a namespace and creates a namespace only when missing', async () => {
    const runner = new RecordingRunner();
    const ip = new Ip(runner);
    expect(await ip.ensureNetns('odab12-w1', ['odab12-w1'])).toBe(false);
    expect(await ip.ensureNetns('odab12-w2', [])).toBe(true);
    expect(runner.calls.map((c) => c.argv.join(' '))).toEqual(['ip -n odab12-w1 link set dev lo up', 'ip netns add odab12-w2', 'ip -n odab12-w2 link set dev lo up']);
  });

  it('ovs-vsctl gets --no-wait unless asked to wait, and a timeout either way', async () => {
    const runner = new RecordingRunner();
    await new Vsctl(runner, '/s/db.sock').run(['add-br', 'br-int']);
    await new Vsctl(runner, '/s/db.sock').run(['add-port', 'br-int', 'vm1'], { wait: true, timeoutSec: 7 });
    expect(runner.calls[0]?.argv).toEqual(['ovs-vsctl', '--db=unix:/s/db.sock', '--timeout=10', '--no-wait', 'add-br', 'br-int']);
    expect(runner.calls[1]?.argv).toEqual(['ovs-vsctl', '--db=unix:/s/db.sock', '--timeout=7', 'add-port', 'br-int', 'vm1']);
    expect(runner.calls[1]?.opts.timeoutMs).toBeGreaterThan(7000);
  });

  it('retries ovn-nbctl while the database is not accepting yet, then succeeds', async () => {
    let n = 0;
    const runner = new RecordingRunner(() => (++n < 3 ? { exitCode: 1, stderr: 'ovn-nbctl: unix:/x.sock: database connection failed (No such file or directory)' } : { stdout: 'ok' }));
    const r = await new Nbctl(runner, 'unix:/x.sock').run(['show'], { mutates: false });
    expect(r.stdout).toBe('ok');
    expect(runner.calls).toHaveLength(3);
  });

  it('does not retry a real error', async () => {
    const runner = new RecordingRunner(() => ({ exitCode: 1, stderr: 'ovn-nbctl: network1: a logical switch with this name already exists' }));
    await expect(new Nbctl(runner, 'unix:/x.sock').run(['ls-add', 'network1'])).rejects.toThrow(/already exists/);
    expect(runner.calls).toHaveLength(1);
  });
});
