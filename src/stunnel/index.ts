/** stunnel configs for the OVSDB remotes: validated and rendered from specs (the specs come from src/site/topology.ts). */
export { renderStunnelConfig } from './render.js';
export { ALLOWED_CIPHER_RE } from './policy.js';
export type * from './types.js';
