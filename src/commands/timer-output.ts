/**
 * What `certs timer` and `backup --timer` do with a timer spec: the cron line, or the two units
 * printed, or written into a directory (changed files only), then how to enable them.
 */
import type { TimerSpec } from '../certs/timer.js';
import { out } from './cli-io.js';

export async function emitTimer(spec: TimerSpec, o: { cron?: boolean; outDir?: string }): Promise<void> {
  const { RENEWAL_JOB, renderCronLine, renderRenewalUnits } = await import('../certs/timer.js');
  if (o.cron === true) {
    out(renderCronLine(spec));
    return;
  }
  const files = renderRenewalUnits(spec);
  if (o.outDir === undefined) {
    for (const [name, f] of files) out(`# ${name}\n${String(f.content)}`);
    return;
  }
  const { applyFiles } = await import('../fsx.js');
  const r = await applyFiles(o.outDir, files);
  for (const f of r.written) out(`wrote ${f}`);
  for (const f of r.unchanged) out(`unchanged ${f}`);
  out(`enable it with: systemctl daemon-reload && systemctl enable --now ${(spec.job ?? RENEWAL_JOB).units.timer}`);
}
