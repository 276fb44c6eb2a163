/**
 * The role images end to end, TLS only: images just built from OVS 3.3.8 + OVN 24.03.9 RPMs (the
 * archives in shared/sources beside the checkout; persistent RPM cache, fresh image cache, private
 * podman store), one central and two controller containers whose certificates come from the
 * project's PKI on read-only mounts. Both chassis register, a port on each chassis (a namespace
 * "vm" inside each controller container) pings the other across Geneve, and openssl s_client
 * against the central's NB, SB and RAFT ports shows what it accepts and refuses. The chassis use
 * the userspace datapath (no openvswitch kernel module here). Cleanup removes only what this file
 * made: its containers, its namespaces, its private store and temporary directory.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseImage } from '../src/packaging/base-image.js';
import { buildImages, type BuiltImage } from '../src/packaging/image-pipeline.js';
import { Podman } from '../src/packaging/podman.js';
import { buildRpms } from '../src/packaging/rpm-pipeline.js';
import { initPki, issueCertificate } from '../src/pki/index.js';
import { pkiPaths } from '../src/paths.js';
import { ZxRunner } from '../src/runner.js';
import { ALLOWED_CIPHER_RE } from '../src/stunnel/policy.js';
import { probeTls, type TlsProbeOptions } from '../src/tools/tls.js';
import { ltsSourcesFor, mountsUnder, persistentBuildCache, persistentCcache, persistentLtsBuildCache, podmanEnv, randomName, removePrivatePodmanStore, tmpDir } from './helpers/build-fixtures.js';
import { ContainerUnderlay, UNDERLAY_MTU } from './helpers/container-underlay.js';
import { scanImage } from './helpers/image-scan.js';
import { PKI_MOUNT, pkiMountDir, pkiVolume } from './helpers/pki-mount.js';

// The LTS sources and RPM cache of build-ovn-lts.slow: OVS 3.3.8 is compiled once per run.
const LTS = ltsSourcesFor('TLS-only role images (test/images-tls.slow.test.ts)');
const haveSources = LTS !== undefined;
const OVS_LTS = LTS?.ovs ?? '';
const OVN_LTS = LTS?.ovn ?? '';

const PORTS = { nb: 6641, sb: 6642, nbRaft: 6643, sbRaft: 6644 } as const;
const runner = new ZxRunner();
const prefix = randomName('oit');
const containers: string[] = [];
let root: string;
let env: Record<string, string>;
let podman: Podman;
let images: Record<'ovn-central' | 'ovn-controller', BuiltImage>;
let net: ContainerUnderlay;
let pki: ReturnType<typeof pkiPaths>;
/** Per container: a directory with key.pem, cert.pem, ca.pem, mounted read-only. */
const mounts: Record<string, string> = {};
const certs: Record<string, { cert: string; key: string }> = {};

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const exec = (name: string, argv: string[], opts: { privileged?: boolean; allowFailure?: boolean } = {}) =>
  podman.run(['exec', ...(opts.privileged === true ? ['--privileged'] : []), name, ...argv], { allowFailure: opts.allowFailure ?? false });

async function healthcheck(name: string): Promise<{ ok: boolean; out: string }> {
  const r = await podman.run(['healthcheck', 'run', name], { allowFailure: true });
  return { ok: r.exitCode === 0, out: `${r.stdout}${r.stderr}` };
}

async function logs(name: string): Promise<string> {
  const r = await podman.run(['logs', name], { allowFailure: true });
  return `${r.stdout}${r.stderr}`;
}

async function waitHealthy(name: string): Promise<void> {
  await waitFor(`${name} to be healthy`, async () => (await healthcheck(name)).ok).catch(async (err: unknown) => {
    throw new Error(`${String(err)}; last check: ${(await healthcheck(name)).out}\n${await logs(name)}`);
  });
}

async function pkiMount(name: string, files: { cert: string; key: string; ca: string }): Promise<string> {
  mounts[name] = await pkiMountDir(path.join(root, 'mounts', name), files);
  return mounts[name];
}

async function issue(name: string, role: 'central' | 'worker', sans: string[] = []): Promise<{ cert: string; key: string }> {
  const c = await issueCertificate(pki.dir, { name, role, sans, keyBits: 2048 });
  certs[name] = { cert: c.certPath, key: c.keyPath as string };
  return certs[name];
}

async function run(name: string, args: string[], image: string): Promise<void> {
  containers.push(name);
  await podman.run(['run', '-d', '--name', name, ...args, image]);
}

/** A container that must refuse to start: its exit code and what it said. */
async function runToExit(name: string, args: string[], image: string): Promise<{ code: number; out: string }> {
  containers.push(name);
  const r = await podman.run(['run', '--name', name, '--network', 'none', ...args, image], { allowFailure: true, timeoutMs: 60_000 });
  return { code: r.exitCode, out: `${r.stdout}${r.stderr}` };
}

const central = () => `${prefix}-central`;
const chassis = (i: 1 | 2) => `${prefix}-ch${i}`;
const phyMac = (i: 1 | 2) => `0a:00:00:00:01:0${i}`;
const vm = (i: 1 | 2) => ({ port: `p${i}`, mac: `0a:00:00:00:02:0${i}`, ip: `192.168.77.${i}` });

/** OVSDB JSON-RPC echo: data really flows to the server and back. */
function echo(): Pick<TlsProbeOptions, 'send' | 'expect'> {
  const id = `probe-${randomBytes(4).toString('hex')}`;
  return { send: JSON.stringify({ method: 'echo', params: [], id }), expect: new RegExp(`"id":"${id}"`) };
}

beforeAll(async () => {
  if (!haveSources) return;
  const started = Date.now();
  root = await tmpDir('images-tls');
  env = await podmanEnv(path.join(root, 'podman'));
  podman = new Podman(runner, env);
  const base = await buildBaseImage({ out: path.join(root, 'base.tar'), cacheDir: persistentBuildCache });
  const rpmsDir = path.join(root, 'rpms');
  await buildRpms({ ovsSource: OVS_LTS, ovnSource: OVN_LTS, outDir: rpmsDir, cacheDir: persistentLtsBuildCache, ccacheDir: persistentCcache, progress: 'silent' });
  const rpmsDone = Date.now();
  const r = await buildImages({ rpmsDir, baseImage: base.out, outDir: path.join(root, 'images'), roles: ['ovn-central', 'ovn-controller'], cacheDir: path.join(root, 'image-cache'), podmanEnv: env, progress: 'silent' });
  images = Object.fromEntries(r.images.map((i) => [i.role, i])) as typeof images;
  console.log(`RPMs (cache) ${((rpmsDone - started) / 1000).toFixed(0)} s, images built in ${((Date.now() - rpmsDone) / 1000).toFixed(0)} s`);
  for (const i of r.images) console.log(`${i.role} image ${i.tag}: ${(i.sizeBytes / 1e6).toFixed(1)} MB, OCI archive ${(i.archiveBytes / 1e6).toFixed(1)} MB`);

  net = new ContainerUnderlay(prefix);
  await net.create(['central', 'ch1', 'ch2', 'rogue']);
  await net.addressOnVeth('central', true);
  await net.addressOnVeth('rogue', false);

  pki = pkiPaths(path.join(root, 'pki'));
  await initPki(pki.dir, { keyBits: 2048, commonName: prefix });
  const ca = pki.caBundle;
  await pkiMount(central(), { ...(await issue('central', 'central', [net.node('central').ip])), ca });
  await pkiMount(chassis(1), { ...(await issue(chassis(1), 'worker')), ca });
  await pkiMount(chassis(2), { ...(await issue(chassis(2), 'worker')), ca });
  // A chassis certificate of another site's CA: same name, same role, the wrong issuer.
  const other = path.join(root, 'other-pki');
  await initPki(other, { keyBits: 2048, commonName: `${prefix}-other` });
  const foreign = await issueCertificate(other, { name: chassis(1), role: 'worker', keyBits: 2048 });
  certs.foreign = { cert: foreign.certPath, key: foreign.keyPath as string };
}, 40 * 60_000);

afterAll(async () => {
  if (!haveSources) return;
  if (env !== undefined) await removePrivatePodmanStore(path.join(root, 'podman'), env, containers);
  if (net !== undefined) await net.remove();
  const mounted = root === undefined ? [] : await mountsUnder(root);
  if (root !== undefined) await fs.rm(root, { recursive: true, force: true });
  expect(mounted).toEqual([]);
}, 5 * 60_000);

describe.skipIf(!haveSources)('role images from OVS 3.3.8 + OVN 24.03.9, TLS only', () => {
  it('the OCI archives declare labels and ports, and carry no compiler, source tree or private key', async () => {
    for (const [role, ports] of [
      ['ovn-central', ['6641/tcp', '6642/tcp', '6643/tcp', '6644/tcp']],
      ['ovn-controller', ['6081/udp']],
    ] as const) {
      const img = images[role];
      const cfg = JSON.parse((await runner.run(['skopeo', 'inspect', '--config', `oci-archive:${img.archive}`], { timeoutMs: 120_000 })).stdout) as {
        config: { Labels?: Record<string, string>; ExposedPorts?: Record<string, unknown>; Env?: string[]; Entrypoint?: string[] };
      };
      const labels = cfg.config.Labels ?? {};
      expect(labels['io.ovn-deploy.role']).toBe(role);
      expect(labels['io.ovn-deploy.healthcheck']).toBe('/usr/local/bin/ovn-deploy-healthcheck');
      expect(labels['io.ovn-deploy.tls']).toMatch(/TLSv1\.2.*read-only mount/);
      expect(labels['io.ovn-deploy.inputs']).toBe(img.hash);
      expect(labels['org.opencontainers.image.version']).toMatch(/^24\.03\.9-/);
      expect(Object.keys(cfg.config.ExposedPorts ?? {}).sort()).toEqual([...ports]);
      expect(cfg.config.Entrypoint).toEqual(['/usr/local/bin/ovn-deploy-entrypoint']);
      expect(cfg.config.Env).toContain('OPENSSL_CONF=/usr/local/lib/ovn-deploy/openssl-tls.cnf');
      // The OCI config has no health check field; the docker-format image podman keeps has it.
      const [local] = JSON.parse((await podman.run(['image', 'inspect', img.tag])).stdout) as { Healthcheck?: { Test: string[] } }[];
      expect(local?.Healthcheck?.Test).toEqual(['CMD', '/usr/local/bin/ovn-deploy-healthcheck']);

      const found = await scanImage(podman, img.tag);
      expect(found.files).toBeGreaterThan(1000);
      expect({ role, tools: found.tools, sources: found.sources, privateKeys: found.privateKeys }).toEqual({ role, tools: [], sources: [], privateKeys: [] });
    }
  });

  it('refuses to start without TLS: no PKI mount, a writable PKI mount, a plaintext remote', async () => {
    const c = images['ovn-central'].tag;
    const h = images['ovn-controller'].tag;
    const noPki = await runToExit(`${prefix}-nopki`, [], c);
    expect(noPki.code).not.toBe(0);
    expect(noPki.out).toContain(`cannot read ${PKI_MOUNT}/key.pem: mount the PKI directory read-only`);

    const writable = await runToExit(`${prefix}-rw`, ['-v', `${mounts[central()]}:${PKI_MOUNT}`], c);
    expect(writable.code).not.toBe(0);
    expect(writable.out).toContain(`${PKI_MOUNT}/key.pem is writable`);

    const plain = await runToExit(`${prefix}-tcp`, [...pkiVolume(mounts[chassis(1)]!), '-e', 'OVN_REMOTE=ssl:192.0.2.1:6642,tcp:192.0.2.2:6642'], h);
    expect(plain.code).not.toBe(0);
    expect(plain.out).toContain('OVN_REMOTE: tcp:192.0.2.2:6642: expected ssl:HOST:PORT (this image speaks only TLS)');
  });

  it('a central with a broken TLS setup runs its databases but is unhealthy', async () => {
    // The central's certificate with a chassis key: OVSDB cannot open a TLS listener at all.
    const broken = `${prefix}-broken`;
    await pkiMount(broken, { cert: certs.central!.cert, key: certs[chassis(1)]!.key, ca: pki.caBundle });
    await run(broken, ['--network', 'none', ...pkiVolume(mounts[broken]!)], images['ovn-central'].tag);
    await waitFor('the broken central to be a cluster member', async () => (await exec(broken, ['ovs-appctl', '-t', '/run/ovn/ovnsb_db.ctl', 'cluster/status', 'OVN_Southbound'], { allowFailure: true })).stdout.includes('Status: cluster member'));
    expect((await exec(broken, ['ovn-sbctl', '--timeout=10', 'list', 'SB_Global'])).exitCode).toBe(0);
    const h = await healthcheck(broken);
    expect(h.ok, h.out).toBe(false);
  });

  describe('one central and two chassis', () => {
    beforeAll(async () => {
      const cip = net.node('central').ip;
      await run(central(), ['--network', `ns:/run/netns/${net.node('central').netns}`, '-e', `OVN_CENTRAL_ADDRESS=${cip}`, ...pkiVolume(mounts[central()]!)], images['ovn-central'].tag);
      await waitHealthy(central());
      for (const i of [1, 2] as const) {
        const n = net.node(`ch${i}`);
        const name = chassis(i);
        await run(
          name,
          ['--network', `ns:/run/netns/${n.netns}`, '--cap-add', 'NET_ADMIN', '--device', '/dev/net/tun', '-e', `OVN_REMOTE=ssl:${cip}:${PORTS.sb}`, '-e', `OVN_SYSTEM_ID=${name}`, '-e', `OVN_ENCAP_IP=${n.ip}`, '-e', 'OVS_DATAPATH_TYPE=netdev', ...pkiVolume(mounts[name]!)],
          images['ovn-controller'].tag,
        );
        // The userspace datapath tunnels from an address on an OVS bridge: the veth goes into br-phy.
        await waitFor(`${name}'s ovsdb-server`, async () => (await exec(name, ['ovs-vsctl', '--timeout=5', 'show'], { allowFailure: true })).exitCode === 0);
        await exec(name, ['ovs-vsctl', '--may-exist', 'add-br', 'br-phy', '--', 'set', 'Bridge', 'br-phy', 'datapath_type=netdev', `other-config:hwaddr="${phyMac(i)}"`, 'other-config:disable-in-band=true', '--', 'set', 'Interface', 'br-phy', `mtu_request=${UNDERLAY_MTU}`, '--', '--may-exist', 'add-port', 'br-phy', n.dev]);
        await waitFor(`${name}'s br-phy`, async () => (await exec(name, ['ip', 'link', 'show', 'br-phy'], { allowFailure: true })).exitCode === 0);
        await exec(name, ['ip', 'addr', 'add', `${n.ip}/24`, 'dev', 'br-phy']);
        await exec(name, ['ip', 'link', 'set', 'br-phy', 'up']);
      }
      for (const [i, j] of [[1, 2], [2, 1]] as const) await exec(chassis(i), ['ovs-appctl', 'tnl/neigh/set', 'br-phy', net.node(`ch${j}`).ip, phyMac(j)]);
    }, 5 * 60_000);

    it('both chassis register over TLS and are healthy', async () => {
      const names = async () => (await exec(central(), ['ovn-sbctl', '--bare', '--columns=name', 'list', 'Chassis'])).stdout.split('\n').filter(Boolean).sort();
      await waitFor('both chassis in the Southbound', async () => (await names()).length === 2);
      expect(await names()).toEqual([chassis(1), chassis(2)].sort());
      for (const i of [1, 2] as const) {
        await waitHealthy(chassis(i));
        expect((await exec(chassis(i), ['ovs-vsctl', 'get', 'Open_vSwitch', '.', 'external_ids:ovn-remote'])).stdout.trim()).toBe(`"ssl:${net.node('central').ip}:${PORTS.sb}"`);
      }
      // The central's SB sees each chassis over TLS: its connections come from the chassis addresses.
      const encaps = (await exec(central(), ['ovn-sbctl', '--bare', '--columns=ip', 'list', 'Encap'])).stdout.split('\n').filter(Boolean).sort();
      expect(encaps).toEqual([net.node('ch1').ip, net.node('ch2').ip].sort());
    });

    it('a port bound on each chassis pings the other across Geneve', async () => {
      const sw = `sw-${prefix}`;
      await exec(central(), ['ovn-nbctl', 'ls-add', sw]);
      for (const i of [1, 2] as const) {
        const v = vm(i);
        await exec(central(), ['ovn-nbctl', 'lsp-add', sw, v.port, '--', 'lsp-set-addresses', v.port, `${v.mac} ${v.ip}`]);
        const name = chassis(i);
        await exec(name, ['ip', 'netns', 'add', 'vm'], { privileged: true });
        await exec(name, ['ovs-vsctl', '--', '--may-exist', 'add-port', 'br-int', v.port, '--', 'set', 'Interface', v.port, 'type=internal', `external_ids:iface-id=${v.port}`]);
        await waitFor(`${name}'s tap ${v.port}`, async () => (await exec(name, ['ip', 'link', 'show', v.port], { allowFailure: true })).exitCode === 0);
        for (const args of [
          ['link', 'set', v.port, 'netns', 'vm'],
          ['-n', 'vm', 'link', 'set', v.port, 'address', v.mac, 'mtu', '1400', 'up'],
          ['-n', 'vm', 'addr', 'add', `${v.ip}/24`, 'dev', v.port],
          ['-n', 'vm', 'link', 'set', 'lo', 'up'],
        ]) {
          await exec(name, ['ip', ...args], { privileged: true });
        }
      }
      for (const i of [1, 2] as const) await exec(central(), ['ovn-nbctl', '--timeout=60', 'wait-until', 'Logical_Switch_Port', vm(i).port, 'up=true']);
      const bound = (await exec(central(), ['ovn-sbctl', '--bare', '--columns=logical_port,chassis', 'find', 'Port_Binding', `logical_port=${vm(1).port}`])).stdout;
      expect(bound).toContain(vm(1).port);

      // The host's ping inside the VM namespace of chassis 1 (the image has no ping).
      const pid = (await podman.run(['inspect', '--format', '{{.State.Pid}}', chassis(1)])).stdout.trim();
      const ping = () => runner.run(['nsenter', `--net=/proc/${pid}/root/run/netns/vm`, 'ping', '-c', '3', '-i', '0.3', '-W', '2', vm(2).ip], { allowFailure: true, timeoutMs: 30_000 });
      let r = await ping();
      for (let k = 0; k < 10 && !/ 0% packet loss/.test(r.stdout); k++) r = await ping();
      expect(r.stdout, r.stderr).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
      // The frames left chassis 1 in a Geneve header towards chassis 2's address.
      const flows = (await exec(chassis(1), ['ovs-appctl', 'dpctl/dump-flows'])).stdout;
      expect(flows).toMatch(new RegExp(`tnl_push\\(.*dst=${net.node('ch2').ip.replace(/\./g, '\\.')}.*udp\\(src=\\d+,dst=6081`));
    });

    // Clients of NB and SB are chassis (and operators); RAFT peers are other centrals.
    describe.each([
      ['NB', PORTS.nb, chassis(1)],
      ['SB', PORTS.sb, chassis(1)],
      ['NB RAFT', PORTS.nbRaft, 'central'],
      ['SB RAFT', PORTS.sbRaft, 'central'],
    ] as const)('the %s port', (_label, port, client) => {
      const good = (o: Partial<TlsProbeOptions> = {}): TlsProbeOptions => ({
        host: net.node('central').ip,
        port,
        netns: net.node('central').netns,
        cert: certs[client]!.cert,
        key: certs[client]!.key,
        caFile: pki.caBundle,
        verifyName: net.node('central').ip,
        ...echo(),
        ...o,
      });

      it('accepts TLS 1.2 with a client certificate of the site CA, an ECDHE + AES-GCM cipher', async () => {
        const r = await probeTls(runner, good({ tlsVersion: '1.2' }));
        expect(r.ok, r.raw).toBe(true);
        expect(r.protocol).toBe('TLSv1.2');
        expect(r.cipher).toMatch(ALLOWED_CIPHER_RE);
        // No session resumption: the server hands out no ticket (OPENSSL_CONF of the image).
        expect(r.raw).not.toMatch(/TLS session ticket/);
      });

      const noCert = (): TlsProbeOptions => {
        const { cert: _c, key: _k, ...rest } = good({ tlsVersion: '1.2' });
        return rest;
      };
      it.each([
        ['TLS 1.3', () => good({ tlsVersion: '1.3' }), /protocol version/],
        ['TLS 1.1', () => good({ tlsVersion: '1.1' }), /protocol version/],
        ['a CBC cipher', () => good({ tlsVersion: '1.2', cipher: 'ECDHE-RSA-AES128-SHA256' }), /handshake failure/],
        ['a client without a certificate', noCert, /handshake failure|certificate required/],
        ['a certificate from another CA', () => good({ tlsVersion: '1.2', cert: certs.foreign!.cert, key: certs.foreign!.key }), /unknown ca/],
      ] as const)('refuses %s', async (_what, opts, why) => {
        const r = await probeTls(runner, opts());
        expect(r.ok, r.raw).toBe(false);
        expect(r.error, r.raw).toMatch(why);
        expect(r.reply).toBeUndefined();
      });
    });

    it('a chassis whose certificate another CA signed never registers, and is unhealthy', async () => {
      const rogue = `${prefix}-rogue`;
      // It trusts the site CA (so it would accept the central); the central does not trust it.
      await pkiMount(rogue, { ...certs.foreign!, ca: pki.caBundle });
      const n = net.node('rogue');
      await run(rogue, ['--network', `ns:/run/netns/${n.netns}`, '--cap-add', 'NET_ADMIN', '--device', '/dev/net/tun', '-e', `OVN_REMOTE=ssl:${net.node('central').ip}:${PORTS.sb}`, '-e', `OVN_SYSTEM_ID=${rogue}`, '-e', 'OVS_DATAPATH_TYPE=netdev', ...pkiVolume(mounts[rogue]!)], images['ovn-controller'].tag);
      // Its first TLS attempt has been made and failed.
      await waitFor(`${rogue}'s failed TLS connection`, async () => /ssl:[0-9.]+:6642: (connection attempt failed|connection dropped)/.test(await logs(rogue)));
      const h = await healthcheck(rogue);
      expect(h.ok, h.out).toBe(false);
      expect((await exec(rogue, ['ovn-appctl', '-t', 'ovn-controller', 'connection-status'])).stdout.trim()).toBe('not connected');
      const names = (await exec(central(), ['ovn-sbctl', '--bare', '--columns=name', 'list', 'Chassis'])).stdout;
      expect(names).not.toContain(rogue);
    });

    it('listens for TCP only on the four TLS ports of its address: no plaintext listener', async () => {
      const ss = await runner.run(['ss', '-Hltn'], { netns: net.node('central').netns, timeoutMs: 10_000 });
      const listeners = ss.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]).sort();
      const cip = net.node('central').ip;
      expect(listeners).toEqual(Object.values(PORTS).map((p) => `${cip}:${p}`).sort());
      // And a plaintext OVSDB client there gets nothing back.
      const plain = await runner.run(['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${cip}/${PORTS.nb}; printf '%s' '{"method":"echo","params":[],"id":1}' >&3; timeout 2 cat <&3`], { netns: net.node('central').netns, allowFailure: true, timeoutMs: 10_000 });
      expect(plain.stdout).not.toContain('"result"');
    });
  });
});
