/**
 * Container image roles: which of our RPMs each role's image installs. Nothing else of ours goes
 * in (no -devel, no test tools, no sources).
 */

/**
 * The local base image every role image starts from (`build base-image`): rpm installs our RPMs;
 * the libraries are what the OVS/OVN binaries link (see `rpm -qpR`).
 */
export const DEFAULT_BASE_PACKAGES = ['rpm', 'libssl3', 'libcap-ng0', 'libunbound8', 'procps', 'iproute2'];

export const ROLE_NAMES = ['openvswitch', 'ovn-central', 'ovn-controller', 'ovn-metadata-agent'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export interface RoleDef {
  name: RoleName;
  /** RPM package names installed in the image. */
  packages: readonly string[];
  /** The package whose version tags the image. */
  versionFrom: string;
  description: string;
  /** Built without --role. The metadata agent is not: it installs Neutron from the base's repositories. */
  byDefault: boolean;
}

export const ROLES: Readonly<Record<RoleName, RoleDef>> = {
  openvswitch: {
    name: 'openvswitch',
    packages: ['openvswitch'],
    versionFrom: 'openvswitch',
    description: 'ovsdb-server and ovs-vswitchd (an Open vSwitch node)',
    byDefault: true,
  },
  'ovn-central': {
    name: 'ovn-central',
    packages: ['openvswitch', 'ovn', 'ovn-central'],
    versionFrom: 'ovn',
    description: 'OVN Northbound and Southbound databases (clustered ovsdb-server) and ovn-northd',
    byDefault: true,
  },
  'ovn-controller': {
    name: 'ovn-controller',
    packages: ['openvswitch', 'ovn', 'ovn-host'],
    versionFrom: 'ovn',
    description: 'a chassis: ovsdb-server, ovs-vswitchd and ovn-controller',
    byDefault: true,
  },
  'ovn-metadata-agent': {
    name: 'ovn-metadata-agent',
    // ovn: ovn-sbctl, with which the health check reads the agent's Southbound registration.
    packages: ['openvswitch', 'python3-openvswitch', 'ovn'],
    versionFrom: 'ovn',
    description: "Neutron's OVN metadata agent (from the base's repositories) with our OVS/OVN tools and Python bindings",
    byDefault: false,
  },
};

/** The roles built without --role: default ones whose packages are all in `available`. */
export function rolesWithPackages(available: ReadonlySet<string>): RoleName[] {
  return ROLE_NAMES.filter((r) => ROLES[r].byDefault && ROLES[r].packages.every((p) => available.has(p)));
}

export function missingPackages(role: RoleName, available: ReadonlySet<string>): string[] {
  return ROLES[role].packages.filter((p) => !available.has(p));
}
