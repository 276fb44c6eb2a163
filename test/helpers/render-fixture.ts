/**
 * The render tests' fixture: a site file (3 centrals, one also a worker; a worker with the
 * metadata agent; a netdev worker with its tunnel NIC), the public half of a PKI made once with
 * `ovn-deploy pki init` (CA bundle + CRL, no key), and a metadata secret.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInventory, type Inventory } from '../../src/inventory/index.js';
import type { SitePki } from '../../src/render/index.js';

export const renderFixtureDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'render');
export const renderFixtureSite = path.join(renderFixtureDir, 'site.yaml');
export const goldenRenderDir = path.resolve(renderFixtureDir, '..', '..', 'golden', 'render');
/** A fixed generator string, so the golden files do not change with the package version. */
export const GOLDEN_GENERATOR = 'ovn-deploy (golden test)';

export function fixtureInventory(): Inventory {
  return parseInventory(readFileSync(renderFixtureSite, 'utf8'), renderFixtureSite).inventory;
}

export function fixturePki(): SitePki {
  return {
    caBundlePem: readFileSync(path.join(renderFixtureDir, 'ca-bundle.crt'), 'utf8'),
    crlPem: readFileSync(path.join(renderFixtureDir, 'crl.pem'), 'utf8'),
  };
}

export function fixtureSecret(): string {
  return readFileSync(path.join(renderFixtureDir, 'metadata-secret'), 'utf8').trim();
}

export const fixtureOptions = () => ({ generator: GOLDEN_GENERATOR, metadataSecret: fixtureSecret() });
