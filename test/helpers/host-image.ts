/**
 * The "fresh host" container image for the multi-host tests, built without a registry: a Debian
 * bookworm minbase rootfs (mmdebstrap) with sshd, iproute2, ping, python3 and this machine's node
 * binary, imported with podman. It has NO OVN/OVS/stunnel installed — `apply` installs them — but
 * keeps apt's lists and the pre-downloaded .debs of those packages, so that
 * `apt-get install -y ovn-central ovn-host openvswitch-switch stunnel4` (and, for the metadata agent,
 * `apt-get install -y neutron-ovn-metadata-agent haproxy` or, to run it as a container,
 * `apt-get install -y podman`) works inside a container that cannot reach a mirror. A nested podman also needs the /var/lib/containers that site-hosts.ts's `nestedPodman`
 * binds from this machine's file system. Cached under the checkout's gitignored .cache, keyed by its inputs;
 * podman runs with a private storage and containers.conf (runc, cgroupfs, file events, ulimits).
 * `ensureHostImage({ systemd: true })` gives the variant whose PID 1 is systemd (run it with
 * SYSTEMD_RUN_ARGS): the host kind on which `apply` uses its systemd backend. Both variants are
 * one rootfs (one mmdebstrap, ~60 s, per CI run instead of two) imported with two entrypoints: the
 * plain one has systemd's files, but PID 1 is sshd, so systemd never runs there and `apply`
 * (PID 1 and /run/systemd/system, as sd_booted) takes its own supervisor.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkoutCacheDir } from '../../src/paths.js';
import { ensureRootfs, type RootfsRecipe } from './rootfs.js';

/** Installed in the image: what a minimal server has, plus what the tests and `deploy` use. */
export const HOST_IMAGE_PACKAGES = ['openssh-server', 'iproute2', 'iputils-ping', 'procps', 'python3', 'ethtool', 'ca-certificates', 'libstdc++6'];
/** Downloaded (not installed) so that `apply` can install them offline. */
export const HOST_IMAGE_OFFLINE_PACKAGES = ['ovn-central', 'ovn-host', 'openvswitch-switch', 'openvswitch-common', 'stunnel4', 'nftables'];

/**
 * Also downloaded (not installed), with their recommends: what a host whose metadata agent runs
 * as a container installs, `apt-get install podman`. Both OCI runtimes (podman depends on
 * `crun | runc`: apt takes crun, which works in the test hosts, unless runc is installed) and
 * both network stacks (containers-common depends on the virtual container-network-stack).
 * No containers.conf goes with them: podman 4.3's defaults work in both variants (plain: it
 * finds no systemd and takes cgroupfs and file events itself; systemd: systemd and journald).
 */
export const HOST_IMAGE_CONTAINER_PACKAGES = ['podman', 'crun', 'runc', 'conmon', 'containernetworking-plugins', 'netavark'];

/** Also downloaded: what a host whose metadata agent runs as the distribution's process installs (the role's apt packages). */
export const HOST_IMAGE_AGENT_PACKAGES = ['neutron-ovn-metadata-agent', 'haproxy', 'iptables', 'sudo'];

/** What the `systemd: true` variant boots (apply's systemd backend); installed in both, run only there. */
export const HOST_IMAGE_SYSTEMD_PACKAGES = ['systemd', 'systemd-sysv', 'dbus'];

const cacheDir = path.join(checkoutCacheDir, 'host-image');

export interface HostImageOptions {
  /**
   * PID 1 = /sbin/init (systemd) instead of sshd; sshd runs as Debian's ssh.service. Run such a
   * container with `podman run --systemd=always` (see SYSTEMD_RUN_ARGS).
   */
  systemd?: boolean;
}

export interface HostImage {
  image: string;
  env: Record<string, string>;
  /** Seconds spent building now (0 when everything came from the cache). */
  builtSec: number;
}

/** CONTAINERS_CONF / CONTAINERS_STORAGE_CONF for a private podman store under .cache/host-image. */
export function hostPodmanEnv(): Record<string, string> {
  mkdirSync(cacheDir, { recursive: true });
  const conf = path.join(cacheDir, 'containers.conf');
  const storage = path.join(cacheDir, 'storage.conf');
  writeIfDifferent(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  writeIfDifferent(storage, `[storage]\ndriver = "overlay"\ngraphroot = "${path.join(cacheDir, 'storage')}"\nrunroot = "${path.join(cacheDir, 'runroot')}"\n`);
  return { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
}

function writeIfDifferent(file: string, content: string): void {
  // Concurrent test files share these: rewrite only when needed, and atomically.
  if (existsSync(file)) {
    try {
      if (readFileSync(file, 'utf8') === content) return;
    } catch {
      // rewrite below
    }
  }
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

/**
 * systemd variant: shared mount propagation on /, as systemd makes it at boot on a real host (it
 * skips that inside a container, whose mounts start private). New peer groups in the container's
 * own mount namespace: nothing propagates to or from this machine. The plain variant keeps the
 * private mounts of a host without systemd: there the metadata agent's own launcher makes
 * /run/netns the shared mount point podman's `-v /run/netns:/run/netns:shared` needs.
 */
const SHARED_MOUNTS = 'mount --make-rshared /';

/**
 * The container's PID 1: sshd in the foreground (it reaps every orphan with waitpid(-1), so
 * daemons left by the own supervisor do not pile up as zombies). Host keys are generated on first
 * start, so every container has its own and keeps it across stop/start.
 */
const ENTRYPOINT = `#!/bin/sh
set -e
ssh-keygen -A >/dev/null
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
exec /usr/sbin/sshd -D -e
`;

const SSHD_CONFIG = `# ovn-deploy test host: root by key only
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
`;

/**
 * systemd variant: host keys made at first boot (every container its own, kept across restarts),
 * before Debian's ssh.service (whose ExecStartPre `sshd -t` fails without them).
 */
const HOSTKEYS_UNIT = `[Unit]
Description=ovn-deploy test host: SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;

/**
 * Units that have nothing to do in a container (no consoles, no udev, no logins but root's over
 * SSH) and could fail or hold the boot up: masked so `systemctl is-system-running` says "running".
 */
const SYSTEMD_MASKED_UNITS = [
  'getty@tty1.service',
  'console-getty.service',
  'systemd-udevd.service',
  'systemd-udev-trigger.service',
  'systemd-udev-settle.service',
  'systemd-networkd-wait-online.service',
  'systemd-firstboot.service',
  'systemd-logind.service',
  'getty.target',
];

/** systemd variant: SHARED_MOUNTS before anything else mounts. */
const SHARED_MOUNTS_UNIT = `[Unit]
Description=ovn-deploy test host: shared mount propagation, as on a real host
DefaultDependencies=no
Before=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/${SHARED_MOUNTS}

[Install]
WantedBy=local-fs.target
`;

const POLICY_RC = '#!/bin/sh\n# ovn-deploy test host: packages never start services; apply does.\nexit 101\n';

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function run(argv: string[], env: Record<string, string>, timeoutMs: number): string {
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.status ?? r.signal)}): ${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout;
}

/**
 * The hooks that turn a minbase rootfs into a fresh host of either variant (also part of the
 * cache key): the plain entrypoint, and the units only a systemd PID 1 reads.
 */
function hooks(): { essential: string[]; customize: string[] } {
  const write = (rel: string, content: string, mode: string): string =>
    `mkdir -p "$1/${path.posix.dirname(rel)}" && printf '%s' ${shQuote(content)} > "$1/${rel}" && chmod ${mode} "$1/${rel}"`;
  const variant = [
    write('usr/local/sbin/host-entrypoint', ENTRYPOINT, '755'),
    write('etc/systemd/system/ovn-deploy-test-hostkeys.service', HOSTKEYS_UNIT, '644'),
    write('etc/systemd/system/test-host-shared-mounts.service', SHARED_MOUNTS_UNIT, '644'),
    'chroot "$1" systemctl enable ovn-deploy-test-hostkeys.service test-host-shared-mounts.service ssh.service',
    `chroot "$1" systemctl mask ${SYSTEMD_MASKED_UNITS.join(' ')}`,
    'mkdir -p "$1/root/.ssh" && chmod 700 "$1/root/.ssh"',
  ];
  return {
    // Before the --include packages: their postinst must not start sshd (or anything) in the build chroot.
    essential: [write('usr/sbin/policy-rc.d', POLICY_RC, '755')],
    customize: [
      ...variant,
      write('etc/ssh/sshd_config.d/ovn-deploy-test.conf', SSHD_CONFIG, '644'),
      // Every container must get its own host keys: drop the ones the build generated.
      'rm -f "$1"/etc/ssh/ssh_host_*',
      `cp ${shQuote(process.execPath)} "$1/usr/local/bin/node" && chmod 755 "$1/usr/local/bin/node"`,
      // Recommends included: a superset, so `apt-get install` works offline with or without
      // --no-install-recommends.
      `chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -o APT::Install-Recommends=true install --download-only -y ${HOST_IMAGE_OFFLINE_PACKAGES.join(' ')}`,
      // Resolved on its own, as `apply` installs it (on a worker that has OVN already).
      `chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -o APT::Install-Recommends=true install --download-only -y ${HOST_IMAGE_CONTAINER_PACKAGES.join(' ')}`,
      `chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get -o APT::Install-Recommends=true install --download-only -y ${HOST_IMAGE_AGENT_PACKAGES.join(' ')}`,
    ],
  };
}

/**
 * `podman run` arguments a container of the systemd variant needs: podman then mounts the cgroup
 * hierarchies (v1 hybrid here) writable, /run and /tmp as tmpfs, and stops it with SIGRTMIN+3.
 */
export const SYSTEMD_RUN_ARGS = ['--systemd=always'];

/** The one rootfs both variants import, keyed by everything that goes into it. */
export function hostRootfs(): { key: string; recipe: RootfsRecipe } {
  const h = hooks();
  const pkgs = [...HOST_IMAGE_PACKAGES, ...HOST_IMAGE_SYSTEMD_PACKAGES];
  const keyInput = { v: 2, pkgs, offline: HOST_IMAGE_OFFLINE_PACKAGES, h, node: process.version };
  const key = createHash('sha256').update(JSON.stringify(keyInput)).digest('hex').slice(0, 12);
  const argv = [
    'mmdebstrap',
    '--variant=minbase',
    '--mode=root',
    '--format=tar',
    `--include=${pkgs.join(',')}`,
    // Keep apt's lists and downloaded .debs: the container installs OVN offline from them.
    '--skip=cleanup/apt/lists,cleanup/apt/cache',
    ...h.essential.map((c) => `--essential-hook=${c}`),
    ...h.customize.map((c) => `--customize-hook=${c}`),
    'bookworm',
  ];
  return { key, recipe: { tar: path.join(cacheDir, `rootfs-${key}.tar`), argv, timeoutMs: 25 * 60_000 } };
}

/** Builds (or finds cached) the fresh-host image. Synchronous: call it from beforeAll with a long timeout (~3 min cold). */
export function ensureHostImage(opts: HostImageOptions = {}): HostImage {
  const env = hostPodmanEnv();
  const started = Date.now();
  const systemd = opts.systemd === true;
  const { key, recipe } = hostRootfs();
  const image = `localhost/ovn-deploy-test-host${systemd ? '-systemd' : ''}:${key}`;
  if (podmanCode(['image', 'exists', image], env) === 0) return { image, env, builtSec: 0 };
  // Kept after both imports: the second variant's import reads it too.
  ensureRootfs(recipe);
  // Older rootfs tarballs (~500 MB each, of the one or of either former variant) are only inputs of images no longer built.
  const stale = /^rootfs-(systemd-)?[0-9a-f]+\.tar(\.lock)?$/;
  for (const f of readdirSync(cacheDir)) if (stale.test(f) && !f.startsWith(path.basename(recipe.tar))) rmSync(path.join(cacheDir, f), { force: true });
  run(
    ['podman', 'import', '--change', `ENTRYPOINT ["${systemd ? '/sbin/init' : '/usr/local/sbin/host-entrypoint'}"]`, '--change', 'CMD []', recipe.tar, image],
    env,
    10 * 60_000,
  );
  return { image, env, builtSec: Math.round((Date.now() - started) / 1000) };
}

function podmanCode(args: string[], env: Record<string, string>): number {
  return spawnSync('podman', args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 }).status ?? -1;
}
