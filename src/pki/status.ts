/**
 * `pki status`: what expires when, what is due for renewal, and whether the CRL is still
 * current. The report is computed by a pure function from the index, CA and CRL; the table is
 * rendered from the report.
 */
import forge from './forge.js';
import { pkiPaths } from '../paths.js';
import { DAY_MS, loadCa } from './ca.js';
import { readIndex } from './cert-index.js';
import { crlStatus, readCrlInfo, type CrlInfo } from './crl.js';
import type { IndexEntry, PkiStatusReport, PkiStatusRow } from './types.js';
import { checkPositiveInt, throwIfProblems } from './validate.js';
import type { Problem } from '../errors.js';
import { table } from '../ui/table.js';

/** Warn this many days before the CRL's nextUpdate. */
export const CRL_WARN_DAYS = 7;

interface CaFacts {
  name: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * Inside the renewal window: the last `windowDays` before notAfter, or by default the last third
 * of the certificate's lifetime (renewing at two thirds leaves time to roll it out).
 */
export function isDue(notBefore: Date, notAfter: Date, now: Date, windowDays?: number): boolean {
  const windowMs = windowDays === undefined ? (notAfter.getTime() - notBefore.getTime()) / 3 : windowDays * DAY_MS;
  return now.getTime() >= notAfter.getTime() - windowMs;
}

function row(
  base: Omit<PkiStatusRow, 'daysLeft' | 'due' | 'status'> & { status: PkiStatusRow['status'] },
  now: Date,
  windowDays: number | undefined,
): PkiStatusRow {
  const notAfter = new Date(base.notAfter);
  const expired = notAfter.getTime() <= now.getTime();
  const status = base.status === 'valid' && expired ? 'expired' : base.status;
  const inUse = status === 'valid' || status === 'expired';
  return {
    ...base,
    status,
    daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
    due: inUse && isDue(new Date(base.notBefore), notAfter, now, windowDays),
  };
}

export function computeStatus(
  dir: string,
  ca: CaFacts,
  entries: readonly IndexEntry[],
  crl: CrlInfo | undefined,
  now: Date,
  renewalWindowDays?: number,
): PkiStatusReport {
  const rows: PkiStatusRow[] = [
    row(
      { name: ca.name, role: 'ca', host: '-', serial: ca.serial, notBefore: ca.notBefore.toISOString(), notAfter: ca.notAfter.toISOString(), status: 'valid' },
      now,
      renewalWindowDays,
    ),
    ...entries.map((e) =>
      row({ name: e.name, role: e.role, host: e.host, serial: e.serial, notBefore: e.notBefore, notAfter: e.notAfter, status: e.status }, now, renewalWindowDays),
    ),
  ];
  const warnings: string[] = [];
  for (const r of rows) {
    if (!r.due) continue;
    const what = r.role === 'ca' ? `the CA (${r.name})` : `certificate ${r.name} (${r.role}, serial ${r.serial})`;
    const host = r.host === r.name || r.role === 'ca' ? '' : ` --host ${r.host}`;
    const fix = r.role === 'ca' ? 'plan a CA rollover' : `renew with \`ovn-deploy pki issue --dir ${dir} --name ${r.name} --role ${r.role}${host}\``;
    warnings.push(
      r.status === 'expired'
        ? `${what} expired on ${r.notAfter}: ${fix}`
        : `${what} expires in ${r.daysLeft} day(s) on ${r.notAfter}: ${fix}`,
    );
  }
  const refresh = `run \`ovn-deploy pki crl --dir ${dir}\``;
  let crlReport: PkiStatusReport['crl'] = null;
  if (crl === undefined) {
    warnings.push(`no CRL at ${pkiPaths(dir).crl}: peers that check revocation reject everyone; ${refresh}`);
  } else {
    crlReport = crlStatus(crl, now);
    const next = new Date(crlReport.nextUpdate);
    if (next.getTime() <= now.getTime()) {
      warnings.push(`the CRL is stale since ${crlReport.nextUpdate}: every client is rejected; ${refresh}`);
    } else if (next.getTime() - now.getTime() <= CRL_WARN_DAYS * DAY_MS) {
      warnings.push(`the CRL's next update is due in ${crlReport.daysLeft} day(s) (${crlReport.nextUpdate}); ${refresh}`);
    }
  }
  return { dir, now: now.toISOString(), rows, crl: crlReport, warnings };
}

export async function pkiStatus(dir: string, opts: { now?: Date; renewalWindowDays?: number } = {}): Promise<PkiStatusReport> {
  const problems: Problem[] = [];
  checkPositiveInt(opts.renewalWindowDays, 'renewalWindowDays', problems);
  throwIfProblems(problems);
  const ca = await loadCa(dir);
  const cn = ca.cert.subject.getField('CN') as { value?: string } | null;
  let caName = cn?.value ?? 'CA';
  try {
    caName = forge.util.decodeUtf8(caName); // forge keeps UTF8String values as raw bytes
  } catch {
    /* not UTF-8: shown as is */
  }
  const [entries, crl] = await Promise.all([readIndex(dir), readCrlInfo(dir)]);
  return computeStatus(
    dir,
    { name: caName, serial: ca.serial, notBefore: ca.notBefore, notAfter: ca.notAfter },
    entries,
    crl,
    opts.now ?? new Date(),
    opts.renewalWindowDays,
  );
}

const HEADERS = ['NAME', 'ROLE', 'HOST', 'SERIAL', 'NOT-AFTER', 'DAYS', 'STATUS'];

/** The aligned table `pki status` prints (warnings go to stderr separately). */
export function renderStatusTable(report: PkiStatusReport): string {
  const lines = report.rows.map((r) => [
    r.name,
    r.role,
    r.host,
    r.serial,
    r.notAfter.slice(0, 10),
    String(r.daysLeft),
    r.due ? `${r.status}, renew` : r.status,
  ]);
  const out = table(HEADERS, lines);
  if (report.crl !== null) {
    out.push('', `CRL #${report.crl.crlNumber}: ${report.crl.revoked} revoked, next update ${report.crl.nextUpdate} (${report.crl.daysLeft} days)`);
  }
  return `${out.join('\n')}\n`;
}
