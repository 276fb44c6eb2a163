/** `ovn-deploy down`: stop and remove a sandbox made by `up` (only what it made). */
import { Command } from './commander.js';
import { defaultSandboxDir } from '../paths.js';
import { out } from './cli-io.js';

export function downCommand(): Command {
  return new Command('down')
    .description('stop every daemon of the sandbox and remove its namespaces, interfaces and files')
    .option('--dir <dir>', 'state directory of the sandbox', defaultSandboxDir())
    .action(async (opts: { dir: string }) => {
      const { down } = await import('../sandbox/down.js');
      const r = await down({ stateDir: opts.dir });
      for (const w of r.warnings) process.stderr.write(`ovn-deploy: warning: ${w}\n`);
      if (!r.found) {
        out(`no sandbox in ${r.stateDir}: nothing to do`);
        return;
      }
      out(
        `sandbox ${r.id} down in ${(r.durationMs / 1000).toFixed(1)} s: ${r.namespaces.length} namespaces removed` +
          (r.stragglers.length > 0 ? `, ${r.stragglers.length} leftover processes stopped` : '') +
          `, ${r.stateDir} cleaned`,
      );
    });
}
