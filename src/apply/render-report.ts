/** The human form of an apply report: the changes, the health checks, and what to do next. */
import type { ApplyReport } from './report.js';

export function renderApplyReport(r: ApplyReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? 'would change' : 'changed';
  if (r.changes.length === 0) lines.push(`${r.host}: nothing ${r.dryRun ? 'to change' : 'changed'}`);
  else {
    lines.push(`${r.host}: ${verb} ${r.changes.length}:`);
    for (const c of r.changes) lines.push(`  ${c.kind.padEnd(11)} ${c.action.padEnd(14)} ${c.target}`);
  }
  if (r.health.length > 0) {
    lines.push('health:');
    for (const h of r.health) lines.push(`  ${h.ok ? 'ok  ' : 'FAIL'} ${h.check}: ${h.detail}`);
  }
  if (r.status === 'needs-certificate') {
    const renewal = r.changes.some((c) => c.kind === 'certificate' && c.action === 'renewal-requested');
    const why = renewal ? ' for its next key (renewal; the current certificate keeps serving until then)' : '';
    lines.push('', `${r.host} needs a signed certificate${why}. Save this CSR as ${r.host}.csr on the admin machine:`, '');
    if (r.csr !== undefined) lines.push(r.csr.trimEnd(), '');
    lines.push('sign it there (<PKI> is your PKI directory):', `  ${r.signCommand ?? ''}`, `then on this host: ovn-deploy apply --bundle DIR --certificate ${r.host}.pem`);
  } else {
    lines.push(`status: ${r.status}${r.dryRun ? ' (dry run)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
