/**
 * Renders one stunnel config from a spec: validate every input, then fill the handlebars
 * template. Pure apart from reading the templates once per process.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { InputError } from '../errors.js';
import { stunnelTemplatesDir } from '../paths.js';
import { parseEndpoint, stunnelEndpoint } from './endpoint.js';
import { DEFAULT_DEBUG_LEVEL, TIMEOUT_IDLE_SECONDS, TLS_CIPHERS, TLS_CURVES } from './policy.js';
import type { StunnelConfigSpec, StunnelKind } from './types.js';
import { isClientService, validateStunnelSpec } from './validate.js';

export type * from './types.js';

// noEscape: this is not HTML (validation keeps values to one line instead); strict: a field
// missing from the view is a bug and must throw, not render as an empty option.
const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;

type Template = Handlebars.TemplateDelegate<TemplateView>;
let compiled: Record<StunnelKind, Template> | undefined;

function templates(): Record<StunnelKind, Template> {
  if (compiled === undefined) {
    const hb = Handlebars.create();
    const read = (name: string) => readFileSync(path.join(stunnelTemplatesDir, name), 'utf8');
    hb.registerPartial('global', hb.compile(read('_global.hbs'), COMPILE_OPTIONS));
    compiled = {
      server: hb.compile<TemplateView>(read('server.conf.hbs'), COMPILE_OPTIONS),
      client: hb.compile<TemplateView>(read('client.conf.hbs'), COMPILE_OPTIONS),
    };
  }
  return compiled;
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
  return templates()[spec.kind](view);
}
