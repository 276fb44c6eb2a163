/**
 * `ovn-deploy build [rpms|images|all|base-image]`: RPMs of Open vSwitch and OVN from our specs,
 * per-role container images from those RPMs, and a local base image where no registry is
 * reachable. Every artifact is named by the hash of its inputs and reused when they are unchanged.
 */
import { Command, Option } from './commander.js';
import { InputError, type Problem } from '../errors.js';
import { buildOutputPaths, defaultBuildCacheDir } from '../paths.js';
import type { BuildImagesResult } from '../packaging/image-pipeline.js';
import type { BuildSummary } from '../packaging/manifest.js';
import { EXIT_MISSING_TOOL } from '../packaging/preflight.js';
import { DEFAULT_BASE_PACKAGES, ROLE_NAMES, type RoleName } from '../packaging/roles.js';
import type { BuildRpmsResult } from '../packaging/rpm-pipeline.js';
import { isCi } from '../ui/ci.js';
import type { ProgressMode } from '../ui/listr.js';

// The pipelines (zx, listr2, podman, rpmbuild wrappers) are loaded by the action that runs them.
const buildRpms = async (...a: Parameters<typeof import('../packaging/rpm-pipeline.js').buildRpms>) => (await import('../packaging/rpm-pipeline.js')).buildRpms(...a);
const buildImages = async (...a: Parameters<typeof import('../packaging/image-pipeline.js').buildImages>) => (await import('../packaging/image-pipeline.js')).buildImages(...a);
const buildAll = async (...a: Parameters<typeof import('../packaging/build-all.js').buildAll>) => (await import('../packaging/build-all.js')).buildAll(...a);
const buildBaseImage = async (...a: Parameters<typeof import('../packaging/base-image.js').buildBaseImage>) => (await import('../packaging/base-image.js')).buildBaseImage(...a);

const out = (line: string) => process.stdout.write(`${line}\n`);

interface CommonFlags {
  out: string;
  cacheDir?: string;
  ci?: boolean;
  json?: boolean;
  progress?: ProgressMode;
}

interface RpmFlags extends CommonFlags {
  ovsSource?: string;
  ovnSource?: string;
  buildNumber?: string;
  jobs?: string;
  ccache: boolean;
  ccacheDir?: string;
  debuginfo?: boolean;
  sourceDateEpoch?: string;
  nodeps?: boolean;
  plan?: boolean;
  signKey?: string;
  signKeyId?: string;
  signPassphraseFile?: string;
}

interface ImageFlags extends CommonFlags {
  rpms?: string;
  baseImage?: string;
  role?: string[];
}

function nonNegativeInt(value: string | undefined, option: string, problems: Problem[], min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    problems.push({ path: option, message: `must be an integer >= ${min} (got ${JSON.stringify(value)})` });
    return undefined;
  }
  return Number(value);
}

function progressOf(flags: CommonFlags): ProgressMode {
  if (flags.json) return 'silent';
  if (flags.ci || isCi()) return 'plain';
  return flags.progress ?? 'auto';
}

function commonOptions(cmd: Command): Command {
  return cmd
    .option('--cache-dir <dir>', `artifact and ccache cache (default ${defaultBuildCacheDir()})`)
    .option('--ci', 'CI mode: plain line-per-step output (also when CI=true); the summary is in OUT/build-summary.json')
    .option('--json', 'print the machine-readable summary on stdout instead of progress')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'plain', 'silent']));
}

function rpmOptions(cmd: Command): Command {
  return cmd
    .option('--ovs-source <src>', 'Open vSwitch: git URL[#ref], release tarball or source directory (default with an OVN git source: the commit its ovs submodule pins)')
    .option('--ovn-source <src>', 'OVN: git URL[#ref], release tarball or source directory')
    .option('--build-number <n>', 'first part of the RPM Release (default 1)')
    .option('--jobs <n>', 'parallel compile jobs (default: number of CPUs)')
    .option('--no-ccache', 'do not use ccache even when it is installed')
    .option('--ccache-dir <dir>', 'ccache directory (default CACHE/ccache)')
    .option('--debuginfo', 'also build -debuginfo packages (Fedora/EL rpmbuild)')
    .option('--source-date-epoch <seconds>', 'override the date taken from the sources (build time, clamped mtimes)')
    .option('--nodeps', "skip rpmbuild's BuildRequires check (default on Debian/Ubuntu, whose rpm database is empty)")
    .option(
      '--sign-key <file>',
      'sign every RPM (rpmsign) with this OpenPGP secret key file (armored or binary: gpg --export-secret-keys --armor KEYID > key.asc) and write a dnf repository beside the RPMs: repodata/ with repomd.xml signed (repomd.xml.asc) and the public key (repomd.xml.key)',
    )
    .option('--sign-key-id <id>', 'the key of --sign-key to sign with (fingerprint, key id or e-mail); needed when the file holds several secret keys')
    // The passphrase itself is never an argument: argv is visible to every user of the machine.
    .option('--sign-passphrase-file <file>', "file holding the key's passphrase (or set OVN_DEPLOY_SIGN_PASSPHRASE); for a key without one, give neither");
}

function rpmBuildOptions(flags: RpmFlags, outDir: string, subdir: string | undefined, command: string) {
  const problems: Problem[] = [];
  const buildNumber = nonNegativeInt(flags.buildNumber, '--build-number', problems, 1);
  const jobs = nonNegativeInt(flags.jobs, '--jobs', problems, 1);
  const sourceDateEpoch = nonNegativeInt(flags.sourceDateEpoch, '--source-date-epoch', problems, 0);
  if (flags.signKey === undefined) {
    if (flags.signKeyId !== undefined) problems.push({ path: '--sign-key-id', message: 'needs --sign-key (the key file it selects from)' });
    if (flags.signPassphraseFile !== undefined) problems.push({ path: '--sign-passphrase-file', message: 'needs --sign-key (the key it unlocks)' });
  }
  if (problems.length > 0) throw new InputError(problems);
  return {
    outDir,
    command,
    progress: progressOf(flags),
    ccache: flags.ccache,
    ...(subdir === undefined ? {} : { rpmSubdir: subdir }),
    ...(flags.ovsSource === undefined ? {} : { ovsSource: flags.ovsSource }),
    ...(flags.ovnSource === undefined ? {} : { ovnSource: flags.ovnSource }),
    ...(flags.cacheDir === undefined ? {} : { cacheDir: flags.cacheDir }),
    ...(buildNumber === undefined ? {} : { buildNumber }),
    ...(jobs === undefined ? {} : { jobs }),
    ...(flags.ccacheDir === undefined ? {} : { ccacheDir: flags.ccacheDir }),
    ...(flags.debuginfo ? { debuginfo: true } : {}),
    ...(sourceDateEpoch === undefined ? {} : { sourceDateEpoch }),
    ...(flags.nodeps ? { nodeps: true } : {}),
    ...(flags.plan ? { planOnly: true } : {}),
    ...(flags.signKey === undefined
      ? {}
      : {
          sign: {
            keyFile: flags.signKey,
            ...(flags.signKeyId === undefined ? {} : { keyId: flags.signKeyId }),
            ...(flags.signPassphraseFile === undefined ? {} : { passphraseFile: flags.signPassphraseFile }),
          },
        }),
  };
}

function roles(values: string[] | undefined): RoleName[] | undefined {
  if (values === undefined) return undefined;
  const list = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const bad = list.filter((r) => !(ROLE_NAMES as readonly string[]).includes(r));
  if (bad.length > 0) throw new InputError([{ path: '--role', message: `unknown role ${bad.join(', ')} (expected ${ROLE_NAMES.join(', ')})` }]);
  return list as RoleName[];
}

function printRpms(r: BuildRpmsResult): void {
  for (const l of r.planLines) out(l);
  for (const a of r.summary.artifacts) {
    const how = a.cached ? 'cached' : `built in ${(a.durationMs / 1000).toFixed(1)} s${a.compiled === undefined ? '' : ` (${a.compiled} compiled, ${a.ccacheHits ?? 0} from ccache)`}`;
    out(`${a.name} ${a.version}: ${how}: ${a.files.join(' ')}`);
  }
  if (r.output !== undefined) out(`manifest: ${r.output.manifestPath}`);
  const sig = r.summary.signing;
  if (sig !== undefined) out(`signed with ${sig.fingerprint} (${sig.uid}); dnf repository: ${sig.repository} (public key ${sig.publicKey})`);
}

function printImages(r: BuildImagesResult): void {
  for (const i of r.images) out(`${i.role}: ${i.cached ? 'cached' : 'built'} ${i.tag} (${(i.sizeBytes / 1e6).toFixed(1)} MB) -> ${i.archive}`);
  for (const s of r.skipped) out(`${s.role}: skipped (${s.reason})`);
  out(`manifest: ${r.manifestPath}`);
}

function printSummary(summary: BuildSummary): void {
  out(JSON.stringify(summary, null, 2));
}

export function buildCommand(): Command {
  const cmd = new Command('build').description(
    `build RPMs (Open vSwitch, OVN) and per-role container images, reusing every artifact whose inputs are unchanged (exit ${EXIT_MISSING_TOOL}: a required tool is not installed)`,
  );

  cmd.addCommand(
    commonOptions(rpmOptions(new Command('rpms').description('build the Open vSwitch (and OVN) RPMs from our specs')))
      .requiredOption('--out <dir>', 'where the RPMs and build-manifest.json go')
      .option('--plan', 'resolve the sources and show what would be built; build nothing')
      .action(async (flags: RpmFlags) => {
        const r = await buildRpms(rpmBuildOptions(flags, flags.out, undefined, 'build rpms'));
        if (flags.json) printSummary(r.summary);
        else printRpms(r);
      }),
  );

  cmd.addCommand(
    commonOptions(new Command('images').description('build per-role container images from RPMs (podman), exported as OCI archives'))
      .requiredOption('--rpms <dir>', 'directory with the RPMs (the --out of `build rpms`)')
      .requiredOption('--base-image <image>', 'base image: a local or registry image name, or a rootfs tarball (see `build base-image`)')
      .requiredOption('--out <dir>', 'where the OCI archives and build-manifest.json go')
      .option('--role <role...>', `roles to build (${ROLE_NAMES.join(', ')}); default: every role whose RPMs are present`)
      .action(async (flags: ImageFlags) => {
        const selected = roles(flags.role);
        const r = await buildImages({
          rpmsDir: flags.rpms as string,
          baseImage: flags.baseImage as string,
          outDir: flags.out,
          progress: progressOf(flags),
          ...(selected === undefined ? {} : { roles: selected }),
          ...(flags.cacheDir === undefined ? {} : { cacheDir: flags.cacheDir }),
        });
        if (flags.json) printSummary(r.summary);
        else printImages(r);
      }),
  );

  cmd.addCommand(
    commonOptions(rpmOptions(new Command('all').description('build the RPMs, then the images from them (OUT/rpms, OUT/images)')))
      .requiredOption('--base-image <image>', 'base image for the container images (image name or rootfs tarball)')
      .requiredOption('--out <dir>', 'output directory')
      .option('--role <role...>', `roles to build (${ROLE_NAMES.join(', ')}); default: every role whose RPMs are present`)
      .action(async (flags: RpmFlags & ImageFlags) => {
        const selected = roles(flags.role);
        const { outDir: _rpmOut, command: _label, ...rpmOpts } = rpmBuildOptions(flags, buildOutputPaths(flags.out).rpmsDir, undefined, 'build all (rpms)');
        const { rpms, images, summary } = await buildAll({
          outDir: flags.out,
          rpms: rpmOpts,
          images: {
            baseImage: flags.baseImage as string,
            progress: progressOf(flags),
            ...(selected === undefined ? {} : { roles: selected }),
            ...(flags.cacheDir === undefined ? {} : { cacheDir: flags.cacheDir }),
          },
        });
        if (flags.json) printSummary(summary);
        else {
          printRpms(rpms);
          printImages(images);
        }
      }),
  );

  cmd.addCommand(
    commonOptions(new Command('base-image').description('build a minimal Debian base rootfs tarball with mmdebstrap (for hosts without a registry)'))
      .requiredOption('--out <file>', 'where the rootfs tarball goes (import it with podman import, or pass it as --base-image)')
      .option('--suite <suite>', 'Debian suite', 'bookworm')
      .option('--include <pkgs>', `packages besides minbase (comma-separated; default ${DEFAULT_BASE_PACKAGES.join(',')})`)
      .action(async (flags: CommonFlags & { suite: string; include?: string }) => {
        const r = await buildBaseImage({
          out: flags.out,
          suite: flags.suite,
          ...(flags.include === undefined ? {} : { packages: flags.include.split(',').map((p) => p.trim()).filter((p) => p !== '') }),
          ...(flags.cacheDir === undefined ? {} : { cacheDir: flags.cacheDir }),
        });
        out(`${r.cached ? 'cached' : 'built'} ${r.out} (${(r.sizeBytes / 1e6).toFixed(1)} MB, inputs ${r.hash.slice(0, 12)})`);
      }),
  );
  return cmd;
}
