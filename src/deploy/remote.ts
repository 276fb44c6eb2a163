/**
 * What deploy and status need from a host reached over SSH. `src/tools/ssh.ts` implements it with
 * the system OpenSSH client (ssh-connect.ts adapts it); unit tests use a scripted double.
 */
import path from 'node:path';
import type { Host } from '../inventory/types.js';
import type { RunResult } from '../runner.js';
import { hostPaths } from '../paths.js';

export interface RemoteRunOptions {
  input?: string;
  /** Stdin streamed from this local file (binary-safe); overrides `input`. */
  inputFile?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
}

export interface RemoteHost {
  readonly name: string;
  /** Resolves with undefined when the host answers, else the reason it does not (no throw). */
  unreachableReason(): Promise<string | undefined>;
  run(argv: readonly string[], opts?: RemoteRunOptions): Promise<RunResult>;
  /** Copies a local directory to `remoteDir`, replacing what was there in one step. */
  pushDirectory(localDir: string, remoteDir: string): Promise<void>;
  /** Ships the ovn-deploy tool unless the host already has this version; true when it was copied. */
  ensureTool(): Promise<boolean>;
  /**
   * Sends the admin's copy of a container image unless the host has that image ID: the archive's
   * path on the host (for apply's --image-archive), or undefined when nothing was sent.
   */
  shipImage?(ref: string): Promise<string | undefined>;
  close(): Promise<void>;
}

export type Connect = (host: Host) => RemoteHost;

/** The SSH target of an inventory host: `ssh.host` or its first address, user root, port 22. */
export function sshTarget(host: Host): { name: string; user: string; host: string; port: number } {
  return {
    name: host.name,
    user: host.ssh?.user ?? 'root',
    host: host.ssh?.host ?? host.addresses[0] ?? host.name,
    port: host.ssh?.port ?? 22,
  };
}

/** Paths on the remote host (always POSIX, whatever the admin machine is). */
export const remote = {
  bundleDir: hostPaths().bundle,
  /** The CLI entry point of the tool deploy ships to the host. */
  cli: path.posix.join(hostPaths().toolCurrent, 'dist', 'cli.js'),
};

/** Shipped next to manifest.json: the CA that signed the bundle, pinned by a fresh host's first apply. */
export const TRUST_CA_FILE = 'trust-ca.pem';

/** `apply` as deploy and status run it on a host (the shipped tool, the pushed bundle, JSON report). */
export function remoteApplyArgv(extra: string[] = []): string[] {
  return ['node', remote.cli, 'apply', '--bundle', remote.bundleDir, '--trust-ca', path.posix.join(remote.bundleDir, TRUST_CA_FILE), '--json', ...extra];
}
