/**
 * The TLS policy every generated stunnel config enforces, in one place so the renderer, the
 * tests and `probeTls` users agree on it.
 */

/**
 * TLS 1.2 only (the project's policy): 1.0/1.1 are deprecated (RFC 8996), and OVS 3.1's own TLS,
 * which may talk to these listeners directly (`ssl:` remotes), stops at 1.2.
 */
export const TLS_VERSION = 'TLSv1.2';

/** Forward secrecy (ECDHE) and AEAD (AES-GCM) only: no CBC, no static RSA key exchange. */
export const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
] as const;

/** What a negotiated cipher must look like. */
export const ALLOWED_CIPHER_RE = /^ECDHE-(RSA|ECDSA)-AES(128|256)-GCM-SHA(256|384)$/;

/** ECDHE groups, strongest-common first; all are supported by OpenSSL 1.1.1+ and OVS's TLS. */
export const TLS_CURVES = ['X25519', 'P-256', 'P-384'] as const;

/**
 * stunnel's idle timeout. OVSDB connections are long-lived and carry their own inactivity
 * probes, so stunnel must not end them: 24 days, just below the ~24.8 days at which stunnel's
 * poll() timeout (seconds * 1000 in a C int) would overflow.
 */
export const TIMEOUT_IDLE_SECONDS = 24 * 86_400;

export const DEFAULT_DEBUG_LEVEL = 5;
