/** JSON Schema of site.yaml, for editors (yaml-language-server, VS Code, IntelliJ). */
import { z } from 'zod';
import { inventorySchema } from './schema.js';

export function inventoryJsonSchema(): Record<string, unknown> {
  // `input`: what the user may write, so fields with defaults are optional and show their default.
  return z.toJSONSchema(inventorySchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
}
