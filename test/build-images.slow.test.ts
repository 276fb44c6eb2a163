/**
 * Container images built by `ovn-deploy build images` from our RPMs on a local base image
 * (mmdebstrap, cached in the checkout's .cache/ by its inputs), with podman using runc, cgroupfs
 * and a private store. The Open vSwitch image is tested for real everywhere; the OVN central and
 * controller images need OVN RPMs, hence an OVN source: OVN_SOURCE, else the OVN 23.03.1 archive in
 * shared/sources beside the checkout (skipped, loudly, only when neither exists). Containers run in
 * network namespaces this test creates (no host networking). Cleanup removes only what this file
 * created: its containers by name, its namespaces, and its private image store.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseImage, type BaseImageResult } from '../src/packaging/base-image.js';
import { buildImages } from '../src/packaging/image-pipeline.js';
import { Podman } from '../src/packaging/podman.js';
import { buildRpms } from '../src/packaging/rpm-pipeline.js';
import { pkiPaths } from '../src/paths.js';
import { initPki, issueCertificate } from '../src/pki/index.js';
import { ZxRunner } from '../src/runner.js';
import { OVS_TARBALL, mountsUnder, ovnSourceFor, persistentBuildCache, persistentCcache, podmanEnv, randomName, removePrivatePodmanStore, tmpDir } from './helpers/build-fixtures.js';
import { pkiMountDir, pkiVolume } from './helpers/pki-mount.js';

const OVN_SOURCE = ovnSourceFor('OVN central/controller image tests (test/build-images.slow.test.ts)');
const OVS_SOURCE = process.env.OVS_SOURCE ?? OVS_TARBALL;
const noOvn = OVN_SOURCE === undefined;
const runner = new ZxRunner();
let root: string;
let podman: Podman;
let env: Record<string, string>;
let base: BaseImageResult;
let rpmsDir: string;
const containers: string[] = [];
const namespaces: string[] = [];

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function healthy(name: string): Promise<boolean> {
  return (await podman.run(['healthcheck', 'run', name], { allowFailure: true })).exitCode === 0;
}

async function start(name: string, args: string[]): Promise<void> {
  containers.push(name);
  await podman.run(['run', '-d', '--name', name, ...args]);
}

/** Two namespaces joined by a veth pair: 10.N.M.1 (first) and 10.N.M.2 (second). */
async function namespacePair(prefix: string): Promise<{ a: string; b: string; ipA: string; ipB: string }> {
  const a = `${prefix}a`;
  const b = `${prefix}b`;
  const net = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 250)}`;
  const ip = (args: string[]) => runner.run(['ip', ...args], { timeoutMs: 10_000 });
  await ip(['netns', 'add', a]);
  namespaces.push(a);
  await ip(['netns', 'add', b]);
  namespaces.push(b);
  await ip(['link', 'add', `${prefix}0`, 'netns', a, 'type', 'veth', 'peer', 'name', `${prefix}1`, 'netns', b]);
  for (const [ns, dev, addr] of [
    [a, `${prefix}0`, `${net}.1/30`],
    [b, `${prefix}1`, `${net}.2/30`],
  ] as const) {
    await ip(['-n', ns, 'addr', 'add', addr, 'dev', dev]);
    await ip(['-n', ns, 'link', 'set', dev, 'up']);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  return { a, b, ipA: `${net}.1`, ipB: `${net}.2` };
}

beforeAll(async () => {
  root = await tmpDir('build-images');
  env = await podmanEnv(path.join(root, 'podman'));
  podman = new Podman(runner, env);
  const started = Date.now();
  base = await buildBaseImage({ out: path.join(root, 'base.tar'), cacheDir: persistentBuildCache });
  console.log(`base image: ${base.cached ? 'cached' : `built in ${((Date.now() - started) / 1000).toFixed(0)} s`}, ${(base.sizeBytes / 1e6).toFixed(0)} MB rootfs`);
  rpmsDir = path.join(root, 'rpms');
  await buildRpms({
    ovsSource: OVS_SOURCE,
    ...(OVN_SOURCE === undefined ? {} : { ovnSource: OVN_SOURCE }),
    outDir: rpmsDir,
    cacheDir: persistentBuildCache,
    ccacheDir: persistentCcache,
    progress: 'silent',
  });
  // A cold cache compiles OVS (and OVN): minutes on two shared cores, beyond the default hook timeout.
}, 40 * 60_000);

afterAll(async () => {
  if (env !== undefined) await removePrivatePodmanStore(path.join(root, 'podman'), env, containers);
  for (const ns of namespaces) await runner.run(['ip', 'netns', 'del', ns], { allowFailure: true });
  const mounted = root === undefined ? [] : await mountsUnder(root);
  if (root !== undefined) await fs.rm(root, { recursive: true, force: true });
  // Nothing of our store may stay mounted (fs.rm would have failed on it or left it behind).
  expect(mounted).toEqual([]);
});

describe('the Open vSwitch image from our RPMs', () => {
  it('builds, declares its health check, ports and volumes, and runs ovsdb-server and ovs-vswitchd', async () => {
    const cache = path.join(root, 'image-cache');
    const out = path.join(root, 'images');
    const r = await buildImages({ rpmsDir, baseImage: base.out, outDir: out, roles: ['openvswitch'], cacheDir: cache, podmanEnv: env, progress: 'silent' });
    const img = r.images[0];
    expect(img).toMatchObject({ role: 'openvswitch', cached: false, tag: 'localhost/ovn-deploy/openvswitch:3.1.0-1' });
    const baseSize = await podman.imageSize(r.baseImageId);
    console.log(`openvswitch image: ${((img?.sizeBytes ?? 0) / 1e6).toFixed(1)} MB (${(((img?.sizeBytes ?? 0) - baseSize) / 1e6).toFixed(1)} MB over the ${(baseSize / 1e6).toFixed(1)} MB base), OCI archive ${((img?.archiveBytes ?? 0) / 1e6).toFixed(1)} MB`);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'build-manifest.json'), 'utf8')) as { artifacts: { name: string; files: { path: string; sha256: string }[] }[] };
    expect(manifest.artifacts[0]?.files[0]?.path).toBe('openvswitch.oci.tar');

    const [inspected] = JSON.parse((await podman.run(['image', 'inspect', img?.tag as string])).stdout) as {
      Healthcheck?: { Test: string[] };
      Config: { ExposedPorts?: Record<string, unknown>; Volumes?: Record<string, unknown>; Labels?: Record<string, string> };
    }[];
    const config = inspected?.Config ?? {};
    expect(inspected?.Healthcheck?.Test).toEqual(['CMD', '/usr/local/bin/ovn-deploy-healthcheck']);
    expect(Object.keys(config.ExposedPorts ?? {})).toEqual(['6640/tcp']);
    expect(Object.keys(config.Volumes ?? {}).sort()).toEqual(['/run/openvswitch', '/var/lib/openvswitch', '/var/log/openvswitch']);
    expect(config.Labels?.['io.ovn-deploy.healthcheck']).toBe('/usr/local/bin/ovn-deploy-healthcheck');

    // Only this role's RPM, no compiler, no sources, no key material.
    const inside = await podman.run(['run', '--rm', '--entrypoint', '/bin/sh', img?.tag as string, '-c', 'rpm -qa | sort; for t in gcc cc make; do command -v $t; done; ls -A /usr/src; grep -rlsI -e "PRIVATE KEY" /etc /var/lib /root; true']);
    expect(inside.stdout.trim().split('\n')).toEqual(['openvswitch-3.1.0-1.x86_64']);

    const name = randomName('ovnd-ovs-');
    await start(name, ['--network', 'none', '--cap-add', 'NET_ADMIN', '--device', '/dev/net/tun', '-e', `OVS_SYSTEM_ID=${name}`, img?.tag as string]);
    await waitFor('the openvswitch container to be healthy', () => healthy(name));
    await podman.run(['exec', name, 'ovs-vsctl', 'add-br', 'br-test', '--', 'set', 'bridge', 'br-test', 'datapath_type=netdev']);
    await waitFor('br-test in ovs-vswitchd', async () => (await podman.run(['exec', name, 'ovs-appctl', 'dpif/show'], { allowFailure: true })).stdout.includes('br-test'));
    expect((await podman.run(["exec", name, "ovs-vsctl", "get", "Open_vSwitch", ".", "external_ids:system-id"])).stdout.trim().replace(/"/g, "")).toBe(name);

    // The binaries in the image are stripped.
    const copy = path.join(root, 'ovsdb-server.from-image');
    await podman.run(['cp', `${name}:/usr/sbin/ovsdb-server`, copy]);
    expect((await runner.run(['readelf', '-S', copy])).stdout).not.toMatch(/\.symtab|\.debug_info/);

    // SIGTERM stops every daemon promptly.
    const stopStarted = Date.now();
    await podman.run(['stop', '-t', '10', name]);
    expect(Date.now() - stopStarted).toBeLessThan(8000);
    expect((await podman.run(['inspect', '--format', '{{.State.ExitCode}}', name])).stdout.trim()).toBe('0');

    const again = await buildImages({ rpmsDir, baseImage: base.out, outDir: out, roles: ['openvswitch'], cacheDir: cache, podmanEnv: env, progress: 'silent' });
    expect(again.images[0]).toMatchObject({ cached: true, hash: img?.hash });

    // The OCI archive is a loadable image (last: loading retags it without the docker-format HEALTHCHECK).
    expect(await podman.load(img?.archive as string)).toContain('openvswitch');
  });

  it('refuses roles whose RPMs are missing, naming them', async () => {
    const onlyOvs = path.join(root, 'only-ovs');
    await fs.mkdir(onlyOvs, { recursive: true });
    for (const f of await fs.readdir(rpmsDir)) if (f.startsWith('openvswitch-3')) await fs.copyFile(path.join(rpmsDir, f), path.join(onlyOvs, f));
    const err = await buildImages({ rpmsDir: onlyOvs, baseImage: base.out, outDir: path.join(root, 'x'), roles: ['ovn-central'], cacheDir: path.join(root, 'image-cache'), podmanEnv: env, progress: 'silent' }).catch((e: unknown) => e);
    expect(String(err)).toMatch(/--role: ovn-central needs RPMs ovn, ovn-central, not in .*only-ovs \(build them with `ovn-deploy build rpms --ovn-source/);
  });
});

describe(`OVN images from ${OVN_SOURCE ?? 'no OVN source'}`, () => {
  // The images speak only TLS (#15): the central gets a central certificate, the chassis a worker
  // certificate, both of one PKI and mounted read-only, and the chassis an ssl: remote.
  it.skipIf(noOvn)('central: a logical switch added to NB appears in SB; controller: its chassis registers over TLS', async () => {
    const r = await buildImages({ rpmsDir, baseImage: base.out, outDir: path.join(root, 'ovn-images'), roles: ['ovn-central', 'ovn-controller'], cacheDir: path.join(root, 'image-cache'), podmanEnv: env, progress: 'silent' });
    for (const i of r.images) console.log(`${i.role} image: ${(i.sizeBytes / 1e6).toFixed(1)} MB, OCI archive ${(i.archiveBytes / 1e6).toFixed(1)} MB`);
    const central = r.images.find((i) => i.role === 'ovn-central')?.tag as string;
    const controller = r.images.find((i) => i.role === 'ovn-controller')?.tag as string;
    const prefix = randomName('obi');
    const net = await namespacePair(prefix);

    const c = `${prefix}-central`;
    const h = `${prefix}-chassis`;
    const pki = pkiPaths(path.join(root, 'pki'));
    await initPki(pki.dir, { keyBits: 2048, commonName: prefix });
    const mount = async (name: string, role: 'central' | 'worker', sans: string[]) => {
      const issued = await issueCertificate(pki.dir, { name, role, sans, keyBits: 2048 });
      return pkiVolume(await pkiMountDir(path.join(root, 'mounts', name), { cert: issued.certPath, key: issued.keyPath as string, ca: pki.caBundle }));
    };
    await start(c, ['--network', `ns:/run/netns/${net.a}`, '-e', `OVN_CENTRAL_ADDRESS=${net.ipA}`, ...(await mount(c, 'central', [net.ipA])), central]);
    await waitFor('the central to be healthy', () => healthy(c));
    const sw = `sw-${prefix}`;
    await podman.run(['exec', c, 'ovn-nbctl', 'ls-add', sw]);
    await waitFor(`${sw} in the Southbound Datapath_Binding table`, async () => (await podman.run(['exec', c, 'ovn-sbctl', '--bare', '--columns=external_ids', 'list', 'Datapath_Binding'])).stdout.includes(`name=${sw}`));

    await start(h, ['--network', `ns:/run/netns/${net.b}`, '--cap-add', 'NET_ADMIN', '--device', '/dev/net/tun', '-e', `OVN_REMOTE=ssl:${net.ipA}:6642`, '-e', `OVN_SYSTEM_ID=${h}`, '-e', 'OVS_DATAPATH_TYPE=netdev', ...(await mount(h, 'worker', [])), controller]);
    await waitFor('the chassis in the Southbound Chassis table', async () => (await podman.run(['exec', c, 'ovn-sbctl', '--bare', '--columns=name', 'list', 'Chassis'])).stdout.split('\n').includes(h));
    expect((await podman.run(['exec', c, 'ovn-sbctl', '--bare', '--columns=ip', 'list', 'Encap'])).stdout.trim()).toBe(net.ipB);
    await waitFor('the controller to be healthy', () => healthy(h));
  });
});
