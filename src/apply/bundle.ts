/**
 * Reading a bundle on the host and proving it intact before anything is changed: its signature
 * by a CA the host trusts, the manifest against its schema and policy (policy.ts), every file
 * under `files/` inside the bundle, present, with the checksum the manifest names, and no file
 * the manifest does not list. Every problem is collected (file + dot-path) into one InputError.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, type Problem } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { MANIFEST_FILE, manifestSchema, type BundleFile, type BundleManifest } from '../bundle/manifest.js';
import { SIGNATURE_FILE, verifyManifestSignature } from '../bundle/signature.js';
import { hostRenderedPaths } from '../paths.js';
import { nftShapeProblems } from './nft-shape.js';
import { policyProblems } from './policy.js';

const NFT_FILES: ReadonlySet<string> = new Set([hostRenderedPaths().firewall, hostRenderedPaths().localAccess]);

export interface VerifiedBundle {
  dir: string;
  manifest: BundleManifest;
  /** sha256 of manifest.json's bytes: what applied.json records. */
  manifestSha256: string;
  /** Content of every manifest file, by destination. */
  contents: Map<string, Buffer>;
  /** The pinned CA whose key signed the manifest. */
  signer: X509Certificate;
}

export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** `['files', 2, 'sha256']` -> `files[2].sha256`. */
export function dotPath(segments: readonly PropertyKey[]): string {
  return segments.reduce<string>((out, seg) => {
    if (typeof seg === 'number') return `${out}[${seg}]`;
    const s = String(seg);
    return out === '' ? s : `${out}.${s}`;
  }, '');
}

/** A bundle file (config, CA bundle) is small; this bounds what a hostile bundle makes apply read. */
const BUNDLE_FILE_LIMIT = 16 * 1024 * 1024;

const readOrProblem = async (file: string, what: string, problems: Problem[], maxBytes?: number): Promise<Buffer | undefined> => {
  try {
    return await readInputFile(file, { what, ...(maxBytes === undefined ? {} : { maxBytes }) });
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
};

/**
 * The signature first (against `trusted`, the host's pinned CAs), then the manifest's schema and
 * policy, then every file's checksum, then no file the manifest does not list. Nothing of the
 * bundle is believed before the signature verified.
 */
export async function readBundle(dir: string, trusted: readonly X509Certificate[]): Promise<VerifiedBundle> {
  const bundleDir = path.resolve(dir);
  const manifestFile = path.join(bundleDir, MANIFEST_FILE);
  const sigFile = path.join(bundleDir, SIGNATURE_FILE);
  const early: Problem[] = [];
  const raw = await readOrProblem(manifestFile, `manifest (--bundle must name a bundle directory made by \`ovn-deploy render\`)`, early);
  const sig = await readOrProblem(sigFile, 'manifest signature (bundles are signed by `ovn-deploy render`)', early, 64 * 1024);
  if (raw === undefined || sig === undefined) throw new InputError(early);
  const verdict = verifyManifestSignature(raw, sig.toString('utf8'), trusted);
  if (!verdict.ok) throw new InputError([{ file: sigFile, path: verdict.field, message: verdict.message }]);
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new InputError([{ file: manifestFile, path: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(parsed.error.issues.map((i) => ({ file: manifestFile, path: dotPath(i.path), message: i.message })));
  }
  const manifest = parsed.data;
  const problems: Problem[] = [...manifestProblems(manifest, manifestFile), ...policyProblems(manifest, manifestFile)];
  const contents = new Map<string, Buffer>();
  const filesRoot = path.join(bundleDir, 'files');
  // In manifest order, so the problems read top to bottom like the manifest.
  for (const [i, f] of manifest.files.entries()) {
    const content = await readBundleFile(bundleDir, filesRoot, f, `files[${i}]`, manifestFile, problems);
    if (content !== undefined) contents.set(f.dest, content);
    // apply loads these with nft -f: only ovn-deploy's own tables, in render's shape.
    if (content !== undefined && NFT_FILES.has(f.dest)) problems.push(...nftShapeProblems(content.toString('utf8'), manifestFile, `files[${i}]`));
  }
  const listed = new Set(manifest.files.map((f) => path.resolve(bundleDir, f.source)));
  for (const extra of (await listTree(filesRoot)).filter((f) => !listed.has(f))) {
    problems.push({ file: extra, path: 'files', message: 'is in the bundle but not in its manifest (added after render?)' });
  }
  if (problems.length > 0) throw new InputError(problems);
  return { dir: bundleDir, manifest, manifestSha256: sha256Hex(raw), contents, signer: verdict.signer };
}

/** Every non-directory entry below `dir` (absolute paths); links are entries, never followed. */
async function listTree(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...(await listTree(p)));
    else found.push(p);
  }
  return found;
}

async function readBundleFile(
  bundleDir: string,
  filesRoot: string,
  f: BundleFile,
  at: string,
  manifestFile: string,
  problems: Problem[],
): Promise<Buffer | undefined> {
  const source = path.resolve(bundleDir, f.source);
  if (!source.startsWith(`${filesRoot}${path.sep}`)) {
    problems.push({ file: manifestFile, path: `${at}.source`, message: `"${f.source}" leaves the bundle's files/ directory` });
    return undefined;
  }
  // The real path too: a symlink inside files/ must not smuggle in a file from elsewhere.
  let real: string;
  try {
    real = await fs.realpath(source);
  } catch {
    problems.push({ file: path.join(bundleDir, f.source), path: `${at}.source`, message: `missing: the manifest lists "${f.source}" but the bundle has no such file` });
    return undefined;
  }
  const realRoot = await fs.realpath(filesRoot).catch(() => filesRoot);
  if (!real.startsWith(`${realRoot}${path.sep}`)) {
    problems.push({ file: path.join(bundleDir, f.source), path: `${at}.source`, message: 'is a link that leaves the bundle\'s files/ directory' });
    return undefined;
  }
  const content = await readOrProblem(real, 'bundle file', problems, BUNDLE_FILE_LIMIT);
  if (content === undefined) return undefined;
  const got = sha256Hex(content);
  if (got !== f.sha256) {
    problems.push({ file: path.join(bundleDir, f.source), path: `${at}.sha256`, message: `checksum mismatch: the manifest says ${f.sha256}, the file has ${got}` });
    return undefined;
  }
  return content;
}

/** Cross-field checks the schema cannot express: names that must exist, destinations that must be unique. */
function manifestProblems(m: BundleManifest, file: string): Problem[] {
  const problems: Problem[] = [];
  const add = (p: string, message: string): void => void problems.push({ file, path: p, message });
  const services = new Set(m.services.map((s) => s.name));
  const dests = new Map<string, number>();
  m.files.forEach((f, i) => {
    const first = dests.get(f.dest);
    if (first !== undefined) add(`files[${i}].dest`, `duplicate destination "${f.dest}" (also files[${first}])`);
    else dests.set(f.dest, i);
    if (path.posix.normalize(f.dest) !== f.dest || f.dest.endsWith('/')) add(`files[${i}].dest`, `expected a normalised absolute file path, got "${f.dest}"`);
    f.reload.forEach((s, j) => {
      if (!services.has(s)) add(`files[${i}].reload[${j}]`, `unknown service "${s}"`);
    });
    f.restart.forEach((s, j) => {
      if (!services.has(s)) add(`files[${i}].restart[${j}]`, `unknown service "${s}"`);
    });
  });
  const seen = new Map<string, number>();
  m.services.forEach((s, i) => {
    const first = seen.get(s.name);
    if (first !== undefined) add(`services[${i}].name`, `duplicate service "${s.name}" (also services[${first}])`);
    else seen.set(s.name, i);
    s.after.forEach((d, j) => {
      if (!services.has(d)) add(`services[${i}].after[${j}]`, `unknown service "${d}"`);
    });
  });
  m.raft.forEach((r, i) => {
    if (!services.has(r.service)) add(`raft[${i}].service`, `unknown service "${r.service}"`);
  });
  m.standaloneDbs.forEach((d, i) => {
    if (!services.has(d.service)) add(`standaloneDbs[${i}].service`, `unknown service "${d.service}"`);
  });
  m.health.forEach((h, i) => {
    if ('service' in h && h.service !== undefined && !services.has(h.service)) add(`health[${i}].service`, `unknown service "${h.service}"`);
  });
  return problems;
}
