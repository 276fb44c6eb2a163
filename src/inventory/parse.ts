/** The throwing entry points: a valid Inventory or an InputError listing every problem. */
import { InputError } from '../errors.js';
import { readInputText } from '../input-file.js';
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

export async function readSiteFile(file: string): Promise<string> {
  return readInputText(file, { what: 'site file' });
}

export async function loadInventory(file: string): Promise<ParsedInventory> {
  return parseInventory(await readSiteFile(file), file);
}
