/**
 * The smallest valid bundle manifest for a host of a test inventory: just the certificate request
 * `deploy` checks CSRs against (no files, services or health checks).
 */
import { manifestSchema, type BundleManifest } from '../../src/bundle/manifest.js';
import type { Host } from '../../src/inventory/index.js';

export function certificateOnlyManifest(h: Host, site: string, opts: { renewalWindowDays?: number } = {}): BundleManifest {
  return manifestSchema.parse({
    format: 1,
    site,
    host: h.name,
    roles: h.roles,
    generator: 'test',
    packages: { apt: [], dnf: [] },
    certificate: {
      role: h.roles.includes('central') ? 'central' : 'worker',
      name: h.name,
      sans: [h.name, ...h.addresses],
      keyBits: 2048,
      ...(opts.renewalWindowDays === undefined ? {} : { renewalWindowDays: opts.renewalWindowDays }),
      key: '/etc/ovn-deploy/pki/host.key',
      csr: '/etc/ovn-deploy/pki/host.csr',
      cert: '/etc/ovn-deploy/pki/host.pem',
      caBundle: '/etc/ovn-deploy/pki/ca-bundle.pem',
      crl: '/etc/ovn-deploy/pki/crl.pem',
    },
    files: [],
    services: [],
    health: [],
    firewall: [],
  });
}
