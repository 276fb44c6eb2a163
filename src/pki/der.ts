/**
 * The few DER operations the PKI needs byte-exactly: slicing the signed part out of a structure
 * (re-encoding a parsed CSR could change its bytes and break a correct signature), wrapping
 * signed bytes (a certificate around its TBSCertificate) and INTEGERs for the CRL number.
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads one tag-length-value at `offset`; throws on truncated or indefinite-length input. */
export function readTlv(der: Uint8Array, offset: number): Tlv {
  const tag = der[offset];
  const first = der[offset + 1];
  if (tag === undefined || first === undefined) throw new Error('truncated DER');
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i++) {
      const b = der[offset + 2 + i];
      if (b === undefined) throw new Error('truncated DER');
      length = length * 256 + b;
    }
    contentStart += n;
  }
  const end = contentStart + length;
  if (end > der.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** One DER tag-length-value around `parts` (definite length, as DER requires). */
export function encodeTlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  let header: number[];
  if (length < 0x80) header = [tag, length];
  else {
    const bytes: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
    header = [tag, 0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from(header), ...parts]);
}

/** DER INTEGER for a non-negative value (minimal, with a 0x00 pad when the top bit is set). */
export function encodeUnsignedInteger(value: bigint): Uint8Array {
  if (value < 0n) throw new Error('negative INTEGER');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  if (body.length > 127) throw new Error('INTEGER too large');
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

export function decodeUnsignedInteger(der: Uint8Array): bigint {
  const tlv = readTlv(der, 0);
  if (tlv.tag !== 0x02) throw new Error('not a DER INTEGER');
  const body = der.subarray(tlv.contentStart, tlv.end);
  if (body.length === 0 || ((body[0] ?? 0) & 0x80) !== 0) throw new Error('not a non-negative INTEGER');
  return BigInt(`0x${Buffer.from(body).toString('hex')}`);
}
