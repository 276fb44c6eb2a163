/**
 * The one OVSDB transaction that turns a running database's contents into a backup's, keeping
 * the backup's row UUIDs (`ovsdb-client restore` gives every row a new UUID: OVSDB 2.x had no
 * way to name one; since OVS 3.1 an insert may carry its "uuid"). A UUID deleted in a
 * transaction cannot be inserted again in it, so a row present on both sides is updated in
 * place (every persistent column set), rows only in the backup are inserted with their UUID and
 * rows only in the database deleted. Pure: the caller sends the result.
 */
import type { ColumnSchema, DbSchema, Row, Tables } from '../tools/ovsdb-file.js';

export interface RestoreOps {
  ops: unknown[];
  inserted: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

function atomDefault(type: unknown): unknown {
  const t = typeof type === 'object' && type !== null ? (type as { type?: unknown }).type : type;
  switch (t) {
    case 'integer':
      return 0;
    case 'real':
      return 0.0;
    case 'boolean':
      return false;
    case 'uuid':
      return ['uuid', ZERO_UUID];
    default:
      return '';
  }
}

/** OVSDB's default datum of a column: empty for an optional set or map, else the key type's zero. */
export function columnDefault(col: ColumnSchema): unknown {
  const type = col.type;
  if (typeof type === 'string') return atomDefault(type);
  const t = type as { key?: unknown; value?: unknown; min?: unknown };
  if (t.min === 0) return [t.value === undefined ? 'set' : 'map', []];
  return atomDefault(t.key);
}

/** Every persistent column of `row`, missing ones at their defaults. */
function fullRow(columns: Record<string, ColumnSchema>, row: Row): Row {
  const out: Row = {};
  for (const [name, col] of Object.entries(columns)) {
    if (col.ephemeral === true) continue;
    out[name] = name in row ? row[name] : columnDefault(col);
  }
  return out;
}

const byUuid = (uuid: string) => [['_uuid', '==', ['uuid', uuid]]];

export function restoreOps(schema: DbSchema, current: Tables, backup: Tables): RestoreOps {
  const ops: unknown[] = [];
  let inserted = 0;
  let updated = 0;
  let deleted = 0;
  let unchanged = 0;
  for (const [table, ts] of Object.entries(schema.tables)) {
    const have = current[table] ?? {};
    const want = backup[table] ?? {};
    for (const uuid of Object.keys(have)) {
      if (want[uuid] !== undefined) continue;
      ops.push({ op: 'delete', table, where: byUuid(uuid) });
      deleted += 1;
    }
    for (const [uuid, row] of Object.entries(want)) {
      const target = fullRow(ts.columns, row);
      const existing = have[uuid];
      if (existing === undefined) {
        ops.push({ op: 'insert', table, uuid, row: target });
        inserted += 1;
      } else if (JSON.stringify(fullRow(ts.columns, existing)) === JSON.stringify(target)) {
        unchanged += 1;
      } else {
        ops.push({ op: 'update', table, where: byUuid(uuid), row: target });
        updated += 1;
      }
    }
  }
  return { ops, inserted, updated, deleted, unchanged };
}

/**
 * Rows that make a database "in use": anything but its root configuration row (NB_Global,
 * SB_Global), which every initialised database holds. Restoring over such rows needs --force.
 */
export function userRows(tables: Tables): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [t, rows] of Object.entries(tables)) {
    if (t === 'NB_Global' || t === 'SB_Global') continue;
    const n = Object.keys(rows).length;
    if (n > 0) out[t] = n;
  }
  return out;
}
