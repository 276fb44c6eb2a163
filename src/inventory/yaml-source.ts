/**
 * Reads a site file with the `yaml` package, keeping the node tree so a finding's dot-path can be
 * turned back into the line the user wrote it on.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type YAMLError } from 'yaml';
import { excerpt } from '../input-file.js';
import type { InventoryFinding, PathSegment } from './findings.js';

export interface YamlSource {
  /** The document as plain data; undefined when the YAML itself is broken. */
  data: unknown;
  /** An empty file or a document holding only comments. */
  empty: boolean;
  syntaxErrors: InventoryFinding[];
  warnings: InventoryFinding[];
  /** The line of the deepest node along `path` that exists in the file. */
  lineOf(path: readonly PathSegment[]): number | undefined;
}

/**
 * yaml's messages end with " at line N, column M:" and a code excerpt; the location is kept apart.
 * A quoted token can be a whole block of the file (a stray "|" turns the rest into one scalar), so
 * it is cut to a short excerpt.
 */
function shortYamlMessage(message: string): string {
  const quoted = message.match(/^([^"]*: )"([\s\S]*)"( at line \d+, column \d+:?)?(\n[\s\S]*)?$/);
  if (quoted) return `${quoted[1]}"${excerpt(unquote(quoted[2] ?? ''))}"`;
  const first = message.split('\n', 1)[0] ?? message;
  return excerpt(first.replace(/ at line \d+, column \d+:?$/, ''), 200);
}

/** yaml quotes tokens with JSON.stringify; anything else is shown as it came. */
function unquote(body: string): string {
  try {
    const v: unknown = JSON.parse(`"${body}"`);
    return typeof v === 'string' ? v : body;
  } catch {
    return body;
  }
}

// A file broken early yields one finding per later token; the first few say where it broke.
const MAX_SYNTAX_ERRORS = 10;

// Alias bombs ("billion laughs") are refused rather than expanded.
const MAX_ALIAS_COUNT = 100;

export function readYamlSource(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const toFinding = (e: YAMLError): InventoryFinding => {
    const pos = e.linePos?.[0];
    return {
      path: '',
      message: `invalid YAML: ${shortYamlMessage(e.message)}`,
      ...(pos === undefined ? {} : { line: pos.line, column: pos.col }),
    };
  };
  const syntaxErrors = doc.errors.slice(0, MAX_SYNTAX_ERRORS).map(toFinding);
  if (doc.errors.length > MAX_SYNTAX_ERRORS) {
    syntaxErrors.push({ path: '', message: `invalid YAML: ${doc.errors.length - MAX_SYNTAX_ERRORS} more errors after these` });
  }
  const warnings = doc.warnings.map((w) => ({ ...toFinding(w), message: `YAML: ${shortYamlMessage(w.message)}` }));

  let data: unknown;
  if (syntaxErrors.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // Unresolved or exploding aliases only show up when the document is turned into data.
      syntaxErrors.push({ path: '', message: `invalid YAML: ${excerpt(err instanceof Error ? err.message : String(err), 200)}` });
    }
  }

  const lineAt = (node: { range?: [number, number, number] | null } | null | undefined): number | undefined =>
    node?.range ? lineCounter.linePos(node.range[0]).line : undefined;

  const lineOf = (path: readonly PathSegment[]): number | undefined => {
    let node: unknown = doc.contents;
    // The empty path is the whole document: no single line to point at.
    let line: number | undefined;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (pair === undefined) break;
        line = lineAt(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        line = lineAt(item as Node) ?? line;
        node = item;
      } else {
        break;
      }
    }
    return line;
  };

  return { data, empty: doc.contents === null, syntaxErrors, warnings, lineOf };
}
