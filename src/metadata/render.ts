/**
 * The metadata-agent role's files for one host (pure apart from reading the templates once):
 * neutron.conf, neutron_ovn_metadata_agent.ini and the shared secret's own 0600 fragment (how the
 * agent runs, as a process or in a container, is its service's argv: render/metadata-runtime.ts).
 * oslo.config reads several --config-file, so the secret lives only in its fragment and never in
 * a file that is shown, diffed or logged.
 */
import path from 'node:path';
import type Handlebars from 'handlebars';
import { InputError, type Problem } from '../errors.js';
import type { RenderedFiles } from '../fsx.js';
import type { Host, Inventory } from '../inventory/types.js';
import { metadataAgentFiles, metadataTemplatesDir } from '../paths.js';
import { loadTemplate } from '../templates.js';

export interface MetadataAgentSettings {
  /** Absolute directory the files are installed in (the --config-file paths point there). */
  confDir: string;
  statePath: string;
  lockPath: string;
  /** `unix:/abs/db.sock` of the host's Open vSwitch database. */
  ovsdbConnection: string;
  /** Default: the host's stunnel client, `tcp:127.0.0.1:<ports.sb>`. */
  sbConnection?: string;
  /** Native TLS (`ssl:` sbConnection): the host's key, certificate and CA bundle. */
  sbTls?: { key: string; cert: string; caCert: string };
  nova: { host: string; port: number };
  /** metadata_workers: API worker processes. */
  workers: number;
  debug?: boolean;
}

/** Generated secrets are 64 hex digits; a given one must at least not break the ini line. */
const SECRET_RE = /^[\x21-\x7e]{16,256}$/;
const VALUE_RE = /^[^\s;#]+$/;

function template(name: string): Handlebars.TemplateDelegate {
  return loadTemplate(metadataTemplatesDir, `${name}.hbs`);
}

/** The --config-file list, in order: the secret fragment last so nothing overrides it. */
export function metadataConfigFiles(confDir: string): string[] {
  return [metadataAgentFiles.neutronConf, metadataAgentFiles.agentIni, metadataAgentFiles.secretIni].map((f) => path.join(confDir, f));
}

export function validateMetadataSettings(s: MetadataAgentSettings, secret: string): Problem[] {
  const problems: Problem[] = [];
  const p = (field: string, message: string) => problems.push({ file: '(metadata-agent)', path: field, message });
  for (const [field, value] of Object.entries({ confDir: s.confDir, statePath: s.statePath, lockPath: s.lockPath })) {
    if (!path.isAbsolute(value) || !VALUE_RE.test(value)) p(field, `expected an absolute path without spaces, got "${value}"`);
  }
  if (!/^unix:\/[^\s]+$/.test(s.ovsdbConnection)) p('ovsdbConnection', `expected unix:<absolute path> (a relative one resolves against the OVS run dir), got "${s.ovsdbConnection}"`);
  if (s.sbConnection !== undefined && !/^(tcp|ssl|unix):[^\s]+$/.test(s.sbConnection)) p('sbConnection', `expected tcp:|ssl:|unix: remote, got "${s.sbConnection}"`);
  if (!VALUE_RE.test(s.nova.host)) p('nova.host', `expected a host name or address, got "${s.nova.host}"`);
  if (!Number.isInteger(s.nova.port) || s.nova.port < 1 || s.nova.port > 65535) p('nova.port', `expected a port 1-65535, got ${s.nova.port}`);
  if (!Number.isInteger(s.workers) || s.workers < 0 || s.workers > 64) p('workers', `expected 0-64 metadata workers, got ${s.workers}`);
  // Never echo the secret itself, not even in an error.
  if (!SECRET_RE.test(secret)) p('secret', 'expected 16-256 printable characters without spaces (the value is not shown)');
  return problems;
}

/**
 * Files for `hostName` (which must have the metadata-agent role), relative to `settings.confDir`.
 * The map holds the secret fragment with mode 0600; every other file is 0644 and secret-free.
 */
export function renderMetadataAgent(inv: Inventory, hostName: string, settings: MetadataAgentSettings, secret: string): RenderedFiles {
  const host: Host | undefined = inv.hosts.find((h) => h.name === hostName);
  const problems = validateMetadataSettings(settings, secret);
  if (host === undefined) problems.push({ file: '(inventory)', path: 'hosts', message: `no host named ${hostName}` });
  else if (!host.roles.includes('metadata-agent')) problems.push({ file: '(inventory)', path: `hosts.${hostName}.roles`, message: 'expected the metadata-agent role' });
  if (problems.length > 0 || host === undefined) throw new InputError(problems);
  const common = { host: host.name, site: inv.site };
  const files: RenderedFiles = new Map();
  files.set(metadataAgentFiles.neutronConf, {
    content: template(metadataAgentFiles.neutronConf)({ ...common, statePath: settings.statePath, lockPath: settings.lockPath, debug: settings.debug === true ? 'true' : 'false' }),
    mode: 0o644,
  });
  files.set(metadataAgentFiles.agentIni, {
    content: template(metadataAgentFiles.agentIni)({
      ...common,
      secretFile: path.join(settings.confDir, metadataAgentFiles.secretIni),
      novaHost: settings.nova.host,
      novaPort: settings.nova.port,
      workers: settings.workers,
      ovsdbConnection: settings.ovsdbConnection,
      sbConnection: settings.sbConnection ?? `tcp:127.0.0.1:${inv.ports.sb}`,
      ...(settings.sbTls === undefined ? {} : { sbTls: settings.sbTls }),
    }),
    mode: 0o644,
  });
  files.set(metadataAgentFiles.secretIni, { content: template('metadata-secret.ini')({ ...common, secret }), mode: 0o600 });
  return files;
}
