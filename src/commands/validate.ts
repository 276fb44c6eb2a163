/** `ovn-deploy validate FILE`: reports every problem of a site file, or a one-line summary. */
import { Command } from './commander.js';
import { ExitError, InputError, formatProblem } from '../errors.js';
import type { Inventory, InventoryFinding, InventoryReport } from '../inventory/index.js';

/** The inventory's zod schema and YAML parser: loaded by the action. */
const inventory = () => import('../inventory/index.js');

export interface ValidateOptions {
  json?: boolean;
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export async function summarize(inv: Inventory): Promise<string> {
  const { hostsWithRole } = await inventory();
  return [
    `site ${inv.site}`,
    count(hostsWithRole(inv, 'central').length, 'central', 'centrals'),
    count(hostsWithRole(inv, 'worker').length, 'worker', 'workers'),
    count(hostsWithRole(inv, 'metadata-agent').length, 'metadata agent', 'metadata agents'),
  ].join(', ');
}

/** The report as `--json` prints it: findings with path, message and, when known, line/column. */
export function reportJson(report: InventoryReport): object {
  const plain = (f: InventoryFinding) => ({
    path: f.path,
    message: f.message,
    ...(f.line === undefined ? {} : { line: f.line }),
    ...(f.column === undefined ? {} : { column: f.column }),
  });
  return { ok: report.errors.length === 0, errors: report.errors.map(plain), warnings: report.warnings.map(plain) };
}

async function readReport(file: string): Promise<InventoryReport> {
  const { checkInventoryText, readSiteFile } = await inventory();
  try {
    return checkInventoryText(await readSiteFile(file));
  } catch (err) {
    // An unreadable file is one more finding, so --json still prints a report.
    if (err instanceof InputError) return { errors: err.problems.map((p) => ({ path: p.path, message: p.message })), warnings: [] };
    throw err;
  }
}

export async function runValidate(file: string, opts: ValidateOptions): Promise<void> {
  const report = await readReport(file);
  const { findingToProblem, formatFinding } = await inventory();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(reportJson(report), null, 2)}\n`);
  } else {
    for (const w of report.warnings) process.stderr.write(`${file}: warning: ${formatFinding(w)}\n`);
    for (const e of report.errors) process.stderr.write(`${formatProblem(findingToProblem(e, file))}\n`);
  }
  if (report.errors.length > 0) {
    throw new ExitError(`${file} is not valid: ${count(report.errors.length, 'error', 'errors')}`, 2);
  }
  if (!opts.json && report.inventory !== undefined) process.stdout.write(`${file}: valid: ${await summarize(report.inventory)}\n`);
}

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a site inventory and list every problem (exit code 2 if there is any)')
    .argument('<file>', 'the site file, e.g. site.yaml')
    .option('--json', 'print the findings as JSON: {ok, errors: [{path, message, line}], warnings}')
    .action(async (file: string, opts: ValidateOptions) => runValidate(file, opts));
}
