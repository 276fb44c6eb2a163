/**
 * Renders one stunnel config from a spec: validate every input, then fill the handlebars
 * template. Pure apart from reading the templates once per process.
 */
import type Handlebars from 'handlebars';
import { InputError } from '../errors.js';
import { stunnelTemplatesDir } from '../paths.js';
import { loadTemplate } from '../templates.js';
import { parseEndpoint, stunnelEndpoint } from './endpoint.js';
import { DEFAULT_DEBUG_LEVEL, TIMEOUT_IDLE_SECONDS, TLS_CIPHERS, TLS_CURVES } from './policy.js';
import type { StunnelConfigSpec, StunnelKind } from './types.js';
import { isClientService, validateStunnelSpec } from './validate.js';

function template(kind: StunnelKind): Handlebars.TemplateDelegate<TemplateView> {
  return loadTemplate<TemplateView>(stunnelTemplatesDir, `${kind}.conf.hbs`, { global: '_global.hbs' });
}

/** Exactly what the templates read; every field present (strict mode). */
interface TemplateView {
  site: string;
  host: string;
  foreground: boolean;
  pidFile: string;
  logFile: string;
  debugLevel: number;
  tls: { cert: string; key: string; caFile: string; crlFile: string };
  policy: { ciphers: string; curves: string; timeoutIdleSeconds: number };
  services: { name: string; accept: string; connect: string | string[]; restricted: boolean; checkHost: string[]; checkIP: string[] }[];
}

/** stunnel's own spelling of an endpoint that validation already accepted. */
function toStunnel(value: string): string {
  const ep = parseEndpoint(value);
  if ('error' in ep) throw new Error(`unvalidated endpoint ${value}`);
  return stunnelEndpoint(ep);
}

export function renderStunnelConfig(spec: StunnelConfigSpec): string {
  const problems = validateStunnelSpec(spec);
  if (problems.length > 0) throw new InputError(problems);
  const view: TemplateView = {
    site: spec.site,
    host: spec.host,
    foreground: spec.foreground,
    pidFile: spec.pidFile,
    logFile: spec.logFile,
    debugLevel: spec.debugLevel ?? DEFAULT_DEBUG_LEVEL,
    tls: { cert: spec.tls.cert, key: spec.tls.key, caFile: spec.tls.caFile, crlFile: spec.tls.crlFile },
    policy: { ciphers: TLS_CIPHERS.join(':'), curves: TLS_CURVES.join(':'), timeoutIdleSeconds: TIMEOUT_IDLE_SECONDS },
    services: spec.services.map((s) => ({
      name: s.name,
      accept: toStunnel(s.accept),
      connect: isClientService(s) ? s.connect.map(toStunnel) : toStunnel(s.connect),
      restricted: (s.checkHost ?? []).length + (s.checkIP ?? []).length > 0,
      checkHost: [...(s.checkHost ?? [])],
      checkIP: [...(s.checkIP ?? [])],
    })),
  };
  return template(spec.kind)(view);
}
