/**
 * A small site network for TLS tests: one network namespace per host, all on one bridge that
 * lives inside the first ("hub") namespace, so nothing is added to the machine's own network.
 * Names carry the test's random tag; destroy() ends only processes inside these namespaces
 * (by pid) and deletes only these namespaces.
 */
import { Ip, pidsInNetns } from '../../src/tools/netns.js';
import type { Runner } from '../../src/runner.js';

export interface NetnsHost {
  netns: string;
  /** Addresses on the site network (the first is the host's primary address), /24. */
  addresses: string[];
}

export interface TlsNetwork {
  hosts: NetnsHost[];
  destroy(): Promise<void>;
}

/**
 * `hosts[0]` holds the bridge (its addresses on the bridge itself); every other host gets a veth
 * pair whose one end is a bridge port in the hub and whose other end is its `eth0`.
 */
export async function createTlsNetwork(runner: Runner, hosts: NetnsHost[]): Promise<TlsNetwork> {
  const ip = new Ip(runner);
  const created: string[] = [];
  const network: TlsNetwork = {
    hosts,
    destroy: async () => {
      for (let round = 0; round < 20; round++) {
        const pids = pidsInNetns(created);
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const ns of created) await ip.deleteNetns(ns);
    },
  };
  const run = (argv: string[]) => runner.run(argv, { timeoutMs: 10_000 });
  try {
    for (const h of hosts) {
      await run(['ip', 'netns', 'add', h.netns]);
      created.push(h.netns);
      await run(['ip', '-n', h.netns, 'link', 'set', 'lo', 'up']);
    }
    const [hub, ...spokes] = hosts;
    if (hub === undefined) throw new Error('createTlsNetwork: no hosts');
    await run(['ip', '-n', hub.netns, 'link', 'add', 'br0', 'type', 'bridge']);
    await run(['ip', '-n', hub.netns, 'link', 'set', 'br0', 'up']);
    for (const a of hub.addresses) await run(['ip', '-n', hub.netns, 'addr', 'add', `${a}/24`, 'dev', 'br0']);
    for (const [i, h] of spokes.entries()) {
      const port = `p${i}`;
      await run(['ip', '-n', hub.netns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
      await run(['ip', '-n', hub.netns, 'link', 'set', port, 'master', 'br0', 'up']);
      for (const a of h.addresses) await run(['ip', '-n', h.netns, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
      await run(['ip', '-n', h.netns, 'link', 'set', 'eth0', 'up']);
    }
  } catch (err) {
    await network.destroy();
    throw err;
  }
  return network;
}

/** Waits until something accepts TCP connections on host:port inside `netns` (bash's /dev/tcp). */
export async function waitForNetnsListener(runner: Runner, netns: string, host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await runner.run(['bash', '-c', 'exec 3<>"/dev/tcp/$1/$2"', 'probe', host, String(port)], { netns, allowFailure: true, timeoutMs: 5_000, mutates: false });
    if (r.exitCode === 0) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} in ${netns} after ${timeoutMs} ms: ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
