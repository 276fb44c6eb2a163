/**
 * The image build plan, pure: each role's image is named by the hash of its Containerfile folder,
 * the exact RPMs it installs, the base image's id and the engine's version.
 */
import { hashOf } from './hash.js';
import type { RpmPackageInfo } from './rpm.js';
import { ROLES, type RoleName } from './roles.js';

export const IMAGE_RECIPE = 1;

export interface AvailableRpm {
  file: string;
  sha256: string;
  info: RpmPackageInfo;
}

export interface ImagePlanInput {
  roles: readonly RoleName[];
  /** By package name. */
  rpms: ReadonlyMap<string, AvailableRpm>;
  /** Digest of containers/ROLE plus containers/common, per role. */
  contextDigests: Readonly<Partial<Record<RoleName, string>>>;
  baseImageId: string;
  engine: string;
  tagPrefix: string;
}

export interface PlannedImage {
  role: RoleName;
  hash: string;
  tag: string;
  version: string;
  rpms: AvailableRpm[];
  inputs: unknown;
  action: 'reuse' | 'build';
}

export function planImages(input: ImagePlanInput, has: (hash: string) => boolean): PlannedImage[] {
  return input.roles.map((role) => {
    const def = ROLES[role];
    const rpms = def.packages.map((p) => {
      const r = input.rpms.get(p);
      if (r === undefined) throw new Error(`planImages: no RPM for ${p} (role ${role})`);
      return r;
    });
    const main = input.rpms.get(def.versionFrom)?.info;
    const version = main === undefined ? '0' : `${main.version}-${main.release}`;
    const inputs = {
      recipe: IMAGE_RECIPE,
      role,
      context: input.contextDigests[role] ?? '',
      rpms: rpms.map((r) => ({ name: r.info.name, sha256: r.sha256 })),
      base: input.baseImageId,
      engine: input.engine,
    };
    const hash = hashOf(inputs);
    return { role, hash, tag: `${input.tagPrefix}/${role}:${version}`, version, rpms, inputs, action: has(hash) ? 'reuse' : 'build' };
  });
}
