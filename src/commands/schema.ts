/** `ovn-deploy schema`: the JSON Schema of site.yaml, for editors. */
import { Command } from './commander.js';

export function schemaCommand(): Command {
  return new Command('schema')
    .description('print the JSON Schema of site.yaml (for editor completion and help)')
    .action(async () => {
      const { inventoryJsonSchema } = await import('../inventory/index.js');
      process.stdout.write(`${JSON.stringify(inventoryJsonSchema(), null, 2)}\n`);
    });
}
