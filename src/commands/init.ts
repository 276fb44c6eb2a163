/** `ovn-deploy init`: writes a commented example site.yaml to start from. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Command } from './commander.js';
import { inputError } from '../errors.js';
import { writeFileAtomic } from '../fsx.js';
import { defaultSiteFile } from '../paths.js';

export interface InitOptions {
  out: string;
  force?: boolean;
}

async function statIfExists(file: string) {
  try {
    return await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function runInit(opts: InitOptions): Promise<void> {
  const existing = await statIfExists(opts.out);
  if (existing?.isDirectory()) throw inputError('is a directory; give the file to write with --out', '', opts.out);
  if (existing && !opts.force) throw inputError('already exists; use --force to overwrite it', '', opts.out);
  const { exampleSiteYaml } = await import('../inventory/index.js');
  await writeFileAtomic(path.resolve(opts.out), exampleSiteYaml(), 0o644);
  process.stdout.write(`wrote ${opts.out}; edit it, then check it with: ovn-deploy validate ${opts.out}\n`);
}

export function initCommand(): Command {
  return new Command('init')
    .description('write a commented example site inventory (site.yaml) to start from')
    .option('-o, --out <file>', 'where to write it', defaultSiteFile)
    .option('-f, --force', 'overwrite an existing file')
    .action(async (opts: InitOptions) => runInit(opts));
}
