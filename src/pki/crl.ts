/**
 * The certificate revocation list (ca/crl.pem). node-forge cannot build CRLs, so @peculiar/x509
 * does it over WebCrypto with the CA key. A CRL past its nextUpdate makes stunnel reject every
 * client, hence `pki crl` re-signs a current one and `pki status` warns before it goes stale.
 */
// @peculiar/x509 (through tsyringe) needs the Reflect metadata API, loaded before it.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ExitError } from '../errors.js';
import { readIfExists, writeFileAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import type { LoadedCa } from './ca.js';
import { decodeUnsignedInteger, encodeUnsignedInteger } from './der.js';
// rollover.ts imports this module too; the cycle is only between functions called at run time.
import { renderCrlsOfOtherTrustedCas } from './rollover.js';
import { REVOCATION_REASONS, type IndexEntry, type PkiCrlStatus, type RevocationReason } from './types.js';

export const CRL_NUMBER_OID = '2.5.29.20';
export const CRL_REASON_OID = '2.5.29.21';
export const DEFAULT_CRL_DAYS = 30;
const DAY_MS = 86_400_000;

// Node's webcrypto is the DOM Crypto at runtime; the DOM typings are not loaded in this project.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface CrlInfo {
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  crlNumber: bigint;
  revokedSerials: string[];
}

/** OpenSSL only reads CRLs labelled `X509 CRL`; @peculiar/x509 writes `CRL`. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN (?:X509 )?CRL-----([\s\S]*?)-----END (?:X509 )?CRL-----/.exec(pem);
  if (m === null) throw new Error('no "X509 CRL" PEM block');
  return new Uint8Array(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}

export function parseCrl(pem: string): CrlInfo {
  const crl = new x509.X509Crl(pemToDer(pem));
  const ext = crl.getExtension(CRL_NUMBER_OID);
  return {
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    crlNumber: ext === null ? 0n : decodeUnsignedInteger(new Uint8Array(ext.value)),
    revokedSerials: crl.entries.map((e) => e.serialNumber.toLowerCase()),
  };
}

export async function readCrlInfo(dir: string): Promise<CrlInfo | undefined> {
  const file = pkiPaths(dir).crl;
  const raw = await readIfExists(file);
  if (raw === undefined) return undefined;
  try {
    return parseCrl(raw.toString('utf8'));
  } catch (err) {
    throw new ExitError(`${file}: not a readable CRL (${(err as Error).message})`);
  }
}

/** Builds and signs a CRL listing every revoked certificate this CA issued. */
export async function renderCrl(
  ca: LoadedCa,
  entries: readonly IndexEntry[],
  opts: { now: Date; nextUpdateDays: number; crlNumber: bigint },
): Promise<string> {
  const revoked = entries.filter((e) => e.status === 'revoked' && e.issuer === ca.serial);
  const crl = await x509.X509CrlGenerator.create({
    issuer: new x509.X509Certificate(ca.certPem).subjectName,
    thisUpdate: opts.now,
    nextUpdate: new Date(opts.now.getTime() + opts.nextUpdateDays * DAY_MS),
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as x509.X509CrlCreateParams['signingAlgorithm'],
    signingKey: (await ca.cryptoKey()) as unknown as x509.X509CrlCreateParams['signingKey'],
    entries: revoked.map((e) => ({
      serialNumber: e.serial,
      revocationDate: new Date(e.revokedAt ?? opts.now.toISOString()),
      // Always one entry extension: without any, @peculiar/x509 2.2 writes an empty
      // crlEntryExtensions SEQUENCE, which RFC 5280 forbids and OpenSSL refuses to load.
      extensions: [reasonExtension(e.revocationReason ?? 'unspecified')],
    })),
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(ca.skiHex),
      new x509.Extension(CRL_NUMBER_OID, false, encodeUnsignedInteger(opts.crlNumber)),
    ],
  });
  return derToPem(new Uint8Array(crl.rawData), 'X509 CRL');
}

function reasonExtension(reason: RevocationReason): x509.Extension {
  // CRLReason ::= ENUMERATED
  return new x509.Extension(CRL_REASON_OID, false, new Uint8Array([0x0a, 0x01, REVOCATION_REASONS[reason]]));
}

/** Writes a fresh CRL whose number is one more than the current file's. Call inside withPkiLock. */
export async function writeCrl(
  dir: string,
  ca: LoadedCa,
  entries: readonly IndexEntry[],
  opts: { now: Date; nextUpdateDays?: number },
): Promise<void> {
  const previous = await readCrlInfo(dir).catch(() => undefined);
  const render = (issuer: LoadedCa) =>
    renderCrl(issuer, entries, {
      now: opts.now,
      nextUpdateDays: opts.nextUpdateDays ?? DEFAULT_CRL_DAYS,
      crlNumber: (previous?.crlNumber ?? 0n) + 1n,
    });
  const pem = await render(ca);
  // During a CA rollover the bundle trusts several CAs and stunnel needs a current CRL for each.
  const others = await renderCrlsOfOtherTrustedCas(dir, ca.serial, render);
  await writeFileAtomic(pkiPaths(dir).crl, pem + others, 0o644);
}

export function crlStatus(info: CrlInfo, now: Date): PkiCrlStatus {
  const next = info.nextUpdate ?? info.thisUpdate;
  return {
    thisUpdate: info.thisUpdate.toISOString(),
    nextUpdate: next.toISOString(),
    daysLeft: Math.floor((next.getTime() - now.getTime()) / DAY_MS),
    crlNumber: Number(info.crlNumber),
    revoked: info.revokedSerials.length,
  };
}
