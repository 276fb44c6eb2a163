/**
 * Checks a site file completely: YAML syntax, every field (zod) and every cross-field rule, and
 * returns all findings at once, sorted by where they are in the file. Nothing here throws for
 * bad input; `parse.ts` turns findings into an InputError.
 */
import type { z } from 'zod';
import { formatPath, type InventoryFinding, type PathSegment } from './findings.js';
import { excerpt } from '../input-file.js';
import { genericIssueMessage, showValue } from './messages.js';
import { checkRules } from './rules.js';
import { inventorySchema } from './schema.js';
import { closestName } from './suggest.js';
import type { Inventory } from './types.js';
import { readYamlSource } from './yaml-source.js';

export interface InventoryReport {
  /** Present only when there are no errors. */
  inventory?: Inventory;
  errors: InventoryFinding[];
  warnings: InventoryFinding[];
}

type LineOf = (path: readonly PathSegment[]) => number | undefined;

type AnySchema = z.core.$ZodType;

/** Looks through wrappers (default, optional, transform...) to the schema that holds the fields. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema };
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
    else return s;
  }
}

/** The field names the schema allows at `path` (for "did you mean"). */
function knownFieldsAt(path: readonly PathSegment[]): string[] {
  let s: AnySchema | undefined = unwrap(inventorySchema);
  for (const seg of path) {
    const def = s._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    const next: AnySchema | undefined = def.type === 'array' ? def.element : def.shape?.[String(seg)];
    if (next === undefined) return [];
    s = unwrap(next);
  }
  const shape = (s._zod.def as { shape?: Record<string, AnySchema> }).shape;
  return shape === undefined ? [] : Object.keys(shape);
}

function at(path: readonly PathSegment[], message: string, lineOf: LineOf): InventoryFinding {
  const line = lineOf(path);
  return { path: formatPath(path), message, ...(line === undefined ? {} : { line }) };
}

function issueFindings(issue: z.core.$ZodIssue, lineOf: LineOf): InventoryFinding[] {
  const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
  if (issue.code !== 'unrecognized_keys') return [at(path, issue.message, lineOf)];
  // One finding per key, pointing at the key's own line.
  const known = knownFieldsAt(path);
  return issue.keys.map((key) => {
    const guess = closestName(key, known);
    const message = `unknown field ${showValue(key)}${guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`}`;
    const line = lineOf([...path, key]);
    return { path: formatPath(path), message, ...(line === undefined ? {} : { line }) };
  });
}

function byLine(a: InventoryFinding, b: InventoryFinding): number {
  return (a.line ?? 0) - (b.line ?? 0);
}

/** Checks already-parsed data (a YAML document, or an inventory built in code). */
export function checkInventoryData(data: unknown, lineOf: LineOf = () => undefined): InventoryReport {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { errors: [{ path: '', message: `expected a mapping at the top level, got ${showValue(data)}` }], warnings: [] };
  }
  // Not a site file at all (a config file, /etc/shadow...): one finding quoting a short excerpt,
  // not one "unknown field" per line of it.
  const keys = Object.keys(data);
  const known = new Set(knownFieldsAt([]));
  if (keys.length > 0 && !keys.some((k) => known.has(k))) {
    const first = keys[0] ?? '';
    return { errors: [{ path: '', message: `not a site file: none of its ${keys.length} top-level keys is a site-file field (expected "hosts"); it begins with ${JSON.stringify(excerpt(first, 20))}` }], warnings: [] };
  }
  const parsed = inventorySchema.safeParse(data, { error: genericIssueMessage, reportInput: true });
  const fieldErrors = parsed.success ? [] : parsed.error.issues.flatMap((i) => issueFindings(i, lineOf));

  const rules = checkRules(data as Record<string, unknown>);
  // A value that is malformed is not also reported as, say, a duplicate: one message per place.
  const taken = new Set(fieldErrors.map((f) => f.path));
  const ruleErrors = rules.errors.map((r) => at(r.path, r.message, lineOf)).filter((f) => !taken.has(f.path));

  const errors = [...fieldErrors, ...ruleErrors].sort(byLine);
  const warnings = rules.warnings.map((w) => at(w.path, w.message, lineOf)).sort(byLine);
  if (errors.length > 0 || !parsed.success) return { errors, warnings };
  return { inventory: parsed.data, errors, warnings };
}

/** Checks the text of a site file. */
export function checkInventoryText(text: string): InventoryReport {
  const source = readYamlSource(text);
  if (source.syntaxErrors.length > 0) return { errors: source.syntaxErrors, warnings: source.warnings };
  if (source.empty) {
    return { errors: [{ path: '', message: 'empty document: expected a mapping with at least "hosts"' }], warnings: source.warnings };
  }
  const report = checkInventoryData(source.data, source.lineOf);
  return { ...report, warnings: [...source.warnings, ...report.warnings] };
}
