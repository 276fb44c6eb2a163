/**
 * Parsing of `ovs-vsctl/ovn-nbctl/ovn-sbctl --format=json list TABLE` output: `{headings, data}`
 * with OVSDB's JSON encoding of values (`["uuid", u]`, `["set", [...]]`, `["map", [[k, v]...]]`).
 * Values are decoded into plain JS: atoms as themselves, uuids as strings, sets as arrays, maps as
 * objects, and a set of one element as that element (OVSDB writes optional columns that way).
 */

export type OvsdbValue = string | number | boolean | OvsdbValue[] | { [key: string]: OvsdbValue } | null;

export type OvsdbRow = Record<string, OvsdbValue>;

export function decodeOvsdbValue(v: unknown): OvsdbValue {
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string') {
    const [tag, body] = v as [string, unknown];
    if (tag === 'uuid' || tag === 'named-uuid') return String(body);
    if (tag === 'set' && Array.isArray(body)) {
      const items = body.map(decodeOvsdbValue);
      // An empty set is an absent optional value.
      if (items.length === 0) return null;
      return items;
    }
    if (tag === 'map' && Array.isArray(body)) {
      const out: Record<string, OvsdbValue> = {};
      for (const pair of body) {
        if (Array.isArray(pair) && pair.length === 2) out[String(decodeOvsdbValue(pair[0]))] = decodeOvsdbValue(pair[1]);
      }
      return out;
    }
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return null;
}

/** Rows of a `--format=json` table; throws when the text is not such a table. */
export function parseOvsdbTable(json: string): OvsdbRow[] {
  const parsed = JSON.parse(json) as { headings?: unknown; data?: unknown };
  if (!Array.isArray(parsed.headings) || !Array.isArray(parsed.data)) {
    throw new Error('not an OVSDB table (expected {"headings": [...], "data": [...]})');
  }
  const headings = parsed.headings.map(String);
  return parsed.data.map((row: unknown) => {
    const cells = Array.isArray(row) ? row : [];
    const out: OvsdbRow = {};
    headings.forEach((h, i) => {
      out[h] = decodeOvsdbValue(cells[i]);
    });
    return out;
  });
}

/** A column as a string ('' when absent). */
export function str(row: OvsdbRow, column: string): string {
  const v = row[column];
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(String).join(' ');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A column that holds a set of strings, whatever its cardinality. */
export function strs(row: OvsdbRow, column: string): string[] {
  const v = row[column];
  if (v === null || v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}
