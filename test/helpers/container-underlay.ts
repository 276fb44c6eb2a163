/**
 * An underlay for containers of the image tests: a hub namespace holding a Linux bridge and one
 * namespace per node, each joined to the bridge by a veth (MTU 1600, room for Geneve around
 * 1500-byte frames). Containers then run with `--network ns:/run/netns/NAME`. Everything carries
 * the caller's random prefix; `remove` deletes only the namespaces made here (their veths go with
 * them).
 */
import { randomInt } from 'node:crypto';
import { ZxRunner } from '../../src/runner.js';

export const UNDERLAY_MTU = 1600;

export interface UnderlayNode {
  name: string;
  netns: string;
  /** The veth end inside the node's namespace. */
  dev: string;
  ip: string;
}

export class ContainerUnderlay {
  readonly nodes: UnderlayNode[] = [];
  private readonly made: string[] = [];
  private readonly runner = new ZxRunner();
  readonly hub: string;
  /** 10.X.Y.0/24, random so that parallel runs never share addresses. */
  readonly subnet = `10.${randomInt(100, 200)}.${randomInt(0, 250)}`;

  constructor(readonly prefix: string) {
    this.hub = `${prefix}-hub`;
  }

  private ip(args: string[], netns?: string) {
    return this.runner.run(['ip', ...(netns === undefined ? [] : ['-n', netns]), ...args], { timeoutMs: 10_000 });
  }

  private async addNetns(name: string): Promise<void> {
    this.made.push(name);
    await this.ip(['netns', 'add', name]);
    await this.ip(['link', 'set', 'lo', 'up'], name);
  }

  async create(names: readonly string[]): Promise<UnderlayNode[]> {
    await this.addNetns(this.hub);
    await this.ip(['link', 'add', 'br0', 'mtu', String(UNDERLAY_MTU), 'type', 'bridge'], this.hub);
    await this.ip(['link', 'set', 'br0', 'up'], this.hub);
    for (const [i, name] of names.entries()) {
      const netns = `${this.prefix}-${name}`;
      await this.addNetns(netns);
      const dev = `u${i}`;
      await this.ip(['link', 'add', `h${i}`, 'mtu', String(UNDERLAY_MTU), 'type', 'veth', 'peer', 'name', dev, 'netns', netns, 'mtu', String(UNDERLAY_MTU)], this.hub);
      await this.ip(['link', 'set', `h${i}`, 'master', 'br0', 'up'], this.hub);
      await this.ip(['link', 'set', dev, 'up'], netns);
      this.nodes.push({ name, netns, dev, ip: `${this.subnet}.${i + 1}` });
    }
    return this.nodes;
  }

  node(name: string): UnderlayNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no underlay node ${name}`);
    return n;
  }

  /**
   * Puts the node's address on its veth. A node whose datapath is userspace (its veth goes into
   * br-phy) gets it on br-phy instead; its peers then need their TCP checksummed in software,
   * since the userspace datapath hands the frames on as they came (offloaded, unfinished).
   */
  async addressOnVeth(name: string, softwareChecksums: boolean): Promise<void> {
    const n = this.node(name);
    await this.ip(['addr', 'add', `${n.ip}/24`, 'dev', n.dev], n.netns);
    if (softwareChecksums) await this.runner.run(['ethtool', '-K', n.dev, 'tx', 'off'], { netns: n.netns, timeoutMs: 10_000 });
  }

  async remove(): Promise<void> {
    for (const ns of this.made.reverse()) await this.runner.run(['ip', 'netns', 'del', ns], { allowFailure: true, timeoutMs: 10_000 });
    this.made.length = 0;
  }
}
