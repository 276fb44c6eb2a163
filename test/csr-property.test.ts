/**
 * Property-based (fast-check) tests of the CSR signer (issue 12): random text, random edits of a
 * real CSR's PEM, and random byte flips inside its DER only ever give a certificate (when the
 * request still verifies) or an InputError (exit 2) with a message, never another error; and a
 * refused request leaves the PKI's index and certificates as they were.
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInputError } from './helpers/refusals.js';
import { createCsr, generateKeyPair, initPki, readIndex, signCsr } from '../src/pki/index.js';

let dir: string;
let csrPem: string;
let signedCount = 0;

/** Signs `pem`; returns the certificate, or undefined when refused. Anything but an InputError fails the property. */
async function signsOrRefuses(pem: string): Promise<X509Certificate | undefined> {
  try {
    const c = await signCsr(dir, pem, { role: 'worker', file: 'random.csr' });
    signedCount++;
    return new X509Certificate(c.certPem);
  } catch (err) {
    expectInputError(err, 600);
    return undefined;
  }
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function pemOf(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'csr-property-'));
  await initPki(dir, { keyBits: 2048, commonName: 'csr-property' });
  csrPem = createCsr((await generateKeyPair(2048)).privateKeyPem, 'chassis-prop');
});

afterAll(async () => fs.rm(dir, { recursive: true, force: true }));

describe('property: the CSR signer never crashes', () => {
  it('random text, with or without PEM armour', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), fc.boolean(), async (body, armour) => {
        expect(await signsOrRefuses(armour ? `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n` : body)).toBeUndefined();
      }),
      { numRuns: 150 },
    );
  });

  it('random edits of a real CSR PEM', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 8 }), fc.nat({ max: 8 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        let text = csrPem;
        for (const [pos, insert, remove] of edits) {
          const i = pos % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        await signsOrRefuses(text);
      }),
      { numRuns: 150 },
    );
  });

  it('byte flips and truncations inside the DER: refused, or (outside the signed part) the very request it was', async () => {
    const der = derOf(csrPem);
    const original = await signsOrRefuses(csrPem);
    expect(original).toBeDefined();
    const before = (await readIndex(dir)).length;
    const signedBefore = signedCount;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: der.length - 1 }), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (at, xor, truncate) => {
        const changed = Buffer.from(der);
        if (truncate) {
          expect(await signsOrRefuses(pemOf(changed.subarray(0, at)))).toBeUndefined();
          return;
        }
        changed[at] = (changed[at] ?? 0) ^ xor;
        // A byte of the signed request info or of the signature value: the signature check refuses
        // it. A byte of the outer encoding may still parse: then nothing the key holder signed
        // changed, and the certificate must be for exactly the original subject and key.
        const cert = await signsOrRefuses(pemOf(changed));
        if (cert !== undefined) {
          expect(cert.subject).toBe(original?.subject);
          expect(cert.publicKey.export({ type: 'spki', format: 'der' })).toEqual(original?.publicKey.export({ type: 'spki', format: 'der' }));
        }
      }),
      { numRuns: 200 },
    );
    // Only what was signed reached the index.
    expect((await readIndex(dir)).length).toBe(before + (signedCount - signedBefore));
  });

  it('the unchanged CSR is signed (the properties above can tell a good request from a bad one)', async () => {
    expect(await signsOrRefuses(csrPem)).toBeDefined();
  });
});
