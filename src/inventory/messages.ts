/**
 * Friendly texts for zod issues. zod's own texts ("Invalid input: expected array, received
 * string") speak TypeScript; a site file's author thinks in YAML lists and mappings.
 */
import type { z } from 'zod';
import { excerpt } from '../input-file.js';

type RawIssue = z.core.$ZodRawIssue;

/** A value as it appears in a message: strings quoted, everything else short. */
export function showValue(value: unknown): string {
  // A file that is not YAML parses as one long string: quote a short excerpt, never the file.
  if (typeof value === 'string') return JSON.stringify(excerpt(value, 60));
  if (typeof value === 'number' || typeof value === 'boolean') {
    return JSON.stringify(value);
  }
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

/**
 * Error function for a field with a specific expectation: a missing field falls through
 * (returns undefined) to the generic `required`, anything else is `expected <what>, got <value>`.
 */
export function expected(what: string): (iss: RawIssue) => string | undefined {
  return (iss) => (iss.input === undefined ? undefined : `expected ${what}, got ${showValue(iss.input)}`);
}

/** Error function for a value whose format is wrong: `not <what>: "value"`. */
export function notA(what: string, hint?: (value: string) => string | undefined): (iss: RawIssue) => string | undefined {
  return (iss) => {
    if (iss.input === undefined) return undefined;
    const extra = typeof iss.input === 'string' ? hint?.(iss.input) : undefined;
    return `not ${what}: ${showValue(iss.input)}${extra === undefined ? '' : ` (${extra})`}`;
  };
}

/**
 * The per-parse error map: texts for every issue a field did not word itself.
 * Unknown keys are worded later, per key, by the caller (they need the list of known keys).
 */
export function genericIssueMessage(iss: RawIssue): string {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'required';
      return `expected ${TYPE_WORDS[iss.expected] ?? iss.expected}`;
    }
    case 'invalid_value':
      return `expected one of ${iss.values.map((v) => String(v)).join(', ')}, got ${showValue(iss.input)}`;
    case 'too_small':
      return iss.origin === 'array' ? `expected at least ${String(iss.minimum)} item(s)` : `expected at least ${String(iss.minimum)}, got ${showValue(iss.input)}`;
    case 'too_big':
      return iss.origin === 'array' ? `expected at most ${String(iss.maximum)} item(s)` : `expected at most ${String(iss.maximum)}, got ${showValue(iss.input)}`;
    case 'invalid_format':
      return `not a valid ${iss.format}: ${showValue(iss.input)}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${iss.keys.map((k) => showValue(k)).join(', ')}`;
    default:
      return `invalid value ${showValue(iss.input)}`;
  }
}
