/**
 * Certificate kinds and the PKI's public contract. The CA signs three kinds of leaf: central
 * servers (serverAuth, SAN = every name/IP the central is reached by), chassis clients
 * (clientAuth, CN = the chassis system-id), metadata-agent clients (clientAuth) and Northbound
 * clients (`cms`: clientAuth; the only non-central identity a central's NB admits).
 */

export type LeafRole = 'central' | 'worker' | 'metadata-agent' | 'cms';
export const LEAF_ROLES: readonly LeafRole[] = ['central', 'worker', 'metadata-agent', 'cms'];

/** RFC 5280 CRL reason codes an operator can give (`pki revoke --reason`). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

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
  /** RFC 5280 CRLReason name; set with revokedAt. */
  revocationReason?: RevocationReason;
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

export interface InitPkiOptions {
  /** RSA modulus size of the CA key; default 3072. */
  keyBits?: number;
  /** CA lifetime; default 3650 days (10 years). */
  validityDays?: number;
  /** Goes into the CA subject as `ovn-deploy CA <commonName>`; default: this machine's hostname. */
  commonName?: string;
  now?: Date;
}

export interface InitPkiResult {
  created: boolean;
  caCertPath: string;
}

export interface SignCsrOptions {
  role: LeafRole;
  /** Defaults to the CSR's CN. */
  name?: string;
  sans?: string[];
  validityDays?: number;
  host?: string;
  now?: Date;
  /** Where the CSR came from, for error messages only. */
  file?: string;
}

/** One line of `pki status`: the CA or an issued certificate. */
export interface PkiStatusRow {
  name: string;
  role: LeafRole | 'ca';
  host: string;
  serial: string;
  notBefore: string; // ISO 8601
  notAfter: string; // ISO 8601
  /** Whole days until notAfter; negative once expired. */
  daysLeft: number;
  /** `expired` is derived from notAfter even if the index still says `valid`. */
  status: CertStatus;
  /** Inside the renewal window or expired (only for certificates still in use). */
  due: boolean;
}

export interface PkiCrlStatus {
  thisUpdate: string;
  nextUpdate: string;
  daysLeft: number;
  crlNumber: number;
  revoked: number;
}

export interface PkiStatusReport {
  dir: string;
  now: string;
  /** The CA first, then every certificate in the index (oldest first). */
  rows: PkiStatusRow[];
  /** Absent when no CRL has been written (a warning says so). */
  crl: PkiCrlStatus | null;
  warnings: string[];
}
