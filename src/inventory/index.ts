/** The site inventory (`site.yaml`): types, parsing and validation, the example and the schema. */
export * from './types.js';
export {
  DEFAULT_CERTIFICATE_POLICY,
  DEFAULT_LOOPBACK_PORTS,
  DEFAULT_SB_ADMIN_PORT,
  DEFAULT_METADATA_WORKERS,
  DEFAULT_NOVA_METADATA_PORT,
  DEFAULT_PORTS,
  DEFAULT_SITE,
  DEFAULT_SSH_PORT,
  DEFAULT_SSH_USER,
  KEY_BITS,
} from './defaults.js';
export { inventorySchema } from './schema.js';
export { inventoryJsonSchema } from './json-schema.js';
export { exampleSiteYaml } from './example.js';
export { sandboxInventory, type SandboxHost, type SandboxInventoryOptions, type SandboxWorker } from './sandbox.js';
export { loadInventory, parseInventory, readSiteFile, validateInventory } from './parse.js';
export { checkInventoryData, checkInventoryText, type InventoryReport } from './check.js';
export { findingToProblem, formatFinding, type InventoryFinding } from './findings.js';
