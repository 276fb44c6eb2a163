/**
 * Reading a bundle on the host and proving it intact before anything is changed: the manifest
 * against its schema, every file under `files/` inside the bundle, present, and with the checksum
 * the manifest names. Every problem is collected (file + dot-path) into one InputError.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, type Problem } from '../errors.js';
import { readIfExists } from '../fsx.js';
import { MANIFEST_FILE, manifestSchema, type BundleFile, type BundleManifest } from '../bundle/manifest.js';

export interface VerifiedBundle {
  dir: string;
  manifest: BundleManifest;
  /** sha256 of manifest.json's bytes: what applied.json records. */
  manifestSha256: string;
  /** Content of every manifest file, by destination. */
  contents: Map<string, Buffer>;
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

export async function readBundle(dir: string): Promise<VerifiedBundle> {
  const bundleDir = path.resolve(dir);
  const manifestFile = path.join(bundleDir, MANIFEST_FILE);
  const raw = await readIfExists(manifestFile).catch((err: NodeJS.ErrnoException) => {
    throw new InputError([{ file: manifestFile, path: '', message: `cannot read the manifest (${err.code ?? err.message})` }]);
  });
  if (raw === undefined) {
    throw new InputError([{ file: manifestFile, path: '', message: `no ${MANIFEST_FILE}: --bundle must name a bundle directory made by \`ovn-deploy render\`` }]);
  }
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
  const problems: Problem[] = [...manifestProblems(manifest, manifestFile)];
  const contents = new Map<string, Buffer>();
  const filesRoot = path.join(bundleDir, 'files');
  // In manifest order, so the problems read top to bottom like the manifest.
  for (const [i, f] of manifest.files.entries()) {
    const content = await readBundleFile(bundleDir, filesRoot, f, `files[${i}]`, manifestFile, problems);
    if (content !== undefined) contents.set(f.dest, content);
  }
  if (problems.length > 0) throw new InputError(problems);
  return { dir: bundleDir, manifest, manifestSha256: sha256Hex(raw), contents };
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
  const stat = await fs.stat(real);
  if (!stat.isFile()) {
    problems.push({ file: path.join(bundleDir, f.source), path: `${at}.source`, message: 'expected a regular file' });
    return undefined;
  }
  const content = await fs.readFile(real);
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
    if (h.kind === 'service-running' && !services.has(h.service)) add(`health[${i}].service`, `unknown service "${h.service}"`);
  });
  return problems;
}
