/**
 * Before the admin machine signs a host's CSR: the request must name exactly what the host's
 * bundle asked for (CN and every subjectAltName, nothing more, nothing less) and prove possession
 * of its key. A host cannot obtain a certificate for another name by editing its request.
 */
import { isIP } from 'node:net';
import forge from 'node-forge';
import { InputError, type Problem } from '../errors.js';
import { canonicalAddress } from '../inventory/addresses.js';
import type { CertificateRequest } from '../bundle/manifest.js';
import { readVerifiedCsr } from '../pki/csr.js';

/** subjectAltNames of a PEM CSR as `dns:name` / `ip:addr` (lower-case, canonical addresses). */
export function csrSans(csrPem: string): string[] {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  const req = csr.getAttribute({ name: 'extensionRequest' }) as { extensions?: { name?: string; altNames?: { type: number; value?: string; ip?: string }[] }[] } | null;
  const ext = req?.extensions?.find((e) => e.name === 'subjectAltName');
  return (ext?.altNames ?? []).map((a) => (a.type === 7 ? `ip:${canonicalAddress(a.ip ?? '')}` : `dns:${(a.value ?? '').toLowerCase()}`));
}

function sanKey(s: string): string {
  return isIP(s) !== 0 ? `ip:${canonicalAddress(s)}` : `dns:${s.toLowerCase()}`;
}

/** Throws an InputError (naming the host's CSR) listing every difference from the request. */
export function checkCsrMatches(csrPem: string, want: CertificateRequest, host: string): void {
  const file = `${host}:${want.csr}`;
  const csr = readVerifiedCsr(csrPem, file);
  const problems: Problem[] = [];
  if (csr.commonName !== want.name) {
    problems.push({ file, path: 'subject.CN', message: `expected ${JSON.stringify(want.name)}, the request says ${JSON.stringify(csr.commonName ?? '')}` });
  }
  if (csr.keyBits < want.keyBits) {
    problems.push({ file, path: 'publicKey', message: `expected an RSA key of at least ${want.keyBits} bits, got ${csr.keyBits}` });
  }
  const have = new Set(csrSans(csrPem));
  const wanted = new Set(want.sans.map(sanKey));
  const extra = [...have].filter((s) => !wanted.has(s));
  const missing = [...wanted].filter((s) => !have.has(s));
  if (extra.length > 0) problems.push({ file, path: 'subjectAltName', message: `not asked for by the bundle: ${extra.join(', ')}` });
  if (missing.length > 0) problems.push({ file, path: 'subjectAltName', message: `missing: ${missing.join(', ')}` });
  if (problems.length > 0) throw new InputError(problems);
}
