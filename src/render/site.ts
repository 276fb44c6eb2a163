/**
 * `render` for a whole site (pure): one bundle per host under `<host>/`. Every input problem of
 * every host is collected before anything is returned, so the CLI writes all or nothing.
 */
import { InputError, type Problem } from '../errors.js';
import type { FileContent } from '../fsx.js';
import type { Inventory } from '../inventory/types.js';
import { siteTopology } from '../site/topology.js';
import { renderHostBundleWith, type HostBundle } from './host-bundle.js';
import { metadataProblems } from './metadata.js';
import type { RenderOptions, SitePki } from './types.js';

/** The PKI files must be certificates and a CRL: a key pasted by mistake never reaches a bundle. */
function pkiProblems(pki: SitePki): Problem[] {
  const problems: Problem[] = [];
  if (!pki.caBundlePem.includes('-----BEGIN CERTIFICATE-----')) problems.push({ path: 'caBundle', message: 'expected PEM certificates (-----BEGIN CERTIFICATE-----)' });
  if (!pki.crlPem.includes('-----BEGIN X509 CRL-----')) problems.push({ path: 'crl', message: 'expected a PEM CRL (-----BEGIN X509 CRL-----)' });
  for (const [field, pem] of [['caBundle', pki.caBundlePem], ['crl', pki.crlPem]] as const) {
    if (/PRIVATE KEY/.test(pem)) problems.push({ path: field, message: 'holds a private key: a bundle must never carry one' });
  }
  return problems;
}

function checkInputs(inv: Inventory, pki: SitePki, opts: RenderOptions, hosts = inv.hosts): void {
  const problems = [...pkiProblems(pki), ...metadataProblems(inv, hosts, opts.metadataSecret)];
  if (problems.length > 0) throw new InputError(problems);
}

/** One host's bundle; throws InputError for bad input. */
export function renderHostBundle(inv: Inventory, hostName: string, pki: SitePki, opts: RenderOptions = {}): HostBundle {
  checkInputs(inv, pki, opts, inv.hosts.filter((h) => h.name === hostName));
  return renderHostBundleWith(inv, siteTopology(inv), hostName, pki, opts);
}

/** Every host's bundle by host name, in inventory order (the topology is computed once). */
export function renderSiteBundles(inv: Inventory, pki: SitePki, opts: RenderOptions = {}): Map<string, HostBundle> {
  const out = new Map<string, HostBundle>();
  renderSiteEach(inv, pki, opts, (host, bundle) => out.set(host, bundle));
  return out;
}

/**
 * Every host's bundle, handed to `each` as soon as it is rendered (in inventory order), after
 * every input of every host was checked: the caller can write one while the next renders.
 */
export function renderSiteEach(inv: Inventory, pki: SitePki, opts: RenderOptions, each: (host: string, bundle: HostBundle) => void): void {
  checkInputs(inv, pki, opts);
  const topo = siteTopology(inv);
  for (const h of inv.hosts) each(h.name, renderHostBundleWith(inv, topo, h.name, pki, opts));
}

/** Every host's bundle as files: `<host>/manifest.json`, `<host>/files/<dest>` -> content and mode. */
export function renderSite(inv: Inventory, pki: SitePki, opts: RenderOptions = {}): Map<string, FileContent> {
  const out = new Map<string, FileContent>();
  for (const [host, bundle] of renderSiteBundles(inv, pki, opts)) {
    for (const [rel, file] of bundle.files) out.set(`${host}/${rel}`, file);
  }
  return out;
}
