/**
 * A sandbox without a CA spends about 0.3 s making the CA key; `up` starts it on the threadpool
 * here, before the sandbox code loads (about as long), and initPki takes it (pki/keygen.ts).
 */
import { existsSync } from 'node:fs';
import { pkiPaths, sandboxPaths } from '../paths.js';
import { startKey } from '../pki/keygen.js';

/** A sandbox CA needs no 3072-bit key: it lives as long as the sandbox, and 2048 keeps `up` fast. */
export const SANDBOX_CA_KEY_BITS = 2048;

export function startSandboxCaKey(stateDir: string): void {
  if (!existsSync(pkiPaths(sandboxPaths(stateDir).pki).caCert)) startKey(SANDBOX_CA_KEY_BITS);
}
