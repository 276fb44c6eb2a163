/**
 * Which Open vSwitch to build when only OVN is given (or OVS is a git URL without a ref): the one
 * OVN's `ovs` submodule pins, taken from the submodule directory, the ovs/ folder bundled in a
 * release tarball, or the pinned commit of the submodule's repository.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { BuildCachePaths } from '../paths.js';
import type { Runner } from '../runner.js';
import { sha256 } from './hash.js';
import type { ResolvedSource } from './sources.js';
import type { SourceSpec } from './source-spec.js';
import { Tar } from './tar.js';

export async function defaultOvsSpec(ovn: ResolvedSource, runner: Runner, paths: BuildCachePaths): Promise<SourceSpec> {
  const pin = ovn.ovsPin;
  const label = `${ovn.spec.display} (its ovs submodule)`;
  if (pin?.dir !== undefined) return { kind: 'directory', path: pin.dir, display: label };
  if (pin?.tarballMember !== undefined && ovn.identity.kind === 'tarball') {
    const dir = await extractMember(ovn.identity.path, ovn.identity.sha256, pin.tarballMember, runner, paths);
    return { kind: 'directory', path: dir, display: label };
  }
  if (pin?.commit !== undefined && pin.url !== undefined) return { kind: 'git', url: pin.url, ref: pin.commit, display: `${pin.url}#${pin.commit}` };
  throw new InputError([
    {
      path: '--ovs-source',
      message: `is required: the OVN source ${ovn.spec.display} carries no ovs submodule to take Open vSwitch from (give a git URL, a tarball or a directory)`,
    },
  ]);
}

/** Extracts one folder of a tarball once into the cache (keyed by the tarball's digest). */
async function extractMember(tarball: string, digest: string, member: string, runner: Runner, paths: BuildCachePaths): Promise<string> {
  const dir = paths.extracted(sha256(`${digest}:${member}`).slice(0, 32));
  const target = path.join(dir, member);
  if (await fs.stat(path.join(target, 'configure.ac')).then(() => true, () => false)) return target;
  const tmp = `${dir}.tmp-${process.pid}`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  await new Tar(runner).extract(tarball, tmp, [member]);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
  return target;
}
