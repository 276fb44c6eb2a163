/**
 * Certificates the project's PKI deliberately never makes (another CA, no clientAuth EKU), made
 * with the openssl CLI for negative TLS tests.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ZxRunner } from '../../src/runner.js';

const runner = new ZxRunner();
const openssl = (args: string[], cwd: string) => runner.run(['openssl', ...args], { cwd, timeoutMs: 30_000 });

export interface Pair {
  cert: string;
  key: string;
}

/** A self-signed CA of its own, unrelated to the PKI under test. */
export async function makeForeignCa(dir: string, name: string): Promise<Pair> {
  await fs.mkdir(dir, { recursive: true });
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', pair.key, '-out', pair.cert, '-days', '30', '-subj', `/O=ovn-deploy-test/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return pair;
}

/** A leaf signed by `ca` with exactly the extensions given (openssl extension-file syntax). */
export async function makeLeaf(dir: string, name: string, ca: Pair, extensions: string[]): Promise<Pair> {
  await fs.mkdir(dir, { recursive: true });
  const pair = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  await fs.writeFile(ext, `${extensions.join('\n')}\n`);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', pair.key, '-out', csr, '-subj', `/O=ovn-deploy/CN=${name}`], dir);
  await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6).toString(16)}`, '-days', '7', '-sha256', '-extfile', ext, '-out', pair.cert], dir);
  await fs.chmod(pair.key, 0o600);
  return pair;
}
