/**
 * The one handlebars loader for templates/: each template compiled once per process with the same
 * options everywhere. noEscape: none of it is HTML (callers validate values to one line instead);
 * strict: a field missing from the view is a bug and must throw, not render as an empty option.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { templatesDir } from './paths.js';

const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;
const compiled = new Map<string, Handlebars.TemplateDelegate>();

/** Where a template lives, as a rendered file's header and a manifest entry name it: `host/service.hbs`. */
export function templateName(dir: string, file: string): string {
  return path.relative(templatesDir, path.resolve(dir, file)).split(path.sep).join('/');
}

/**
 * `file` under `dir`; `partials` maps a partial's name to its file in the same directory (each
 * template gets its own handlebars environment, so partials of one never leak into another).
 * Every view also gets `template` (templateName), so each file's header says what made it.
 */
export function loadTemplate<View = unknown>(dir: string, file: string, partials: Readonly<Record<string, string>> = {}): Handlebars.TemplateDelegate<View> {
  const key = JSON.stringify([path.resolve(dir, file), partials]);
  let t = compiled.get(key);
  if (t === undefined) {
    const hb = Handlebars.create();
    const read = (name: string): string => readFileSync(path.join(dir, name), 'utf8');
    for (const [name, partialFile] of Object.entries(partials)) hb.registerPartial(name, hb.compile(read(partialFile), COMPILE_OPTIONS));
    const inner = hb.compile(read(file), COMPILE_OPTIONS);
    const template = templateName(dir, file);
    const named: Handlebars.TemplateDelegate = (view, options) => inner({ ...(view as object), template }, options);
    t = named;
    compiled.set(key, t);
  }
  return t as Handlebars.TemplateDelegate<View>;
}
