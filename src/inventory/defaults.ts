/**
 * Defaults a site file may leave out. One place, so the schema, the example written by `init`
 * and the sandbox inventory cannot drift apart.
 */
import type { CertificatePolicy, LoopbackPorts, Ports } from './types.js';

export const DEFAULT_SITE = 'ovn';

/** The TLS ports OVN users expect (the IANA-registered OVSDB port family). */
export const DEFAULT_PORTS: Readonly<Ports> = { nb: 6641, sb: 6642, nbRaft: 6643, sbRaft: 6644 };

/**
 * Native TLS: the Southbound's port without RBAC (ovn-northd, cms hosts). Not one of OVN's
 * registered ports; 6645/6646 are ovn-ic's.
 */
export const DEFAULT_SB_ADMIN_PORT = 6648;

/** Plaintext ovsdb-server ports on 127.0.0.1: the TLS port + 10000, easy to tell apart in `ss`. */
export const DEFAULT_LOOPBACK_PORTS: Readonly<LoopbackPorts> = { nb: 16641, sb: 16642, nbRaft: 16643, sbRaft: 16644 };

/** A third of the leaf lifetime as renewal window leaves months to notice a failing renewal. */
export const DEFAULT_CERTIFICATE_POLICY: Readonly<CertificatePolicy> = {
  caValidityDays: 3650,
  leafValidityDays: 730,
  renewalWindowDays: 243,
  caKeyBits: 3072,
  leafKeyBits: 2048,
};

/** RSA sizes worth supporting: below 2048 is broken, above 4096 only slows every handshake. */
export const KEY_BITS = [2048, 3072, 4096] as const;

export const DEFAULT_SSH_USER = 'root';
export const DEFAULT_SSH_PORT = 22;

/** 100 years is plenty, and keeps notAfter far from the X.509 year-9999 limit. */
export const MAX_VALIDITY_DAYS = 36500;

/** nova-api's metadata service port, and a small agent worker pool (Neutron's default is CPUs / 2). */
export const DEFAULT_NOVA_METADATA_PORT = 8775;
export const DEFAULT_METADATA_WORKERS = 2;
