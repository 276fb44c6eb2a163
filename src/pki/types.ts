/**
 * Certificate kinds and the PKI's public contract. The CA signs three kinds of leaf: central
 * servers (serverAuth, SAN = every name/IP the central is reached by), chassis clients
 * (clientAuth, CN = the chassis system-id) and metadata-agent clients (clientAuth).
 */

export type LeafRole = 'central' | 'worker' | 'metadata-agent';
export const LEAF_ROLES: readonly LeafRole[] = ['central', 'worker', 'metadata-agent'];

export type CertStatus = 'valid' | 'revoked' | 'expired' | 'superseded';

/** One row of the PKI directory's index of issued certificates. */
export interface IndexEntry {
  /** Lower-case hex, positive, 128-bit. */
  serial: string;
  name: string;
  subject: string;
  role: LeafRole;
  host: string;
  notBefore: string; // ISO 8601
  notAfter: string; // ISO 8601
  status: CertStatus;
  revokedAt?: string;
  /** Serial of the CA that issued it (CA rollover keeps several). */
  issuer: string;
}

export interface IssueRequest {
  name: string;
  role: LeafRole;
  /** DNS names and IP addresses for the subjectAltName. */
  sans?: string[];
  /** Host the certificate belongs to (index column); defaults to `name`. */
  host?: string;
  validityDays?: number;
  keyBits?: number;
}

export interface IssuedCertificate {
  serial: string;
  name: string;
  role: LeafRole;
  notAfter: Date;
  certPem: string;
  certPath: string;
  /** Absent for `sign-csr`: the host keeps its own key. */
  keyPath?: string;
}
