/** What checking a site file finds: errors and warnings with a dot-path and, when known, a line. */
import type { Problem } from '../errors.js';

export type PathSegment = string | number;

export interface InventoryFinding {
  /** Dot-path into the document, e.g. `hosts[2].addresses[0]`; '' for the whole document. */
  path: string;
  /** What was expected, without the location. */
  message: string;
  /** 1-based line in the site file, when the finding points at something written there. */
  line?: number;
  column?: number;
}

/** `['hosts', 2, 'addresses', 0]` -> `hosts[2].addresses[0]`. */
export function formatPath(segments: readonly PathSegment[]): string {
  return segments.reduce<string>((out, seg) => {
    if (typeof seg === 'number') return `${out}[${seg}]`;
    return out === '' ? seg : `${out}.${seg}`;
  }, '');
}

function locationSuffix(f: InventoryFinding): string {
  if (f.line === undefined) return '';
  return f.column === undefined ? ` (line ${f.line})` : ` (line ${f.line}, column ${f.column})`;
}

/** The message with its line, e.g. `not an IPv4 or IPv6 address: "300.1.1.1" (line 12)`. */
export function messageWithLine(f: InventoryFinding): string {
  return `${f.message}${locationSuffix(f)}`;
}

/** `path: message (line N)`, or just the message for the whole document. */
export function formatFinding(f: InventoryFinding): string {
  return f.path === '' ? messageWithLine(f) : `${f.path}: ${messageWithLine(f)}`;
}

export function findingToProblem(f: InventoryFinding, file: string, severity: 'error' | 'warning' = 'error'): Problem {
  return { file, path: f.path, message: messageWithLine(f), severity };
}
