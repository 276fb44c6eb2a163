/**
 * The metadata agent's config on a real host: the inventory's `metadataAgent` section plus the
 * shared secret (given to render, never in the inventory), through the role's own renderer.
 */
import path from 'node:path';
import { InputError, type Problem } from '../errors.js';
import type { Host, Inventory } from '../inventory/types.js';
import { metadataSectionProblem } from '../inventory/rules.js';
import { renderMetadataAgent } from '../metadata/render.js';
import { hostPaths, hostRenderedPaths } from '../paths.js';
import { ovsdbRemotes, type SiteTopology } from '../site/topology.js';

/** What is missing for the metadata agents of `hosts` (section in the site file, secret file option). */
export function metadataProblems(inv: Inventory, hosts: Host[], secret: string | undefined): Problem[] {
  const agents = hosts.filter((h) => h.roles.includes('metadata-agent')).map((h) => h.name);
  if (agents.length === 0) return [];
  const which = `${agents.length === 1 ? 'host' : 'hosts'} ${agents.join(', ')} ${agents.length === 1 ? 'has' : 'have'} the metadata-agent role`;
  const problems: Problem[] = [];
  const section = metadataSectionProblem(agents, inv.metadataAgent !== undefined);
  if (section !== undefined) problems.push({ path: 'metadataAgent', message: section });
  if (secret === undefined) {
    problems.push({ path: '--metadata-secret-file', message: `required: ${which}; give a file holding the metadata proxy shared secret` });
  }
  return problems;
}

/**
 * Files of the metadata agent on `host`, with destinations on the host (below its root); their
 * content names the paths under `root`. The secret fragment is 0600.
 */
export function metadataFiles(inv: Inventory, host: Host, topo: SiteTopology, secret: string | undefined, root = '/'): { dest: string; content: string; mode: number }[] {
  const problems = metadataProblems(inv, [host], secret);
  const section = inv.metadataAgent;
  if (problems.length > 0 || section === undefined || secret === undefined) throw new InputError(problems);
  const dest = hostRenderedPaths().metadata.confDir;
  const m = hostRenderedPaths(root).metadata;
  const files = renderMetadataAgent(
    inv,
    host.name,
    {
      confDir: m.confDir,
      statePath: m.statePath,
      lockPath: m.lockPath,
      ovsdbConnection: `unix:${hostPaths(root).ovs.dbSock}`,
      // The same remote list as ovn-controller: the IDL fails over across the centrals itself.
      sbConnection: ovsdbRemotes(topo, 'sb', root),
      // Native TLS: the agent presents the host's certificate; RBAC lets it write its own chassis' rows.
      ...(inv.tls.mode === 'native' ? { sbTls: { key: hostPaths(root).pki.key, cert: hostPaths(root).pki.cert, caCert: hostPaths(root).pki.caBundle } } : {}),
      nova: { host: section.novaMetadataHost, port: section.novaMetadataPort },
      workers: section.workers,
    },
    secret,
  );
  return [...files].map(([name, f]) => ({ dest: path.join(dest, name), content: String(f.content), mode: f.mode ?? 0o644 }));
}
