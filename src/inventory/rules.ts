/**
 * Rules that relate several fields: duplicates across hosts, ports used twice, role combinations,
 * certificate lifetimes. They read the raw document (not zod's output) so they still run when some
 * fields are broken and the user sees every problem in one go; each rule skips values that are
 * not even of the right type (the schema reports those).
 */
import { canonicalAddress } from './addresses.js';
import { DEFAULT_CERTIFICATE_POLICY, DEFAULT_LOOPBACK_PORTS, DEFAULT_PORTS, DEFAULT_SB_ADMIN_PORT, MAX_VALIDITY_DAYS } from './defaults.js';
import type { PathSegment } from './findings.js';

export interface RuleFinding {
  path: PathSegment[];
  message: string;
}

export interface RuleResult {
  errors: RuleFinding[];
  warnings: RuleFinding[];
}

type Rec = Record<string, unknown>;

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What the rules need of one host, read leniently. */
interface HostView {
  index: number;
  name?: string;
  addresses: { value: string; index: number }[];
  /** undefined when `roles` is not a list (the schema reports it). */
  roles?: string[];
  encap: unknown;
  encapIp?: string;
  explicitSystemId?: string;
  dnsNames: { value: string; index: number }[];
}

function viewHost(raw: unknown, index: number): HostView | undefined {
  if (!isRecord(raw)) return undefined;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const addresses = Array.isArray(raw.addresses)
    ? raw.addresses.flatMap((value: unknown, i) => (typeof value === 'string' ? [{ value, index: i }] : []))
    : [];
  return {
    index,
    name: str(raw.name),
    addresses,
    roles: Array.isArray(raw.roles) ? raw.roles.filter((r): r is string => typeof r === 'string') : undefined,
    encap: raw.encap,
    encapIp: isRecord(raw.encap) ? str(raw.encap.ip) : undefined,
    explicitSystemId: str(raw.systemId),
    dnsNames: Array.isArray(raw.dnsNames)
      ? raw.dnsNames.flatMap((value: unknown, i) => (typeof value === 'string' ? [{ value: value.toLowerCase(), index: i }] : []))
      : [],
  };
}

/** `hosts[0] (central1)`: the index finds it in the file, the name tells the reader which one. */
function hostLabel(h: HostView): string {
  return h.name === undefined ? `hosts[${h.index}]` : `hosts[${h.index}] (${h.name})`;
}

/** `allReadable`: every host is a mapping with a list of roles, so a missing central is certain. */
function hostRules(hosts: HostView[], allReadable: boolean, errors: RuleFinding[]): void {
  const firstByName = new Map<string, HostView>();
  const firstByAddress = new Map<string, HostView>();
  const firstBySystemId = new Map<string, { host: HostView; explicit: boolean }>();
  const firstByEncapIp = new Map<string, HostView>();

  for (const h of hosts) {
    const at = (...rest: PathSegment[]): PathSegment[] => ['hosts', h.index, ...rest];

    if (h.name !== undefined) {
      const other = firstByName.get(h.name);
      if (other) errors.push({ path: at('name'), message: `${JSON.stringify(h.name)} is already the name of hosts[${other.index}]` });
      else firstByName.set(h.name, h);
    }

    for (const a of h.addresses) {
      const key = canonicalAddress(a.value);
      const other = firstByAddress.get(key);
      if (other) errors.push({ path: at('addresses', a.index), message: `${a.value} is already an address of ${hostLabel(other)}` });
      else firstByAddress.set(key, h);
    }

    const systemId = h.explicitSystemId ?? h.name;
    if (systemId !== undefined) {
      const explicit = h.explicitSystemId !== undefined;
      const other = firstBySystemId.get(systemId);
      // Two defaulted system-ids clash only when the names clash, which is reported above.
      if (other && (explicit || other.explicit)) {
        const what = explicit ? JSON.stringify(systemId) : `${JSON.stringify(systemId)} (defaulted from name)`;
        errors.push({ path: at('systemId'), message: `${what} is already the system-id of ${hostLabel(other.host)}` });
      } else if (!other) {
        firstBySystemId.set(systemId, { host: h, explicit });
      }
    }

    if (h.encapIp !== undefined) {
      const key = canonicalAddress(h.encapIp);
      const other = firstByEncapIp.get(key);
      if (other) errors.push({ path: at('encap', 'ip'), message: `${h.encapIp} is already the encap IP of ${hostLabel(other)}` });
      else firstByEncapIp.set(key, h);
    }

    if (h.roles !== undefined) {
      h.roles.forEach((role, i) => {
        if (h.roles?.indexOf(role) !== i) errors.push({ path: at('roles', i), message: `${JSON.stringify(role)} is listed twice` });
      });
      const worker = h.roles.includes('worker');
      // A written encap without a usable ip is already reported by the schema.
      if (worker && h.encap === undefined) {
        errors.push({ path: at('encap', 'ip'), message: 'required for a worker' });
      }
      if (h.roles.includes('metadata-agent') && !worker) {
        errors.push({
          path: at('roles'),
          message: 'metadata-agent needs the worker role on the same host (it runs next to ovn-controller)',
        });
      }
    }
  }

  dnsNameRules(hosts, errors);

  if (allReadable && hosts.length > 0 && !hosts.some((h) => h.roles?.includes('central'))) {
    errors.push({ path: ['hosts'], message: 'no host has the central role' });
  }
}

/**
 * A central admits a client to its NB, SB and RAFT ports by the names its certificate carries
 * (stunnel's checkHost), and a certificate carries its host's name and dnsNames: a dnsName that is
 * another host's name would let that host pass as the other, e.g. a worker as a central.
 */
function dnsNameRules(hosts: HostView[], errors: RuleFinding[]): void {
  const owner = new Map<string, HostView>();
  for (const h of hosts) if (h.name !== undefined && !owner.has(h.name.toLowerCase())) owner.set(h.name.toLowerCase(), h);
  for (const h of hosts) {
    for (const d of h.dnsNames) {
      const other = owner.get(d.value);
      if (other !== undefined && other !== h) {
        errors.push({
          path: ['hosts', h.index, 'dnsNames', d.index],
          message: `${JSON.stringify(d.value)} is already a name of ${hostLabel(other)}: certificates are admitted by name, so each name belongs to one host`,
        });
      } else if (other === undefined) {
        owner.set(d.value, h);
      }
    }
  }
}

interface Setting {
  path: PathSegment[];
  value: number;
  explicit: boolean;
}

/** The effective number at `section.key`: written, defaulted, or undefined when written wrongly. */
function numberSetting(doc: Rec, section: string, key: string, fallback: number, valid: (n: number) => boolean): Setting | undefined {
  const sec = doc[section];
  if (sec !== undefined && !isRecord(sec)) return undefined;
  const raw = sec?.[key];
  const path = [section, key];
  if (raw === undefined) return { path, value: fallback, explicit: false };
  return typeof raw === 'number' && valid(raw) ? { path, value: raw, explicit: true } : undefined;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

function isDays(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_VALIDITY_DAYS;
}

/** `ports.nb`, or `ports.nb (the default)` when the user did not write it. */
function describeSetting(s: Setting): string {
  const name = s.path.join('.');
  return s.explicit ? name : `${name} (the default)`;
}

function portRules(doc: Rec, errors: RuleFinding[]): void {
  const seen = new Map<number, Setting>();
  const sections: [string, Readonly<Record<string, number>>][] = [
    ['ports', DEFAULT_PORTS],
    ['loopbackPorts', DEFAULT_LOOPBACK_PORTS],
    // Bound only in native mode: a stunnel site's other ports may use its default.
    ...(isRecord(doc.tls) && (doc.tls.mode === 'native' || doc.tls.sbAdminPort !== undefined) ? [['tls', { sbAdminPort: DEFAULT_SB_ADMIN_PORT }] as [string, Readonly<Record<string, number>>]] : []),
  ];
  for (const [section, defaults] of sections) {
    for (const [key, fallback] of Object.entries(defaults)) {
      const s = numberSetting(doc, section, key, fallback, isPort);
      if (s === undefined) continue;
      const other = seen.get(s.value);
      if (other === undefined) {
        seen.set(s.value, s);
        continue;
      }
      // Report at the value the user wrote: that is the one to change.
      const [here, there] = s.explicit || !other.explicit ? [s, other] : [other, s];
      errors.push({ path: here.path, message: `port ${here.value} is already used by ${describeSetting(there)}` });
    }
  }
}

function certificateRules(doc: Rec, errors: RuleFinding[]): void {
  const get = (key: keyof typeof DEFAULT_CERTIFICATE_POLICY) =>
    numberSetting(doc, 'certificates', key, DEFAULT_CERTIFICATE_POLICY[key], isDays);
  const ca = get('caValidityDays');
  const leaf = get('leafValidityDays');
  const renewal = get('renewalWindowDays');
  const ref = (s: Setting): string => `${String(s.path[1])} (${s.value}${s.explicit ? '' : ', the default'})`;

  // A renewal window as long as the lifetime would renew every certificate on every run.
  if (leaf && renewal && renewal.value >= leaf.value) {
    if (renewal.explicit || !leaf.explicit) {
      errors.push({ path: renewal.path, message: `must be less than ${ref(leaf)}, got ${renewal.value}` });
    } else {
      errors.push({ path: leaf.path, message: `must be more than ${ref(renewal)}, got ${leaf.value}` });
    }
  }
  // A leaf outliving its CA would stop verifying when the CA expires.
  if (ca && leaf && leaf.value > ca.value) {
    if (leaf.explicit || !ca.explicit) {
      errors.push({ path: leaf.path, message: `must not exceed ${ref(ca)}, got ${leaf.value}` });
    } else {
      errors.push({ path: ca.path, message: `must be at least ${ref(leaf)}, got ${ca.value}` });
    }
  }
}

function centralCountWarnings(hosts: HostView[], warnings: RuleFinding[]): void {
  const centrals = hosts.filter((h) => h.roles?.includes('central')).length;
  if (centrals >= 2 && centrals % 2 === 0) {
    warnings.push({ path: [], message: `${centrals} central hosts: RAFT needs an odd number for a useful quorum (3 or 5)` });
  }
  if (centrals > 7) {
    warnings.push({ path: [], message: `${centrals} central hosts: every RAFT write waits for a majority, more than 7 only slows the cluster (use 3 or 5)` });
  }
}

/**
 * The one rule for the metadata agents' settings, used by validate (here) and render: a host with
 * the metadata-agent role needs the `metadataAgent` section. The message, or undefined when fine.
 */
export function metadataSectionProblem(agents: readonly string[], hasSection: boolean): string | undefined {
  if (agents.length === 0 || hasSection) return undefined;
  const which = `${agents.length === 1 ? 'host' : 'hosts'} ${agents.join(', ')} ${agents.length === 1 ? 'has' : 'have'} the metadata-agent role`;
  return `required: ${which}; add metadataAgent: { novaMetadataHost: ... } (novaMetadataPort and workers are optional)`;
}

/**
 * Native TLS: the Southbound's RBAC knows a chassis by its certificate's CN, which is the host's
 * name, and lets it write only the rows named after its system-id: the two must be the same.
 */
function rbacRules(doc: Rec, hosts: HostView[], errors: RuleFinding[]): void {
  if (!isRecord(doc.tls) || doc.tls.mode !== 'native') return;
  const agent = hosts.find((h) => h.roles?.includes('metadata-agent') ?? false);
  if (agent !== undefined && isRecord(doc.metadataAgent) && doc.metadataAgent.image !== undefined) {
    errors.push({
      path: ['metadataAgent', 'image'],
      message: `with tls.mode native the metadata agent runs as the distribution's process (host ${agent.name ?? `hosts[${agent.index}]`}): its container would need the host's private key mounted, which it does not get`,
    });
  }
  for (const h of hosts) {
    if (h.explicitSystemId === undefined || h.name === undefined || h.explicitSystemId === h.name) continue;
    if (!(h.roles?.includes('worker') ?? false) && !(h.roles?.includes('metadata-agent') ?? false)) continue;
    errors.push({
      path: ['hosts', h.index, 'systemId'],
      message: `with tls.mode native the system-id must be the host name ${JSON.stringify(h.name)}: Southbound RBAC admits a chassis's writes by its certificate's name (drop systemId or use stunnel mode)`,
    });
  }
}

/** Runs every cross-field rule over the raw document (a mapping; other shapes never get here). */
export function checkRules(doc: Rec): RuleResult {
  const result: RuleResult = { errors: [], warnings: [] };
  const hosts = Array.isArray(doc.hosts)
    ? doc.hosts.flatMap((h: unknown, i) => {
        const v = viewHost(h, i);
        return v === undefined ? [] : [v];
      })
    : [];
  const rawCount = Array.isArray(doc.hosts) ? doc.hosts.length : 0;
  hostRules(hosts, hosts.length === rawCount && hosts.every((h) => h.roles !== undefined), result.errors);
  portRules(doc, result.errors);
  certificateRules(doc, result.errors);
  rbacRules(doc, hosts, result.errors);
  centralCountWarnings(hosts, result.warnings);
  const agents = hosts.filter((h) => h.roles?.includes('metadata-agent')).map((h) => h.name ?? `hosts[${h.index}]`);
  const metadata = metadataSectionProblem(agents, doc.metadataAgent !== undefined);
  if (metadata !== undefined) result.errors.push({ path: ['metadataAgent'], message: metadata });
  return result;
}
