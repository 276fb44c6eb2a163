/**
 * ccache for rpmbuild: a masquerade directory (gcc/cc symlinks to ccache, first in PATH, so the
 * spec needs no changes), a base directory so objects are shared between build directories, and
 * a per-build stats log from which we count what was really compiled.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface CcacheSetup {
  /** ccache's cache directory. */
  dir: string;
  /** Directory with gcc/cc -> ccache links. */
  binDir: string;
  /** Absolute paths below this are hashed relative to the build directory. */
  baseDir: string;
}

const COMPILERS = ['gcc', 'cc', 'g++', 'c++'];

export async function ensureMasquerade(binDir: string, ccacheBinary: string): Promise<void> {
  await fs.mkdir(binDir, { recursive: true });
  for (const c of COMPILERS) {
    const link = path.join(binDir, c);
    const current = await fs.readlink(link).catch(() => undefined);
    if (current === ccacheBinary) continue;
    await fs.rm(link, { force: true });
    await fs.symlink(ccacheBinary, link);
  }
}

/** Environment for a build through ccache; `statsLog` collects this build's results only. */
export function ccacheEnv(setup: CcacheSetup, statsLog: string, basePath: string | undefined): Record<string, string> {
  return {
    PATH: [setup.binDir, basePath ?? ''].filter((p) => p !== '').join(path.delimiter),
    CCACHE_DIR: setup.dir,
    CCACHE_BASEDIR: setup.baseDir,
    // The working directory still counts (debug info records it), but mapped through the specs'
    // -ffile-prefix-map, so builds in another cache directory hit the same objects.
    CCACHE_STATSLOG: statsLog,
  };
}

export interface CcacheLogStats {
  hits: number;
  /** Source files compiled (cache misses), configure's probes left out. */
  misses: number;
  /** configure's conftest programs: compiled on every run, they are not the project's sources. */
  probes: number;
  compiledFiles: string[];
}

/** Parses a CCACHE_STATSLOG file: one `# file` header per compiler call, then result lines. */
export function parseStatsLog(text: string): CcacheLogStats {
  const stats: CcacheLogStats = { hits: 0, misses: 0, probes: 0, compiledFiles: [] };
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# ')) current = line.slice(2);
    else if (line === 'cache_miss') {
      if (/(^|\/)conftest\.\w+$/.test(current)) stats.probes++;
      else {
        stats.misses++;
        stats.compiledFiles.push(current);
      }
    } else if (line === 'direct_cache_hit' || line === 'preprocessed_cache_hit') stats.hits++;
  }
  return stats;
}
