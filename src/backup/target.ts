/**
 * The centrals `backup` and `restore` work on: the sandbox's (this machine, the host's root
 * directory) or a site's (over SSH, as `deploy`). Per central: a runner for ovsdb-client and
 * ovs-appctl there, its host paths, and the two writes a restore needs on it (one transaction,
 * a disaster-recovery seed). Everything else is written once in take.ts and restore.ts.
 */
import { ExitError } from '../errors.js';
import { loadInventory } from '../inventory/index.js';
import type { Host, Inventory } from '../inventory/types.js';
import { hostPaths, type HostPaths } from '../paths.js';
import { ZxRunner, type Runner } from '../runner.js';
import { remote, type Connect, type RemoteHost } from '../deploy/remote.js';
import { sshConnector, type SshSettings } from '../deploy/ssh-connect.js';
import { transact } from '../tools/ovsdb-rpc.js';

export type DbKey = 'nb' | 'sb';
export const DB_NAME: Record<DbKey, 'OVN_Northbound' | 'OVN_Southbound'> = { nb: 'OVN_Northbound', sb: 'OVN_Southbound' };

export interface DbCentral {
  name: string;
  runner: Runner;
  paths: HostPaths;
  /** The central's own ovsdb-server, as a remote of ovsdb-client run by `runner`. */
  remote(db: DbKey): string;
  /** One transaction on the central's own server (a follower forwards it to the leader). */
  transact(db: DbKey, ops: readonly unknown[]): Promise<void>;
  /** Whether the central holds a database file for `db` (it may not be running). */
  hasDbFile(db: DbKey): Promise<boolean>;
  /** Disaster recovery: puts a backup where the bootstrap central's apply creates the cluster from it (sites only). */
  placeSeed?(db: DbKey, content: Buffer): Promise<void>;
  removeSeed?(db: DbKey): Promise<void>;
}

export interface DbTarget {
  kind: 'sandbox' | 'site';
  description: string;
  centrals: DbCentral[];
  /** Site only: the workers (ovn-controller hosts), told to forget the SB cluster a disaster recovery replaces. */
  chassis?: { name: string; runner: Runner }[];
  /** Site only: what `restore` hands to `deploy` for a disaster recovery. */
  inventoryFile?: string;
  inventory?: Inventory;
  close(): Promise<void>;
}

const HOST_CMD_TIMEOUT_MS = 300_000;

export async function sandboxTarget(stateDir: string, runner: Runner = new ZxRunner()): Promise<DbTarget> {
  const { existingSandbox } = await import('../sandbox/existing.js');
  const { dir, site } = await existingSandbox(stateDir, runner);
  const c = site.central;
  const socket = (db: DbKey): string => c.paths.ovsdbSocket(c.name, db);
  return {
    kind: 'sandbox',
    description: `sandbox ${dir}`,
    centrals: [
      {
        name: c.name,
        // The central's sockets and control files are files of this machine: no namespace needed.
        runner,
        paths: c.paths,
        remote: (db) => `unix:${socket(db)}`,
        transact: async (db, ops) => {
          await transact(socket(db), DB_NAME[db], ops);
        },
        hasDbFile: async (db) => (await runner.run(['test', '-f', db === 'nb' ? c.paths.ovn.nbDb : c.paths.ovn.sbDb], { allowFailure: true, mutates: false })).exitCode === 0,
      },
    ],
    close: async () => undefined,
  };
}

export interface SiteTargetOptions {
  inventoryFile: string;
  ssh: Omit<SshSettings, 'shipTool'>;
  connect?: Connect;
}

/** A Runner whose commands run on the host. */
function remoteRunner(r: RemoteHost): Runner {
  return {
    run: (argv, opts = {}) =>
      r.run(argv, {
        ...(opts.input === undefined ? {} : { input: opts.input }),
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ...(opts.allowFailure === undefined ? {} : { allowFailure: opts.allowFailure }),
      }),
  };
}

export async function siteTarget(o: SiteTargetOptions): Promise<DbTarget> {
  const { inventory } = await loadInventory(o.inventoryFile);
  const connect = o.connect ?? sshConnector({ ...o.ssh, shipTool: true });
  const hp = hostPaths();
  const opened: RemoteHost[] = [];
  const central = (host: Host): DbCentral => {
    const r = connect(host);
    opened.push(r);
    let tool: Promise<boolean> | undefined;
    /** `ovn-deploy backup host ARGS` on the central (the tool shipped first when it lacks this version). */
    const hostCmd = async (args: string[], input: string): Promise<void> => {
      tool ??= r.ensureTool();
      await tool;
      const res = await r.run(['node', remote.cli, 'backup', 'host', ...args], { input, allowFailure: true, timeoutMs: HOST_CMD_TIMEOUT_MS });
      if (res.exitCode !== 0) {
        const tail = res.stderr.trim().split('\n').slice(-3).join('\n');
        throw new ExitError(`${host.name}: \`ovn-deploy backup host ${args.join(' ')}\` failed (exit ${res.exitCode})${tail === '' ? '' : `: ${tail}`}`, 1);
      }
    };
    const runner = remoteRunner(r);
    return {
      name: host.name,
      runner,
      paths: hp,
      remote: (db) => `unix:${hp.ovsdbSocket(host.name, db)}`,
      transact: (db, ops) => hostCmd(['transact', db], JSON.stringify(ops)),
      hasDbFile: async (db) => (await runner.run(['test', '-f', db === 'nb' ? hp.ovn.nbDb : hp.ovn.sbDb], { allowFailure: true })).exitCode === 0,
      // The seed travels as base64 text: the SSH seam carries strings.
      placeSeed: (db, content) => hostCmd(['seed', db], content.toString('base64')),
      removeSeed: (db) => hostCmd(['unseed', db], ''),
    };
  };
  return {
    kind: 'site',
    description: `site ${inventory.site} (${o.inventoryFile})`,
    centrals: inventory.hosts.filter((h) => h.roles.includes('central')).map(central),
    chassis: inventory.hosts
      .filter((h) => h.roles.includes('worker'))
      .map((h) => {
        const r = connect(h);
        opened.push(r);
        return { name: h.name, runner: remoteRunner(r) };
      }),
    inventoryFile: o.inventoryFile,
    inventory,
    close: async () => {
      await Promise.all(opened.map((r) => r.close().catch(() => undefined)));
    },
  };
}
