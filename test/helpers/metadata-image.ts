/**
 * The metadata agent's container image for the slow tests, built without a registry: a Debian
 * minbase rootfs with the agent's packages (mmdebstrap, ~70 s, ~700 MB) imported with podman,
 * then containers/ovn-metadata-agent/Containerfile.local on top (entrypoint, healthcheck,
 * HEALTHCHECK). Cached under the checkout's gitignored .cache, keyed by the inputs; podman runs
 * with a private storage and containers.conf (runc, cgroupfs, file events, ulimits).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { podmanQueryCommand } from '../../src/metadata/agent-command.js';
import { checkoutCacheDir, containerRoleDir, containersDir } from '../../src/paths.js';
import { ensureRootfs, type RootfsRecipe } from './rootfs.js';

export const METADATA_PACKAGES = ['neutron-ovn-metadata-agent', 'haproxy', 'iproute2', 'iptables', 'sudo', 'procps', 'ovn-common', 'openvswitch-common'];
const cacheDir = path.join(checkoutCacheDir, 'metadata-image');

export interface MetadataImage {
  image: string;
  env: Record<string, string>;
  /** Seconds spent building now (0 when everything came from the cache). */
  builtSec: number;
  sizeMb: number;
}

export function podmanEnv(): Record<string, string> {
  mkdirSync(cacheDir, { recursive: true });
  const conf = path.join(cacheDir, 'containers.conf');
  const storage = path.join(cacheDir, 'storage.conf');
  writeFileSync(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  writeFileSync(storage, `[storage]\ndriver = "overlay"\ngraphroot = "${path.join(cacheDir, 'storage')}"\nrunroot = "${path.join(cacheDir, 'runroot')}"\n`);
  return { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
}

function run(argv: string[], env: Record<string, string>, timeoutMs: number): string {
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${String(r.status)}): ${(r.stderr ?? '').slice(-2000)}`);
  return r.stdout;
}

export function podman(args: string[], env: Record<string, string>, timeoutMs = 60_000): { code: number; out: string } {
  const r = spawnSync('podman', args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * `podman ARGS` for a command that enters a container (`exec`, `healthcheck run`) of an agent that
 * a sandbox worker's supervisor started: in the worker's namespace, through the product's query
 * launcher, so runc finds the cgroups the container was made in (the launcher mounted every
 * hierarchy of the process there; this machine's own mount table has only some of them).
 */
export function podmanInWorker(netns: string, args: string[], env: Record<string, string>): { code: number; out: string } {
  const cmd = podmanQueryCommand(args, { ...process.env, ...env });
  const r = spawnSync('ip', ['netns', 'exec', netns, ...cmd.argv], { encoding: 'utf8', env: { ...process.env, ...cmd.env }, timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/** The agent image's rootfs: minbase with the agent's packages installed. */
export function metadataRootfs(): { key: string; recipe: RootfsRecipe } {
  const key = createHash('sha256').update(`bookworm minbase ${METADATA_PACKAGES.join(',')}`).digest('hex').slice(0, 12);
  const argv = ['mmdebstrap', '--variant=minbase', '--format=tar', `--include=${METADATA_PACKAGES.join(',')}`, 'bookworm'];
  return { key, recipe: { tar: path.join(cacheDir, `rootfs-${key}.tar`), argv, timeoutMs: 20 * 60_000 } };
}

export function ensureMetadataImage(): MetadataImage {
  const env = podmanEnv();
  const started = Date.now();
  const { key: rootfsKey, recipe } = metadataRootfs();
  const rootfs = recipe.tar;
  ensureRootfs(recipe);
  const role = containerRoleDir('ovn-metadata-agent');
  const files = ['Containerfile.local', 'entrypoint.sh', 'healthcheck.sh'].map((f) => path.join(role, f));
  const lib = path.join(containersDir, 'common', 'lib.sh');
  const h = createHash('sha256').update(rootfsKey);
  for (const f of [...files, lib]) h.update(readFileSync(f));
  const tag = h.digest('hex').slice(0, 12);
  const image = `localhost/ovn-deploy-metadata-agent:${tag}`;
  const base = `localhost/ovn-deploy-metadata-base:${rootfsKey}`;
  if (podman(['image', 'exists', image], env).code !== 0) {
    if (podman(['image', 'exists', base], env).code !== 0) run(['podman', 'import', rootfs, base], env, 10 * 60_000);
    // Build context: the role's files plus the shared entrypoint library.
    const ctx = path.join(cacheDir, `context-${tag}`);
    mkdirSync(ctx, { recursive: true });
    for (const f of [...files, lib]) writeFileSync(path.join(ctx, path.basename(f)), readFileSync(f), { mode: statSync(f).mode & 0o777 });
    run(['podman', 'build', '--isolation', 'chroot', '--format', 'docker', '--build-arg', `BASE_IMAGE=${base}`, '-f', path.join(ctx, 'Containerfile.local'), '-t', image, ctx], env, 10 * 60_000);
  }
  const size = Number(podman(['image', 'inspect', '--format', '{{.Size}}', image], env).out);
  return { image, env, builtSec: Math.round((Date.now() - started) / 1000), sizeMb: Math.round(size / 1e6) };
}
