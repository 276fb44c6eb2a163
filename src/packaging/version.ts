/**
 * Versions read from the sources (autoconf's AC_INIT) and the one compatibility rule between them:
 * OVN needs an Open vSwitch at least as new as the one its `ovs` submodule pins.
 */

export interface AcInit {
  name: string;
  version: string;
}

/** `AC_INIT(openvswitch, 3.1.0, bugs@...)` or `AC_INIT([ovn], [24.03.1], ...)`. */
export function parseAcInit(configureAc: string): AcInit | undefined {
  const m = /AC_INIT\(\s*\[?([\w.-]+)\]?\s*,\s*\[?([0-9][\w.~+-]*)\]?/.exec(configureAc);
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  return { name: m[1], version: m[2] };
}

/** Numeric comparison of dotted versions ("3.10.0" > "3.9.1"); non-numeric tails are ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/[.~+-]/).map((p) => Number.parseInt(p, 10)).map((n) => (Number.isNaN(n) ? 0 : n));
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/**
 * The OVS version a pinned submodule commit stands for, as a minimum: a release pin (3.1.1) needs
 * that release series (>= 3.1.0); a development pin (3.3.90, master after 3.3) needs 3.3.90 or newer.
 */
export function minimumFromPin(pinnedVersion: string): string {
  const [maj = '0', min = '0', patch = '0'] = pinnedVersion.split('.');
  return Number.parseInt(patch, 10) >= 90 ? `${maj}.${min}.${Number.parseInt(patch, 10)}` : `${maj}.${min}.0`;
}

/**
 * What each OVN release series' `ovs` submodule pins at its .0 tag (read from ovn-org/ovn: the
 * submodule commit's AC_INIT version), for OVN sources that carry no submodule content (a git
 * checkout without the OVS repository, a tarball without `ovs/`).
 */
export const OVN_PINNED_OVS: Readonly<Record<string, string>> = {
  '21.03': '2.15.90',
  '21.06': '2.15.90',
  '21.09': '2.16.90',
  '21.12': '2.16.90',
  '22.03': '2.16.90',
  '22.06': '2.17.90',
  '22.09': '2.17.90',
  '22.12': '3.0.90',
  '23.03': '3.1.0',
  '23.06': '3.1.1',
  '23.09': '3.2.1',
  '24.03': '3.3.0',
  '24.09': '3.4.0',
  '25.03': '3.5.0',
  '25.09': '3.6.0',
  '26.03': '3.7.0',
};

export interface OvsRequirement {
  minimum: string;
  /** Where the minimum comes from, for the error message. */
  basis: string;
}

/** The minimum OVS for an OVN version: from its pinned submodule if known, else from the table. */
export function ovsRequirement(ovnVersion: string, pinnedOvsVersion?: string): OvsRequirement | undefined {
  if (pinnedOvsVersion !== undefined) {
    return { minimum: minimumFromPin(pinnedOvsVersion), basis: `its ovs submodule pins OVS ${pinnedOvsVersion}` };
  }
  const series = ovnVersion.split('.').slice(0, 2).join('.');
  const pinned = OVN_PINNED_OVS[series];
  if (pinned === undefined) return undefined;
  return { minimum: minimumFromPin(pinned), basis: `OVN ${series}.0's ovs submodule pins OVS ${pinned}` };
}

/** A problem message when `ovsVersion` is too old for the OVN given, else undefined. */
export function ovsTooOld(ovsVersion: string, ovnVersion: string, req: OvsRequirement | undefined): string | undefined {
  if (req === undefined) return undefined;
  if (compareVersions(ovsVersion, req.minimum) >= 0) return undefined;
  return (
    `Open vSwitch ${ovsVersion} is too old for OVN ${ovnVersion}: it needs OVS >= ${req.minimum} (${req.basis}). ` +
    `Give a newer --ovs-source, or leave --ovs-source out to build the OVS that OVN pins`
  );
}
