/**
 * `ovn-deploy render --inventory site.yaml --out DIR`: one bundle per host (config files + a
 * manifest with checksums), rendered in memory first so bad input writes nothing, then written
 * atomically as one batch (src/bundle/write.ts); files no longer rendered are removed.
 */
import { Command } from './commander.js';
import { err, out, printJson } from './cli-io.js';

export interface RenderCommandOptions {
  inventory: string;
  out: string;
  pki: string;
  metadataSecretFile?: string;
  json?: boolean;
}

export function renderCommand(): Command {
  return new Command('render')
    .description('render one bundle per host (config files, systemd units, manifest with checksums) into --out; no keys, deterministic')
    .requiredOption('--inventory <file>', 'the site file, e.g. site.yaml')
    .requiredOption('--out <dir>', 'output directory: one <host>/ bundle per host')
    .option('--pki <dir>', 'PKI directory (`pki init`): its CA bundle and CRL go into every bundle', 'pki')
    .option('--metadata-secret-file <file>', 'file holding the metadata proxy shared secret (hosts with the metadata-agent role)')
    .option('--json', 'print the summary as JSON')
    .action(async (o: RenderCommandOptions) => {
      const { renderToDir } = await import('../bundle/write.js');
      const s = await renderToDir(o);
      if (o.json) {
        printJson(s);
        return;
      }
      for (const w of s.warnings) err(`warning: ${w}`);
      for (const h of s.hosts) {
        const removed = h.removed.length > 0 ? `, ${h.removed.length} removed` : '';
        out(`${h.host}: ${h.written.length} written, ${h.unchanged} unchanged${removed}`);
      }
      for (const b of s.removedBundles) out(`${b}: removed (no longer in the inventory)`);
      const written = s.hosts.reduce((n, h) => n + h.written.length, 0);
      out(`rendered ${s.hosts.length} host bundles into ${s.out} (${written} files written)`);
    });
}
