/**
 * OVSDB's standalone database file, the format `ovsdb-client backup` writes: records of
 * `OVSDB JSON <length> <sha1>\n<json>\n`, the first the schema, then transactions. A backup has
 * exactly one transaction holding every row ({table: {uuid: {column: datum}}}). Parsed here
 * (each record's length and sha1 checked) so that a restore can be built and a damaged file
 * refused before anything is touched.
 */
import { createHash } from 'node:crypto';

export type Datum = unknown;
export type Row = Record<string, Datum>;
/** table -> row uuid -> row (without `_uuid` / `_version`). */
export type Tables = Record<string, Record<string, Row>>;

export interface ColumnSchema {
  type: unknown;
  ephemeral?: boolean;
}
export interface TableSchema {
  columns: Record<string, ColumnSchema>;
  isRoot?: boolean;
}
export interface DbSchema {
  name: string;
  version?: string;
  cksum?: string;
  tables: Record<string, TableSchema>;
}

export interface OvsdbSnapshot {
  schema: DbSchema;
  tables: Tables;
}

export class OvsdbFileError extends Error {}

const HEADER = /^OVSDB JSON (\d{1,10}) ([0-9a-f]{40})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The records of a standalone file, each checked against its header's length and sha1. */
export function readRecords(bytes: Buffer): unknown[] {
  const records: unknown[] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0 || nl - at > 100) throw new OvsdbFileError(`record ${records.length + 1} at byte ${at}: no "OVSDB JSON" header line`);
    const header = bytes.subarray(at, nl).toString('latin1');
    const m = HEADER.exec(header);
    if (m === null) throw new OvsdbFileError(`record ${records.length + 1} at byte ${at}: expected "OVSDB JSON <length> <sha1>", got ${JSON.stringify(header.slice(0, 40))}`);
    const length = Number(m[1]);
    const start = nl + 1;
    const end = start + length;
    if (end > bytes.length) throw new OvsdbFileError(`record ${records.length + 1}: truncated (${bytes.length - start} of ${length} bytes)`);
    const body = bytes.subarray(start, end);
    const sha1 = createHash('sha1').update(body).digest('hex');
    if (sha1 !== m[2]) throw new OvsdbFileError(`record ${records.length + 1}: its content does not match its sha1 (the file was changed)`);
    try {
      records.push(JSON.parse(body.toString('utf8')));
    } catch {
      throw new OvsdbFileError(`record ${records.length + 1}: not JSON`);
    }
    at = end;
    if (bytes[at] === 0x0a) at += 1;
  }
  return records;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseSchema(v: unknown): DbSchema {
  if (!isObject(v) || typeof v.name !== 'string' || !isObject(v.tables)) throw new OvsdbFileError('record 1 is not a database schema (name, tables)');
  for (const [t, ts] of Object.entries(v.tables)) {
    if (!isObject(ts) || !isObject(ts.columns)) throw new OvsdbFileError(`schema table ${JSON.stringify(t.slice(0, 60))} has no columns`);
  }
  return v as unknown as DbSchema;
}

/** A backup: the schema and its one transaction of every row, checked against the schema. */
export function parseSnapshot(bytes: Buffer): OvsdbSnapshot {
  const records = readRecords(bytes);
  if (records.length === 0) throw new OvsdbFileError('empty file');
  const schema = parseSchema(records[0]);
  if (records.length > 2) throw new OvsdbFileError(`${records.length - 1} transactions: a backup holds exactly one (this looks like a live database file, not an \`ovsdb-client backup\`)`);
  const txn = records[1] ?? {};
  if (!isObject(txn)) throw new OvsdbFileError('record 2 is not a transaction');
  const tables: Tables = {};
  for (const [name, rows] of Object.entries(txn)) {
    if (name.startsWith('_')) continue; // _date, _comment, _is_diff
    const ts = schema.tables[name];
    if (ts === undefined) throw new OvsdbFileError(`table ${JSON.stringify(name.slice(0, 60))} is not in the schema`);
    if (!isObject(rows)) throw new OvsdbFileError(`table ${name}: rows are not an object`);
    const out: Record<string, Row> = {};
    for (const [uuid, row] of Object.entries(rows)) {
      if (!UUID.test(uuid)) throw new OvsdbFileError(`table ${name}: ${JSON.stringify(uuid.slice(0, 60))} is not a row UUID`);
      if (!isObject(row)) throw new OvsdbFileError(`table ${name} row ${uuid}: a deleted or malformed row (a backup holds whole rows)`);
      for (const col of Object.keys(row)) {
        if (ts.columns[col] === undefined) throw new OvsdbFileError(`table ${name} row ${uuid}: column ${JSON.stringify(col.slice(0, 60))} is not in the schema`);
      }
      out[uuid] = row;
    }
    tables[name] = out;
  }
  return { schema, tables };
}

/** Row counts per table (tables without rows left out), for reports and refusals. */
export function rowCounts(tables: Tables): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [t, rows] of Object.entries(tables)) {
    const n = Object.keys(rows).length;
    if (n > 0) out[t] = n;
  }
  return out;
}
