/** The host bundle's handlebars templates, compiled once per process. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { hostTemplatesDir } from '../paths.js';

// noEscape: not HTML; strict: a field missing from the view is a bug and must throw.
const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;
const compiled = new Map<string, Handlebars.TemplateDelegate>();

export type HostTemplate = 'service.hbs' | 'dropin.conf.hbs' | 'managed-marker.hbs' | 'firewall.nft.hbs';

export function hostTemplate(name: HostTemplate): Handlebars.TemplateDelegate {
  let t = compiled.get(name);
  if (t === undefined) {
    t = Handlebars.create().compile(readFileSync(path.join(hostTemplatesDir, name), 'utf8'), COMPILE_OPTIONS);
    compiled.set(name, t);
  }
  return t;
}
