/**
 * Reads a site file with the `yaml` package, keeping the node tree so a finding's dot-path can be
 * turned back into the line the user wrote it on.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type YAMLError } from 'yaml';
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

/** yaml's messages end with " at line N, column M:" and a code excerpt; the location is kept apart. */
function shortYamlMessage(message: string): string {
  const first = message.split('\n', 1)[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

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
  const syntaxErrors = doc.errors.map(toFinding);
  const warnings = doc.warnings.map((w) => ({ ...toFinding(w), message: `YAML: ${shortYamlMessage(w.message)}` }));

  let data: unknown;
  if (syntaxErrors.length === 0) {
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // Unresolved or exploding aliases only show up when the document is turned into data.
      syntaxErrors.push({ path: '', message: `invalid YAML: ${err instanceof Error ? err.message : String(err)}` });
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
