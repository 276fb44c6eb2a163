/**
 * The `--ovs-source` / `--ovn-source` argument: a git URL with an optional `#ref`, a release
 * tarball, or a source directory (a local repository plus `#ref` is a git source too).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';

export type ProjectName = 'openvswitch' | 'ovn';

export type SourceSpec =
  | { kind: 'git'; url: string; ref?: string; display: string }
  | { kind: 'tarball'; path: string; display: string }
  | { kind: 'directory'; path: string; display: string };

export type SourceArg =
  | { kind: 'git-url'; url: string; ref?: string; raw: string }
  | { kind: 'path'; path: string; ref?: string; raw: string };

const EXPECTED = 'expected a git URL[#ref], a release tarball or a source directory';
const URL_SCHEME = /^(https?|git|ssh|file):\/\//;
// scp-like git remotes: user@host:path
const SCP_LIKE = /^[\w.-]+@[\w.-]+:/;

function problem(flag: string, message: string): InputError {
  return new InputError([{ path: flag, message }]);
}

/** Splits the argument into location and ref; no filesystem access. */
export function parseSourceArg(raw: string, flag: string): SourceArg {
  const text = raw.trim();
  if (text === '') throw problem(flag, `empty source (${EXPECTED})`);
  const hash = text.lastIndexOf('#');
  const location = hash < 0 ? text : text.slice(0, hash);
  const ref = hash < 0 ? undefined : text.slice(hash + 1);
  if (ref !== undefined && (ref === '' || /\s/.test(ref))) throw problem(flag, `bad ref '${ref}' in '${raw}' (expected URL#branch, URL#tag or URL#commit)`);
  if (location === '') throw problem(flag, `no location before '#' in '${raw}' (${EXPECTED})`);
  const withRef = ref === undefined ? {} : { ref };
  if (URL_SCHEME.test(location) || SCP_LIKE.test(location)) return { kind: 'git-url', url: location, raw: text, ...withRef };
  return { kind: 'path', path: path.resolve(location), raw: text, ...withRef };
}

/** Decides what a local path is (tarball, working tree or bare repository) and checks it exists. */
export async function classifySource(arg: SourceArg, flag: string): Promise<SourceSpec> {
  if (arg.kind === 'git-url') return { kind: 'git', url: arg.url, display: arg.raw, ...(arg.ref === undefined ? {} : { ref: arg.ref }) };
  let st;
  try {
    st = await fs.stat(arg.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw problem(flag, `${arg.path} does not exist (${EXPECTED})`);
    throw problem(flag, `cannot read ${arg.path}: ${(err as Error).message}`);
  }
  if (st.isDirectory()) {
    if (arg.ref !== undefined || (await isBareRepository(arg.path))) {
      return { kind: 'git', url: arg.path, display: arg.raw, ...(arg.ref === undefined ? {} : { ref: arg.ref }) };
    }
    return { kind: 'directory', path: arg.path, display: arg.raw };
  }
  if (arg.ref !== undefined) throw problem(flag, `'#${arg.ref}' needs a git repository, but ${arg.path} is a file`);
  if (!st.isFile()) throw problem(flag, `${arg.path} is neither a file nor a directory (${EXPECTED})`);
  try {
    await fs.access(arg.path, fs.constants.R_OK);
  } catch {
    throw problem(flag, `${arg.path} is not readable`);
  }
  return { kind: 'tarball', path: arg.path, display: arg.raw };
}

async function isBareRepository(dir: string): Promise<boolean> {
  const has = async (p: string) =>
    fs.stat(path.join(dir, p)).then(
      () => true,
      () => false,
    );
  return (await has('HEAD')) && (await has('objects')) && (await has('refs')) && !(await has('configure.ac'));
}
