/**
 * Typed wrapper around podman for image builds: import/pull a base, build a Containerfile,
 * export an OCI archive, and the queries the pipeline and the tests need. Every call has a
 * timeout; builds log through the step log.
 */
import type { RunResult, Runner } from '../runner.js';
import { runLogged } from './step-log.js';

const QUERY_TIMEOUT_MS = 60_000;

const PODMAN_ENV = ['CONTAINERS_CONF', 'CONTAINERS_STORAGE_CONF', 'CONTAINERS_REGISTRIES_CONF', 'XDG_RUNTIME_DIR'] as const;

/** podman's own settings in the caller's environment (runtime, storage, registries): passed on to every podman we run. */
export function podmanEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of PODMAN_ENV) if (env[k] !== undefined) out[k] = env[k];
  return out;
}

export const IMAGE_BUILD_TIMEOUT_MS = 30 * 60_000;
const TRANSFER_TIMEOUT_MS = 20 * 60_000;

export interface PodmanBuild {
  context: string;
  containerfile: string;
  tag: string;
  buildArgs: Readonly<Record<string, string>>;
  labels?: Readonly<Record<string, string>>;
  step: string;
  log: string;
}

export class Podman {
  constructor(
    private readonly runner: Runner,
    /** Extra environment (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF). */
    readonly env: Readonly<Record<string, string | undefined>> = {},
    readonly binary = 'podman',
  ) {}

  run(args: readonly string[], opts: { timeoutMs?: number; allowFailure?: boolean; mutates?: boolean; input?: string } = {}): Promise<RunResult> {
    return this.runner.run([this.binary, ...args], {
      env: { ...this.env },
      timeoutMs: opts.timeoutMs ?? QUERY_TIMEOUT_MS,
      allowFailure: opts.allowFailure ?? false,
      mutates: opts.mutates ?? true,
      ...(opts.input === undefined ? {} : { input: opts.input }),
    });
  }

  async version(): Promise<string> {
    return (await this.run(['version', '--format', '{{.Client.Version}}'], { mutates: false })).stdout.trim();
  }

  async imageExists(ref: string): Promise<boolean> {
    return (await this.run(['image', 'exists', ref], { allowFailure: true, mutates: false })).exitCode === 0;
  }

  async imageId(ref: string): Promise<string> {
    return (await this.run(['image', 'inspect', '--format', '{{.Id}}', ref], { mutates: false })).stdout.trim();
  }

  async imageSize(ref: string): Promise<number> {
    return Number((await this.run(['image', 'inspect', '--format', '{{.Size}}', ref], { mutates: false })).stdout.trim());
  }

  /** The image's labels as podman reports them (those of the Containerfile and of the build). */
  async imageLabels(ref: string): Promise<Record<string, string>> {
    const out = (await this.run(['image', 'inspect', '--format', '{{json .Labels}}', ref], { mutates: false })).stdout.trim();
    const labels = JSON.parse(out === '' || out === 'null' ? '{}' : out) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }

  async import(tarball: string, ref: string): Promise<void> {
    await this.run(['import', '--quiet', tarball, ref], { timeoutMs: TRANSFER_TIMEOUT_MS });
  }

  async pull(ref: string): Promise<RunResult> {
    return this.run(['pull', '--quiet', ref], { timeoutMs: TRANSFER_TIMEOUT_MS, allowFailure: true });
  }

  /**
   * Docker format: the OCI image config has no HEALTHCHECK, and podman drops it when building OCI.
   * No layer cache: buildah's cache key ignores what a RUN --mount brings in, so the RPM install
   * layer of one role would be reused for the next (our artifact cache decides what to rebuild).
   */
  async build(b: PodmanBuild): Promise<void> {
    const argv = [this.binary, 'build', '--no-cache', '--format', 'docker', '--file', b.containerfile, '--tag', b.tag];
    for (const [k, v] of Object.entries(b.buildArgs)) argv.push('--build-arg', `${k}=${v}`);
    for (const [k, v] of Object.entries(b.labels ?? {})) argv.push('--label', `${k}=${v}`);
    argv.push(b.context);
    await runLogged(this.runner, argv, { step: b.step, log: b.log, env: { ...this.env }, timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
  }

  /** The image's ID, or undefined when this store does not hold it. */
  async findImageId(ref: string): Promise<string | undefined> {
    const r = await this.run(['image', 'inspect', '--format', '{{.Id}}', ref], { allowFailure: true, mutates: false });
    const id = r.stdout.trim();
    return r.exitCode === 0 && /^[0-9a-f]{64}$/.test(id) ? id : undefined;
  }

  /** Docker format keeps the image's HEALTHCHECK (an OCI config has none). */
  async saveDockerArchive(ref: string, out: string): Promise<void> {
    await this.run(['save', '--quiet', '--format', 'docker-archive', '--output', out, ref], { timeoutMs: TRANSFER_TIMEOUT_MS });
  }

  async saveOciArchive(ref: string, out: string): Promise<void> {
    await this.run(['save', '--quiet', '--format', 'oci-archive', '--output', out, ref], { timeoutMs: TRANSFER_TIMEOUT_MS });
  }

  /** Loads an archive; returns the image reference podman printed. */
  async load(archive: string): Promise<string> {
    const r = await this.run(['load', '--quiet', '--input', archive], { timeoutMs: TRANSFER_TIMEOUT_MS });
    return r.stdout.trim().replace(/^Loaded image(?:\(s\))?:\s*/, '').split('\n')[0] ?? '';
  }
}
