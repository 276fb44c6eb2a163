/**
 * When a certificate or a CRL needs attention. Pure functions of dates.
 */

export const DAY_MS = 86_400_000;
/**
 * A certificate with less than this left is due whatever its lifetime: the renewal timer runs
 * daily and may fail a few times before someone notices, so a week leaves room to fix it.
 */
export const MIN_RENEWAL_DAYS = 7;
/** Refresh a CRL this long before its nextUpdate at the latest (stale CRLs reject every client). */
export const CRL_REFRESH_DAYS = 7;

/**
 * Due for renewal: inside the last `windowDays` before notAfter when given; by default inside the
 * last third of the lifetime (renewing at two thirds leaves time to roll it out) or with fewer
 * than MIN_RENEWAL_DAYS left.
 */
export function leafDue(notBefore: Date, notAfter: Date, now: Date, windowDays?: number): boolean {
  const left = notAfter.getTime() - now.getTime();
  if (windowDays !== undefined) return left <= windowDays * DAY_MS;
  const third = (notAfter.getTime() - notBefore.getTime()) / 3;
  return left <= Math.max(third, MIN_RENEWAL_DAYS * DAY_MS);
}

/** Whole days until `when` (negative once past). */
export function daysUntil(when: Date, now: Date): number {
  return Math.floor((when.getTime() - now.getTime()) / DAY_MS);
}

/**
 * A CRL to re-sign now: within CRL_REFRESH_DAYS of its nextUpdate, or within the last third of
 * its period (whichever comes first), or already stale.
 */
export function crlNeedsRefresh(thisUpdate: Date, nextUpdate: Date, now: Date): boolean {
  const period = nextUpdate.getTime() - thisUpdate.getTime();
  return nextUpdate.getTime() - now.getTime() <= Math.max(CRL_REFRESH_DAYS * DAY_MS, period / 3);
}

/**
 * Where a CA stands (SPIRE's schedule): past half its lifetime the next CA should be prepared
 * (`certs ca-rollover`), with a sixth or less left it is critical: every leaf it signed dies with it.
 */
export function caStage(notBefore: Date, notAfter: Date, now: Date): 'ok' | 'prepare' | 'critical' {
  const life = notAfter.getTime() - notBefore.getTime();
  const left = notAfter.getTime() - now.getTime();
  if (left <= life / 6) return 'critical';
  if (left <= life / 2) return 'prepare';
  return 'ok';
}
