/**
 * The admin machine's side of the PKI during deploy: the public files every bundle carries (CA
 * bundle, CRL) and signing a checked CSR. The CA key is only ever read here, by signCsr.
 */
import { promises as fs } from 'node:fs';
import type { CertificateRequest } from '../bundle/manifest.js';
import { InputError } from '../errors.js';
import type { Host } from '../inventory/types.js';
import { pkiPaths } from '../paths.js';
import { signCsr } from '../pki/index.js';

export interface SitePkiFiles {
  caBundlePem: string;
  crlPem: string;
}

export async function readSitePki(pkiDir: string): Promise<SitePkiFiles> {
  const p = pkiPaths(pkiDir);
  const read = async (file: string, what: string): Promise<string | { file: string; path: string; message: string }> => {
    try {
      return await fs.readFile(file, 'utf8');
    } catch {
      return { file, path: '', message: `cannot read the ${what} (is --pki a directory made by \`ovn-deploy pki init\`?)` };
    }
  };
  const [ca, crl] = [await read(p.caBundle, 'CA bundle'), await read(p.crl, 'CRL')];
  const problems = [ca, crl].filter((x): x is { file: string; path: string; message: string } => typeof x !== 'string');
  if (problems.length > 0) throw new InputError(problems);
  return { caBundlePem: ca as string, crlPem: crl as string };
}

/** Signs a CSR already checked against the bundle's request (csr-check.ts); returns the certificate PEM. */
export function siteSigner(pkiDir: string) {
  return async (csrPem: string, req: CertificateRequest, host: Host): Promise<string> => {
    const issued = await signCsr(pkiDir, csrPem, { role: req.role, name: req.name, sans: req.sans, host: host.name, file: `${host.name}:${req.csr}` });
    return issued.certPem;
  };
}
