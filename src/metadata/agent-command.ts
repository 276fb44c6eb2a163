/**
 * How to start neutron-ovn-metadata-agent. It is a Python script: run through its interpreter
 * explicitly, so the process's argv[0] is a program the own supervisor can recognise (it proves
 * a pid is its service by argv[0], and a script's argv[0] would be the interpreter anyway).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const AGENT_PROGRAM = 'neutron-ovn-metadata-agent';

/**
 * Runs the agent script in this interpreter after two adjustments, for the sandbox only:
 * - `ip netns exec` puts its command in a private mount namespace (mounts slave to the host's).
 *   The agent creates ovnmeta-<uuid> by bind-mounting a namespace file under /run/netns: done
 *   from there, the mount never reaches the host and the namespace is unusable ("Peer netns
 *   reference is invalid"). So it first rejoins the mount namespace of its parent (the
 *   supervisor: the host's), keeping the worker's network namespace.
 * - The agent renames its process (setproctitle) to "neutron-ovn-metadata-agent (...)": the own
 *   supervisor proves a pid is its service by argv[0], so the title is left as started.
 * argv: [interpreter, -c, this, script, args...].
 */
export const SANDBOX_LAUNCHER = [
  'import ctypes, os, runpy, sys',
  "fd = os.open('/proc/%d/ns/mnt' % os.getppid(), os.O_RDONLY)",
  "if ctypes.CDLL(None, use_errno=True).setns(fd, 0x00020000) != 0: raise OSError(ctypes.get_errno(), 'setns(CLONE_NEWNS) into the parent mount namespace')",
  'os.close(fd)',
  'import setproctitle',
  // getproctitle() alone already rewrites the argv area (joined by spaces): stub both.
  'setproctitle.setproctitle = lambda *a, **k: None',
  "setproctitle.getproctitle = lambda: ' '.join(sys.argv)",
  'sys.argv = sys.argv[1:]',
  "runpy.run_path(sys.argv[0], run_name='__main__')",
].join('\n');
const SEARCH = ['/usr/bin', '/usr/local/bin', '/usr/sbin'];

/** Pure: the interpreter argv from a script's first line (`#!/usr/bin/python3`, `#!/usr/bin/env python3`). */
export function interpreterOf(firstLine: string): string[] | undefined {
  const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(firstLine);
  if (m?.[1] === undefined) return undefined;
  if (path.basename(m[1]) === 'env' && m[2] !== undefined) return [m[2]];
  return [m[1]];
}

/** argv prefix that runs the agent: `[interpreter, /path/to/script]`, or the bare name when not installed. */
export function agentCommand(dirs: readonly string[] = [...SEARCH, ...(process.env.PATH ?? '').split(':').filter((d) => d !== '')]): string[] {
  for (const d of dirs) {
    const file = path.join(d, AGENT_PROGRAM);
    let head: string;
    try {
      head = readFileSync(file, 'utf8').slice(0, 200).split('\n')[0] ?? '';
    } catch {
      continue;
    }
    const interp = interpreterOf(head);
    return interp === undefined ? [file] : [...interp, file];
  }
  return [AGENT_PROGRAM];
}

/**
 * argv that runs the agent inside `ip netns exec` but in the host's mount namespace (see
 * SANDBOX_LAUNCHER); argv[0] stays the interpreter.
 */
export function agentCommandInHostMounts(dirs?: readonly string[]): string[] {
  const cmd = dirs === undefined ? agentCommand() : agentCommand(dirs);
  const [interp, ...rest] = cmd;
  if (interp === undefined || rest.length === 0 || !/python/.test(path.basename(interp))) return cmd;
  return [interp, '-c', SANDBOX_LAUNCHER, ...rest];
}

