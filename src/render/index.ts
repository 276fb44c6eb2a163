/** `render`: per-host bundles (config files + manifest) from the inventory and the PKI's public half. */
export { renderSite, renderSiteBundles, renderSiteEach, renderHostBundle } from './site.js';
export { certificateSans, manifestJson, renderHostBundleWith, type HostBundle } from './host-bundle.js';
export { BINARIES, SERVICE } from './services.js';
export { DISTRIBUTION_UNITS, systemdWord } from './systemd.js';
export { TUNNEL_PORTS } from './firewall.js';
export type { RenderOptions, SitePki } from './types.js';
