/**
 * The site CA as `render` needs it: its key and certificate to sign bundles, read with node:crypto
 * alone. The PKI's certificate work (node-forge, @peculiar/x509: about 250 ms to load) stays with
 * the commands that issue or revoke.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { ExitError, inputError } from '../errors.js';
import { readIfExists } from '../fsx.js';
import { pkiPaths } from '../paths.js';

/** --dir must be a directory (or not exist yet, for init): a file there is bad input, not a crash. */
export function checkPkiDir(dir: string): void {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (st !== undefined && !st.isDirectory()) throw inputError(`${dir} is not a directory${st.isSymbolicLink() ? ' (a symbolic link)' : ''}: give the PKI directory`, 'dir');
}

export function noCaError(dir: string): Error {
  checkPkiDir(dir);
  return new ExitError(`no CA in ${dir}: run \`ovn-deploy pki init --dir ${dir}\``, 2);
}

/** Parses a PEM private key without ever putting its text into an error message. */
export function privateKeyObject(pem: string, what: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error(`${what} is not a readable private key`);
  }
}

/** The current CA's key and certificate (PEM); refused when the key is not the certificate's. */
export async function loadCaSigner(dir: string): Promise<{ key: KeyObject; certPem: string }> {
  const paths = pkiPaths(dir);
  const [certRaw, keyRaw] = await Promise.all([readIfExists(paths.caCert), readIfExists(paths.caKey)]);
  if (certRaw === undefined || keyRaw === undefined) throw noCaError(dir);
  const certPem = certRaw.toString('utf8');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new ExitError(`${paths.caCert}: not a readable certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = privateKeyObject(keyRaw.toString('utf8'), paths.caKey);
  } catch (err) {
    throw new ExitError((err as Error).message);
  }
  if (!cert.checkPrivateKey(key)) throw new ExitError(`${paths.caKey} is not the key of ${paths.caCert}: a bundle signed with it would be refused by every host`);
  return { key, certPem };
}
