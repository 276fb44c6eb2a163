/**
 * Global setup of the slow project in a full run (OVN_DEPLOY_REQUIRE_SLOW=1, as root): starts
 * the test images' rootfs builds (host image, metadata agent image) in the background at once.
 * Each takes about a minute of one core; built lazily, each ran while the other core idled, one
 * after the other, inside the first file that needed it. The files' own ensure*Image() wait on
 * the same lock (test/helpers/rootfs.ts), so nothing is built twice, and a failed prebuild only
 * means the file builds the tarball itself and reports the error. Narrowed runs build lazily.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { checkoutCacheDir } from '../../src/paths.js';
import { hostRootfs } from '../helpers/host-image.js';
import { metadataRootfs } from '../helpers/metadata-image.js';
import { startRootfs, type BackgroundBuild } from '../helpers/rootfs.js';

export default function setup(): (() => Promise<void>) | undefined {
  if (process.env.OVN_DEPLOY_REQUIRE_SLOW !== '1' || process.getuid?.() !== 0) return undefined;
  if (spawnSync('sh', ['-c', 'command -v mmdebstrap && command -v flock']).status !== 0) return undefined;
  mkdirSync(checkoutCacheDir, { recursive: true });
  const logFile = path.join(checkoutCacheDir, 'prebuild-rootfs.log');
  const log = openSync(logFile, 'a');
  const builds: BackgroundBuild[] = [hostRootfs(), metadataRootfs()].map(({ recipe }) => startRootfs(recipe, log));
  closeSync(log);
  return async () => {
    // Every file that needed a tarball has waited for it; one still building was needed by none.
    for (const b of builds) b.stop();
    const codes = await Promise.all(builds.map((b) => b.done));
    codes.forEach((code, i) => {
      if (code !== 0) console.warn(`prebuild-rootfs: ${builds[i]?.tar ?? ''} was not built in the background (exit ${code}; see ${logFile})`);
    });
  };
}
