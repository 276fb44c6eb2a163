/** The PKI's public API: CA, issuing, CSRs, revocation/CRL and status. */
export { initPki, loadCa, noCaError, DEFAULT_CA_DAYS, DEFAULT_CA_KEY_BITS } from './ca.js';
export { issueCertificate, issueCertificates, signCsr, signCsrs, DEFAULT_LEAF_DAYS, DEFAULT_LEAF_KEY_BITS } from './issue.js';
export { revokeCertificate, refreshCrl } from './revoke.js';
export { readIndex } from './cert-index.js';
export { pkiStatus, computeStatus, renderStatusTable, isDue, CRL_WARN_DAYS } from './status.js';
export { generateKeyPair } from './native-sign.js';
export { createCsr, publicKeyPemOf } from './csr.js';
export { parseCrl, readCrlInfo, DEFAULT_CRL_DAYS } from './crl.js';
export { CERT_NAME_RE } from './validate.js';
export { ROLE_EKU } from './templates.js';
export * from './types.js';
export {
  readBundle,
  parseBundle,
  renderBundle,
  normalizeSerial,
  commonNameOf,
  loadCaBySerial,
  createNextCa,
  nextCaCommonName,
  setTrustedCas,
  switchIssuer,
  storeCurrentCa,
  caKeyMatches,
  type BundleCa,
} from './rollover.js';
export { reinstateCertificate, type ReinstateRequest } from './reinstate.js';
export { withPkiLock } from './lock.js';
