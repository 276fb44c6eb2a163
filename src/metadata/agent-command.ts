/**
 * How the own supervisor starts the metadata agent of a bundle. The bundle names the agent the
 * way systemd runs it (the distribution's script, or `podman run` of the role's image); the own
 * supervisor proves a pid is its service by argv[0], so what it runs keeps a stable argv[0]:
 * - the script runs through its interpreter explicitly (a script's argv[0] would be the
 *   interpreter anyway), with the agent's process retitling disabled;
 * - podman runs under a small shell parent that gives a private mount namespace without
 *   cgroups (`ip netns exec` mounts a fresh /sys) the host's cgroup hierarchies first, and
 *   podman gets the podman settings of apply's environment.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NETNS_DIR_SHARED, PODMAN_BINARY } from '../render/metadata-runtime.js';
import { podmanEnv } from '../packaging/podman.js';

export const AGENT_PROGRAM = 'neutron-ovn-metadata-agent';

/**
 * Runs the agent script in this interpreter after two adjustments:
 * - It first joins the mount namespace of its parent (its supervisor's), keeping its network
 *   namespace. The agent makes ovnmeta-<uuid> by bind-mounting a namespace file under /run/netns;
 *   from a private mount namespace (`ip netns exec` makes one, slave to the host's) that mount
 *   never reaches the host and the namespace is unusable ("Peer netns reference is invalid").
 *   The own supervisor starts it directly, so this is a no-op there, and stays one if anything
 *   between them unshares the mount namespace. (A sandbox worker's supervisor is itself in such
 *   a private namespace: there `up` makes ovnmeta-<uuid> beforehand and keeps it, see
 *   ensureOvnmetaKeeper, so the agent never has to.)
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

/**
 * When no cgroup file system is mounted in this mount namespace (`ip netns exec` mounts a fresh
 * /sys), mounts the hierarchies this process belongs to (/proc/self/cgroup), as the host has them:
 * runc needs them to create a container, and to exec into one (`podman healthcheck run`). Where
 * cgroups are mounted (any real host) it does nothing.
 */
const CGROUP_MOUNTS = [
  "if ! grep -qE ' - cgroup2? ' /proc/self/mountinfo; then",
  "  v1=$(cut -d: -f2 /proc/self/cgroup | grep -v '^$')",
  '  if [ -n "$v1" ]; then',
  '    mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup || exit 1',
  '    for c in $v1; do',
  '      d=/sys/fs/cgroup/${c#name=}; mkdir -p "$d"',
  '      case $c in name=*) o=none,$c ;; *) o=$c ;; esac',
  '      mount -t cgroup -o "$o" cgroup "$d" || exit 1',
  '    done',
  "    if grep -q '^0::' /proc/self/cgroup; then mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified; fi",
  '  else',
  '    mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 1',
  '  fi',
  'fi',
];

const SHELL = '/bin/sh';

/** How long `podman stop` lets the agent exit by itself before it kills the container (the unit's ExecStop= too). */
export const PODMAN_STOP_TIME_S = 10;

/**
 * PODMAN_LAUNCHER after its mounts: runs "$@" (podman) as its child, passing on the signals the
 * supervisor sends, and exits as it did; $1 is the container's name, before the podman command.
 * On SIGTERM it also runs `podman stop` of that container, as the systemd unit's ExecStop= does:
 * the container gets its stop signal and SIGKILL after PODMAN_STOP_TIME_S, so `podman run --rm`
 * sees it exit and removes it within the supervisor's grace, however long the agent would take
 * by itself. A shell, not Python: nothing else on the machine should look like the agent's
 * interpreter.
 */
export const PODMAN_FOREGROUND = [
  'name=$1',
  'shift',
  '"$@" &',
  'child=$!',
  `trap '[ -n "$name" ] && "$1" stop --time ${PODMAN_STOP_TIME_S} "$name" >/dev/null 2>&1 & kill -TERM $child' TERM`,
  "for s in INT HUP; do trap \"kill -$s $child\" $s; done",
  'code=0',
  // wait returns early when a trapped signal arrives: wait again while the child lives.
  'while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done',
  // ...and for a `podman stop` still finishing.
  'wait',
  'exit "$code"',
].join('\n');

/** Before PODMAN_FOREGROUND: /run/netns a shared mount point (NETNS_DIR_SHARED) and CGROUP_MOUNTS. */
export const PODMAN_LAUNCHER = [...NETNS_DIR_SHARED.map((c) => `${c} || exit 1`), ...CGROUP_MOUNTS, PODMAN_FOREGROUND].join('\n');

/** A podman query (`healthcheck run`, `inspect`) from where the launcher ran: its cgroups, nothing else changed. */
const PODMAN_QUERY = [...CGROUP_MOUNTS, 'exec "$@"'].join('\n');

/** argv (and env) of `podman ARGS` as a health check runs it, in whatever namespace the host is. */
export function podmanQueryCommand(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { argv: string[]; env: Record<string, string> } {
  return { argv: [SHELL, '-c', PODMAN_QUERY, 'ovn-deploy-podman', PODMAN_BINARY, ...args], env: podmanEnv(env) };
}


/**
 * podman's stop grace, as the container unit's TimeoutStopSec=30 gives it under systemd: longer
 * than `podman stop --time` (the launcher's), since `podman run --rm` still removes the container
 * after it exits. A SIGKILL of the podman client before that leaves the container behind.
 */
export const PODMAN_STOP_GRACE_MS = 20_000;

/**
 * What the own supervisor runs for a bundle service's argv (and the env it adds): the metadata
 * agent's script through its interpreter, podman under PODMAN_LAUNCHER; anything else as it is.
 */
export function ownSupervisorCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): { argv: string[]; env: Record<string, string>; stopGraceMs?: number } {
  const [program, ...args] = argv;
  if (program === PODMAN_BINARY) {
    const name = argv[argv.indexOf('--name') + 1];
    const container = argv.includes('--name') && name !== undefined ? name : '';
    return { argv: [SHELL, '-c', PODMAN_LAUNCHER, 'ovn-deploy-podman', container, ...argv], env: podmanEnv(env), stopGraceMs: PODMAN_STOP_GRACE_MS };
  }
  if (program !== undefined && path.basename(program) === AGENT_PROGRAM) {
    return { argv: [...agentCommandInHostMounts([path.dirname(program)]), ...args], env: {} };
  }
  return { argv: [...argv], env: {} };
}

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

