/**
 * systemd units of a host's services, and the drop-ins that keep the distribution's own units
 * (which would run the same daemons on the same files) from starting while ovn-deploy manages
 * the host.
 */
import type { BundleService } from '../bundle/manifest.js';
import { hostRenderedPaths } from '../paths.js';
import { WAIT_FOR_MS } from '../supervisor/types.js';
import type { HostService, PreStart } from './services.js';
import { hostTemplate } from './templates.js';

/** Units of Debian's (and Fedora's) packages that start OVN, OVS or stunnel daemons. */
export const DISTRIBUTION_UNITS = [
  'neutron-ovn-metadata-agent.service',
  'openvswitch-switch.service',
  'openvswitch.service',
  'ovn-central.service',
  'ovn-controller.service',
  'ovn-host.service',
  'ovn-northd.service',
  'ovn-ovsdb-server-nb.service',
  'ovn-ovsdb-server-sb.service',
  'ovs-vswitchd.service',
  'ovsdb-server.service',
  'stunnel4.service',
] as const;

const PLAIN_WORD = /^[A-Za-z0-9_/.,:=+@-]+$/;

/**
 * One ExecStart/Environment word: `%` is a specifier and `$` an expansion in unit files, so both
 * are doubled; anything with blanks or quotes is double-quoted with C escapes.
 */
export function systemdWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (PLAIN_WORD.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

const WAIT_STEP_S = 0.05;

/** The unit's side of BundleService.waitFor: the same bound as the own supervisor's, then start anyway. */
const waitForSocket = (socket: string): PreStart => ({
  argv: ['/bin/sh', '-c', `i=0; until [ -S "$1" ] || [ "$i" -ge ${WAIT_FOR_MS / 1000 / WAIT_STEP_S} ]; do sleep ${WAIT_STEP_S}; i=$((i+1)); done`, 'wait-for', socket],
  why: `${socket} first (made by the daemon this one needs), at most ${WAIT_FOR_MS / 1000} s: without it the daemon retries only a second later`,
});

export function renderUnit(site: string, host: string, svc: HostService): string {
  const spec: BundleService = svc.spec;
  const rp = hostRenderedPaths();
  const deps = spec.after.map(rp.unitName);
  return hostTemplate('service.hbs')({
    site,
    host,
    description: svc.description,
    purpose: svc.purpose,
    after: deps,
    requires: deps.join(' '),
    environment: Object.entries(spec.env)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => systemdWord(`${k}=${v}`)),
    execStart: spec.argv.map(systemdWord).join(' '),
    preStart: [...(svc.preStart ?? []), ...spec.waitFor.map(waitForSocket)].map((p) => ({ why: p.why, command: p.argv.map(systemdWord).join(' ') })),
    reload: spec.reloadSignal === 'SIGHUP',
    runtime: svc.dirs.runtime.join(' '),
    state: svc.dirs.state.join(' '),
    logs: svc.dirs.logs.join(' '),
    configuration: svc.dirs.configuration.join(' '),
  });
}

export function renderDropIn(site: string, host: string, unit: string, root = '/'): string {
  return hostTemplate('dropin.conf.hbs')({ site, host, unit, marker: hostRenderedPaths(root).managedMarker });
}

export function renderManagedMarker(site: string, host: string): string {
  return hostTemplate('managed-marker.hbs')({ site, host });
}
