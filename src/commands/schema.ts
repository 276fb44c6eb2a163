/** `ovn-deploy schema`: the JSON Schema of site.yaml, for editors. */
import { Command } from 'commander';
import { inventoryJsonSchema } from '../inventory/index.js';

export function schemaCommand(): Command {
  return new Command('schema')
    .description('print the JSON Schema of site.yaml (for editor completion and help)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`);
    });
}
