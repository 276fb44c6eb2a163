/** stunnel configs for the OVSDB remotes: specs from the inventory, rendered configs. */
export { renderStunnelConfig } from './render.js';
export { renderHostStunnel, stunnelSpecsForHost } from './host.js';
export { validateStunnelSpec } from './validate.js';
export { ALLOWED_CIPHER_RE, TIMEOUT_IDLE_SECONDS, TLS_CIPHERS, TLS_CURVES, TLS_VERSION } from './policy.js';
export type * from './types.js';
