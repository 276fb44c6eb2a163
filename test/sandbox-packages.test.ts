import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitError } from '../src/errors.js';
import {
  SANDBOX_REQUIREMENTS,
  ensurePackages,
  installCommand,
  missingRequirements,
  packageFamily,
  packagesFor,
  realProbe,
  unavailablePackages,
  type Probe,
} from '../src/packages.js';
import { RecordingRunner } from '../src/runner.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'od-pkg-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A machine that has only `have` (programs by name, files by path). */
function probeWith(have: string[]): Probe {
  return { exists: (f) => have.includes(f), executable: (f) => have.includes(path.basename(f)), pathDirs: ['/usr/bin'] };
}

describe('package detection', () => {
  it('finds nothing missing on this machine (packages installed by scripts/install-deps.sh)', () => {
    expect(missingRequirements(SANDBOX_REQUIREMENTS, realProbe()).map((r) => r.why)).toEqual([]);
  });

  it('maps missing programs to Debian and Fedora packages, once each', () => {
    const missing = missingRequirements(SANDBOX_REQUIREMENTS, probeWith(['ip', 'ping', 'ethtool', 'stunnel', '/usr/share/ovn/ovn-nb.ovsschema']));
    expect(packagesFor(missing, 'debian')).toEqual(['ovn-central', 'ovn-host', 'openvswitch-switch']);
    expect(packagesFor(missing, 'fedora')).toEqual(['ovn-central', 'ovn', 'ovn-host', 'openvswitch']);
  });

  it('accepts stunnel under either name', () => {
    const stunnelReq = SANDBOX_REQUIREMENTS.filter((r) => r.binaries?.includes('stunnel4'));
    expect(missingRequirements(stunnelReq, probeWith(['stunnel']))).toEqual([]);
    expect(missingRequirements(stunnelReq, probeWith([]))).toHaveLength(1);
  });

  it('knows the distribution family from os-release', () => {
    expect(packageFamily('ID=debian\nVERSION_ID="12"\n')).toBe('debian');
    expect(packageFamily('ID=ubuntu\nID_LIKE=debian\n')).toBe('debian');
    expect(packageFamily('ID="rocky"\nID_LIKE="rhel centos fedora"\n')).toBe('fedora');
    expect(packageFamily('ID=alpine\n')).toBeUndefined();
  });

  it('reads the packages a package manager could not find', () => {
    expect(unavailablePackages('E: Unable to locate package ovn-hostx\nE: Package \'stunnel9\' has no installation candidate')).toEqual(['ovn-hostx', 'stunnel9']);
    expect(unavailablePackages('No match for argument: ovn-central\nError: Unable to find a match')).toEqual(['ovn-central']);
  });
});

describe('ensurePackages (mocked package manager)', () => {
  const nothing = probeWith([]);

  it('does nothing, and runs nothing, when everything is present', async () => {
    const runner = new RecordingRunner();
    const r = await ensurePackages(runner, { probe: realProbe() });
    expect(r.installed).toEqual([]);
    expect(runner.calls).toEqual([]);
  });

  it('refuses when not root, naming the packages and the command to run', async () => {
    const runner = new RecordingRunner();
    const err = await ensurePackages(runner, { probe: nothing, family: 'debian', isRoot: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExitError);
    const msg = (err as ExitError).message;
    expect(msg).toContain('ovn-central ovn-host openvswitch-switch stunnel4 iproute2 iputils-ping ethtool');
    expect(msg).toContain('sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends');
    expect(runner.calls).toEqual([]);
  });

  it('installs with apt-get under a policy-rc.d guard, updating the lists once when a package is not found', async () => {
    const policy = path.join(tmp, 'policy-rc.d');
    let installs = 0;
    let guardSeen = false;
    const runner = new RecordingRunner((argv) => {
      if (argv.includes('install')) {
        installs++;
        guardSeen = existsSync(policy);
        return installs === 1 ? { exitCode: 100, stderr: 'E: Unable to locate package ovn-host' } : {};
      }
      return {};
    });
    const probe = probeWith([]);
    const err = await ensurePackages(runner, { probe, family: 'debian', isRoot: true, policyRcPath: policy }).catch((e: unknown) => e);
    // The mocked install "succeeds" but installs nothing: the post-check must say so.
    expect((err as ExitError).message).toMatch(/still missing/);
    expect(runner.calls.map((c) => c.argv.slice(0, 4).join(' '))).toEqual([
      'apt-get -o DPkg::Lock::Timeout=600 install',
      'apt-get -o DPkg::Lock::Timeout=600 update',
      'apt-get -o DPkg::Lock::Timeout=600 install',
    ]);
    expect(runner.calls[0]?.opts.env?.DEBIAN_FRONTEND).toBe('noninteractive');
    expect(guardSeen).toBe(true);
    expect(existsSync(policy)).toBe(false);
  });

  it('says which package the repositories do not have', async () => {
    const runner = new RecordingRunner((argv) => (argv[0] === 'dnf' ? { exitCode: 1, stderr: 'No match for argument: ovn-host\nError: Unable to find a match: ovn-host' } : {}));
    const err = await ensurePackages(runner, { probe: nothing, family: 'fedora', isRoot: true }).catch((e: unknown) => e);
    expect((err as ExitError).message).toMatch(/dnf cannot find ovn-host in the configured repositories/);
    expect(installCommand('fedora', ['a'])).toEqual(['dnf', 'install', '-y', 'a']);
  });
});
