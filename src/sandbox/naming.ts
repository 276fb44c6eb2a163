/**
 * Sandbox identity and global names. Namespace and interface names are global on a machine, so
 * every one the sandbox creates starts with `od<id>`, where the id is derived from the state
 * directory: two sandboxes with different `--dir` never collide, the same `--dir` always finds
 * its own objects again, and `down` can recognise (and only touch) what is its own.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import path from 'node:path';

/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;
/** Workers a sandbox may have (here rather than in plan.ts so `up --help` loads no planner). */
export const MIN_WORKERS = 1;
export const MAX_WORKERS = 16;
/** `status` exit codes (here so that `status` with no sandbox answers without loading the collector). */
export const STATUS_EXIT = { healthy: 0, unhealthy: 1, noSandbox: 3 } as const;

/**
 * The canonical form of a state directory that may not exist yet: the nearest existing ancestor
 * resolved through symlinks, plus the rest. `up` before and after creating the directory, and
 * `down` through a symlink, all get the same id.
 */
export function canonicalDir(dir: string): string {
  let head = path.resolve(dir);
  const tail: string[] = [];
  for (;;) {
    try {
      return path.join(realpathSync(head), ...tail.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return path.resolve(dir);
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

/** Four hex digits of sha256(canonical state dir). */
export function sandboxId(stateDir: string): string {
  return createHash('sha256').update(canonicalDir(stateDir)).digest('hex').slice(0, 4);
}

export interface SandboxNames {
  prefix: string;
  underlayNetns: string;
  /** Linux bridge of the underlay, inside the underlay namespace. */
  underlayBridge: string;
  nodeNetns(short: string): string;
  vmNetns(vm: string): string;
  /** The node's end of its underlay veth (inside the node's namespace). */
  nodeVeth(short: string): string;
  /** The underlay's end of a node's veth (inside the underlay namespace, on the bridge). */
  underlayVeth(short: string): string;
  /** True for a namespace or interface name this sandbox may have created (`down` and `up`'s leftovers remove only those). */
  owns(name: string): boolean;
}

export function sandboxNames(id: string): SandboxNames {
  const prefix = `od${id}`;
  return {
    prefix,
    underlayNetns: `${prefix}-ul`,
    underlayBridge: `${prefix}-br`,
    nodeNetns: (short) => `${prefix}-${short}`,
    vmNetns: (vm) => `${prefix}-${vm}`,
    nodeVeth: (short) => `${prefix}-${short}`,
    underlayVeth: (short) => `${prefix}-${short}p`,
    owns: (name) => name.startsWith(`${prefix}-`),
  };
}

/**
 * A private /24 for the underlay, chosen from the id. These addresses only ever exist inside the
 * sandbox's own namespaces, so a clash with the host's networks is harmless; a per-sandbox subnet
 * just keeps captures and logs of two sandboxes apart.
 */
export function underlaySubnet(id: string): { base: string; prefixLen: 24 } {
  const n = Number.parseInt(id, 16);
  const a = 128 + ((n >> 8) & 0x7f);
  const b = n & 0xff;
  return { base: `10.${a}.${b}`, prefixLen: 24 };
}
