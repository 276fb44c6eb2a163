/**
 * RSA key generation, natively (OpenSSL behind node:crypto, on the libuv threadpool) and with no
 * other dependency: `pki issue` starts it before loading node-forge, so the key is made while
 * the certificate code loads.
 */
import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promisify } from 'node:util';

export const DEFAULT_LEAF_KEY_BITS = 2048;

const generateKeyPairAsync = promisify(generateKeyPairCb);

export interface KeyPairPem {
  /** PKCS#8. */
  privateKeyPem: string;
  /** SPKI. */
  publicKeyPem: string;
}

/** A fresh RSA key pair: PKCS#8 private key and SPKI public key, both PEM. */
export async function generateKeyPair(bits: number): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

let early: { bits: number; pair: Promise<KeyPairPem> } | undefined;

/** Starts a key of `bits` for whoever takes one of that size first (early-key.ts, sandbox/early-ca.ts). */
export function startKey(bits: number): void {
  const pair = generateKeyPair(bits);
  pair.catch(() => undefined); // a failure surfaces when it is taken (or the taker makes its own)
  early = { bits, pair };
}

/** The key started early if it was made with `bits`; either way it is gone afterwards. */
export function takeEarlyKey(bits: number): Promise<KeyPairPem> | undefined {
  const e = early;
  early = undefined;
  return e !== undefined && e.bits === bits ? e.pair : undefined;
}
