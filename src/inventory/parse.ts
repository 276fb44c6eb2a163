/** The throwing entry points: a valid Inventory or an InputError listing every problem. */
import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';
import { checkInventoryData, checkInventoryText, type InventoryReport } from './check.js';
import { findingToProblem, formatFinding } from './findings.js';
import type { ParsedInventory } from './types.js';

function accept(report: InventoryReport, file: string): ParsedInventory {
  if (report.inventory === undefined || report.errors.length > 0) {
    throw new InputError(report.errors.map((f) => findingToProblem(f, file)));
  }
  return { inventory: report.inventory, file, warnings: report.warnings.map(formatFinding) };
}

/** Parses the text of a site file; `file` only names it in messages. */
export function parseInventory(text: string, file: string): ParsedInventory {
  return accept(checkInventoryText(text), file);
}

/** Validates an inventory built in code (the sandbox's) by the same rules as a site file. */
export function validateInventory(data: unknown, file = '(inventory)'): ParsedInventory {
  return accept(checkInventoryData(data), file);
}

/** Why a file could not be read, in words rather than errno names. */
export function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, expected a site file';
  return err instanceof Error ? err.message : String(err);
}

export async function readSiteFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new InputError([{ file, path: '', message: `cannot read the site file: ${describeReadError(err)}` }]);
  }
}

export async function loadInventory(file: string): Promise<ParsedInventory> {
  return parseInventory(await readSiteFile(file), file);
}
