/**
 * The one handlebars loader for templates/: each template compiled once per process with the same
 * options everywhere. noEscape: none of it is HTML (callers validate values to one line instead);
 * strict: a field missing from the view is a bug and must throw, not render as an empty option.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';

const COMPILE_OPTIONS = { noEscape: true, strict: true } as const;
const compiled = new Map<string, Handlebars.TemplateDelegate>();

/**
 * `file` under `dir`; `partials` maps a partial's name to its file in the same directory (each
 * template gets its own handlebars environment, so partials of one never leak into another).
 */
export function loadTemplate<View = unknown>(dir: string, file: string, partials: Readonly<Record<string, string>> = {}): Handlebars.TemplateDelegate<View> {
  const key = JSON.stringify([path.resolve(dir, file), partials]);
  let t = compiled.get(key);
  if (t === undefined) {
    const hb = Handlebars.create();
    const read = (name: string): string => readFileSync(path.join(dir, name), 'utf8');
    for (const [name, partialFile] of Object.entries(partials)) hb.registerPartial(name, hb.compile(read(partialFile), COMPILE_OPTIONS));
    t = hb.compile(read(file), COMPILE_OPTIONS);
    compiled.set(key, t);
  }
  return t as Handlebars.TemplateDelegate<View>;
}
