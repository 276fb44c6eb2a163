/**
 * The admin machine's side of the PKI for `render` and `deploy`: the public files every bundle
 * carries (CA bundle, CRL), the metadata agents' shared secret, the CA key that signs bundles,
 * and signing a checked CSR. `render` needs no certificate library: the PKI module (node-forge,
 * @peculiar/x509 for a CRL) is loaded only when a CSR is signed.
 */
import type { CertificateRequest } from '../bundle/manifest.js';
import { InputError, inputError, type Problem } from '../errors.js';
import { readInputText } from '../input-file.js';
import type { Host } from '../inventory/types.js';
import { pkiPaths } from '../paths.js';
import { loadCaSigner } from '../pki/ca-signer.js';
import { crlNextUpdate } from '../pki/crl-next-update.js';
import type { RenderOptions, SitePki } from '../render/index.js';

async function readRequired(file: string, what: string, hint: string): Promise<string> {
  try {
    return await readInputText(file, { what });
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(e.problems.map((p) => ({ ...p, message: `${p.message}; ${hint}` })));
  }
}

/** The PKI's public half; never opens the CA key. Warns when the CRL is past nextUpdate. */
export async function readSitePki(pkiDir: string): Promise<{ pki: SitePki; warnings: string[] }> {
  const p = pkiPaths(pkiDir);
  const problems: Problem[] = [];
  const read = (file: string, what: string, hint: string) =>
    readRequired(file, what, hint).catch((e: unknown) => {
      if (e instanceof InputError) problems.push(...e.problems);
      else throw e;
      return '';
    });
  const caBundlePem = await read(p.caBundle, 'CA bundle', `run \`ovn-deploy pki init --dir ${pkiDir}\` first`);
  const crlPem = await read(p.crl, 'CRL', `run \`ovn-deploy pki crl --dir ${pkiDir}\` to sign one`);
  if (problems.length > 0) throw new InputError(problems);
  const warnings: string[] = [];
  try {
    const next = crlNextUpdate(crlPem);
    // A CRL past nextUpdate makes stunnel reject every peer: say so before it is shipped.
    if (next !== undefined && next.getTime() < Date.now()) {
      warnings.push(`${p.crl}: the CRL expired ${next.toISOString()}: stunnel will reject every peer; run \`ovn-deploy pki crl --dir ${pkiDir}\``);
    }
  } catch (e) {
    throw inputError(`not a CRL: ${(e as Error).message}`, '', p.crl);
  }
  return { pki: { caBundlePem, crlPem }, warnings };
}

/** The metadata agents' shared secret (`--metadata-secret-file`); never logged. */
export async function readMetadataSecret(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  const raw = await readRequired(file, 'metadata secret file', 'give a file holding the shared secret');
  // One trailing newline is how editors and `openssl rand -hex 32 > FILE` leave it.
  const secret = raw.replace(/\r?\n$/, '');
  if (secret === '') throw inputError('the metadata secret file is empty', '', file);
  return secret;
}

/**
 * Signs a CSR already checked against the bundle's request (csr-check.ts) for the site's leaf
 * lifetime (inventory `certificates.leafValidityDays`); returns the certificate PEM.
 */
export function siteSigner(pkiDir: string, validityDays: number) {
  return async (csrPem: string, req: CertificateRequest, host: Host): Promise<string> => {
    const { signCsr } = await import('../pki/issue.js');
    const issued = await signCsr(pkiDir, csrPem, { role: req.role, name: req.name, sans: req.sans, host: host.name, validityDays, file: `${host.name}:${req.csr}` });
    return issued.certPem;
  };
}

/** The current site CA signs every bundle's manifest (why the CA itself: src/bundle/signature.ts). */
export async function bundleSigner(pkiDir: string): Promise<NonNullable<RenderOptions['signer']>> {
  return loadCaSigner(pkiDir);
}
