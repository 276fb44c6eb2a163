/**
 * Native mode (`tls.mode: native`): ovsdb-server's own TLS instead of stunnel. The same PKI files
 * and the same TLS policy as stunnel's (TLS 1.2, ECDHE + AES-GCM, set explicitly: OVSDB's defaults
 * allow more). The Southbound serves chassis on `ports.sb` from its Connection table with
 * role=ovn-controller, so it sees each chassis's certificate and RBAC keeps a chassis off the
 * other chassis' Chassis, Chassis_Private and Encap rows (OVN's RBAC still lets any chassis claim
 * a Port_Binding); ovn-northd and cms hosts use `tls.sbAdminPort` (no role), firewalled to them.
 *
 * ovsdb-server, ovn-northd and ovn-controller re-read key, certificate and CA files whose mtime
 * changed, key and certificate only when both did: rotation writes the certificate first, then
 * the key (apply's install-certificate step), so no daemon restarts and no connection drops.
 */
import type { Inventory } from '../inventory/types.js';
import { hostPaths } from '../paths.js';
import { bracketHost } from '../stunnel/endpoint.js';
import { TLS_CIPHERS, TLS_VERSION } from '../stunnel/policy.js';
import type { CentralNode } from './topology.js';

/** The host's key, certificate and CA bundle as an OVS program's options (clients and servers). */
export function nativeTlsFiles(root = '/'): string[] {
  const pki = hostPaths(root).pki;
  return [`--private-key=${pki.key}`, `--certificate=${pki.cert}`, `--ca-cert=${pki.caBundle}`];
}

/** nativeTlsFiles plus the policy: what ovsdb-server gets (its clients take only the files). */
export function nativeTlsArgs(root = '/'): string[] {
  return [...nativeTlsFiles(root), `--ssl-protocols=${TLS_VERSION}`, `--ssl-ciphers=${TLS_CIPHERS.join(':')}`];
}

/** What a client of a native site connects to: the NB, the chassis' SB (RBAC) or the admin SB. */
export type NativeEndpoint = 'nb' | 'sb' | 'sbAdmin';

export function nativePort(inv: Pick<Inventory, 'ports' | 'tls'>, endpoint: NativeEndpoint | 'nbRaft' | 'sbRaft'): number {
  return endpoint === 'sbAdmin' ? inv.tls.sbAdminPort : inv.ports[endpoint];
}

/** `ssl:ADDRESS:PORT` of one central. */
export function sslRemote(c: CentralNode, port: number): string {
  return `ssl:${bracketHost(c.address)}:${port}`;
}

/** `pssl:PORT:ADDRESS`: a central's listener on its primary address. */
export function sslListener(c: CentralNode, port: number): string {
  return `pssl:${port}:${bracketHost(c.address)}`;
}

/**
 * The chassis' Southbound listener, a row of the SB's Connection table and so the same on every
 * central: every address of the host, IPv6 too when a central is reached over IPv6. The central's
 * firewall admits only the site's hosts to it (render/firewall.ts).
 */
export function rbacListener(inv: Pick<Inventory, 'ports'>, centrals: readonly CentralNode[]): string {
  return centrals.some((c) => c.address.includes(':')) ? `pssl:${inv.ports.sb}:[::]` : `pssl:${inv.ports.sb}`;
}

/** The RBAC role OVN's northd defines for chassis (RBAC_Role "ovn-controller"). */
export const CHASSIS_ROLE = 'ovn-controller';
