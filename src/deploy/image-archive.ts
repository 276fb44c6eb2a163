/**
 * Container images a host's bundle runs (the metadata agent's), shipped like the tool: deploy
 * saves the image once from the admin's podman store (by image ID, cached), and sends it only to a
 * host whose podman lacks that ID; apply there loads it (`--image-archive`) after installing
 * podman and before starting the service. An image the admin's store does not hold is left to the
 * host's podman (a registry pull when the service starts).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { Podman, podmanEnv } from '../packaging/podman.js';
import { hostPaths, imageArchiveCacheDir } from '../paths.js';
import type { Runner } from '../runner.js';
import type { RemoteHost } from './remote.js';

export interface LocalImage {
  ref: string;
  /** podman's image ID (64 hex). */
  id: string;
  file: string;
  bytes: number;
}

const ARCHIVE_RE = /^[0-9a-f]{64}\.tar$/;

/** The name apply accepts for an archive: `<image id>.tar`. */
export const imageArchiveName = (id: string): string => `${id}.tar`;

/** An archive unused this long is not feeding a deploy still running (each use touches it). */
const STALE_MS = 7 * 24 * 3600_000;

/**
 * Archives of other IDs (ours by their name: `<64 hex>.tar`, regular files) unused for a week; a
 * younger one may be another deploy's, of another image, still shipping it.
 */
function pruneArchives(cacheDir: string, keep: string): void {
  for (const f of readdirSync(cacheDir)) {
    if (!ARCHIVE_RE.test(f) || f === keep) continue;
    const p = path.join(cacheDir, f);
    const st = lstatSync(p);
    if (st.isFile() && Date.now() - st.mtimeMs > STALE_MS) rmSync(p, { force: true });
  }
}

/** Saves `ref` from the admin's podman store into the cache (reused while the ID is the same); undefined when the store lacks it. */
export async function saveLocalImage(runner: Runner, ref: string, cacheDir = imageArchiveCacheDir()): Promise<LocalImage | undefined> {
  const podman = new Podman(runner, podmanEnv());
  const id = await podman.findImageId(ref);
  if (id === undefined) return undefined;
  const file = path.join(cacheDir, imageArchiveName(id));
  if (existsSync(file)) {
    // Marks it in use (see the pruning below).
    const now = new Date();
    utimesSync(file, now, now);
  } else {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.partial`;
    try {
      await podman.saveDockerArchive(ref, tmp);
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
    }
    pruneArchives(cacheDir, path.basename(file));
  }
  return { ref, id, file, bytes: statSync(file).size };
}

/**
 * Remote script: $1 = images dir, $2 = archive name; stdin = the archive. Written under a
 * temporary name and renamed, in a root-only directory that must not be a symlink.
 */
export const RECEIVE_IMAGE_SCRIPT = [
  'set -eu',
  'd="$1"; n="$2"',
  '[ ! -L "$d" ] || { echo "$d is a symlink: refusing to write through it" >&2; exit 1; }',
  'mkdir -p "$d"; chmod 700 "$d"',
  't=$(mktemp "$d/.incoming.XXXXXX")',
  'trap \'rm -f "$t"\' EXIT',
  'cat > "$t"',
  'mv -f "$t" "$d/$n"',
  'trap - EXIT',
].join('\n');

/** The host's image ID for `ref` (undefined: no podman yet, or no such image). */
export async function remoteImageId(r: RemoteHost, ref: string): Promise<string | undefined> {
  const res = await r.run(['podman', 'image', 'inspect', '--format', '{{.Id}}', ref], { allowFailure: true, timeoutMs: 60_000 });
  const id = res.stdout.trim();
  return res.exitCode === 0 && /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}

/** Sends the archive unless the host already has that image ID; the remote path apply loads, or undefined when nothing was sent. */
export async function shipImage(r: RemoteHost, img: LocalImage, imagesDir = hostPaths().imagesDir): Promise<string | undefined> {
  if ((await remoteImageId(r, img.ref)) === img.id) return undefined;
  const name = imageArchiveName(img.id);
  await r.run(['sh', '-c', RECEIVE_IMAGE_SCRIPT, 'ovn-deploy-image', imagesDir, name], { inputFile: img.file, timeoutMs: 20 * 60_000 });
  return path.posix.join(imagesDir, name);
}

/** Removes an archive shipImage wrote (after the apply that loaded it). */
export async function removeShippedImage(r: RemoteHost, remotePath: string): Promise<void> {
  if (!ARCHIVE_RE.test(path.posix.basename(remotePath))) throw new Error(`not an image archive of ours: ${remotePath}`);
  await r.run(['rm', '-f', '--', remotePath], { allowFailure: true, timeoutMs: 30_000 });
}
