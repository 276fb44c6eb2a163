/**
 * Where the build tests find upstream sources: the environment variable wins, else the archive in
 * shared/sources beside the checkout, and only when neither exists do they skip, with a warning
 * that names both.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SHARED_LTS_OVN_ARCHIVE, SHARED_LTS_OVS_ARCHIVE, SHARED_OVN_ARCHIVE, ltsSourcesFor, ovnSourceFor, tmpDir } from './helpers/build-fixtures.js';

let root: string;
let archives: { ovs: string; ovn: string; old: string };

beforeAll(async () => {
  root = await tmpDir('test-sources');
  archives = { ovs: path.join(root, 'openvswitch-3.3.8.tar.xz'), ovn: path.join(root, 'ovn-24.03.9.tar.xz'), old: path.join(root, 'ovn-23.03.1.tar.xz') };
  for (const f of Object.values(archives)) await fs.writeFile(f, 'fixture');
});

afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

function warnings(fn: () => unknown): { result: unknown; text: string } {
  const spy = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    const result = fn();
    return { result, text: spy.mock.calls.map((c) => c.join(' ')).join('\n') };
  } finally {
    spy.mockRestore();
  }
}

describe('build test sources', () => {
  it('the shared archives are the ones beside the checkout', () => {
    expect(path.basename(path.dirname(SHARED_OVN_ARCHIVE))).toBe('sources');
    expect([SHARED_OVN_ARCHIVE, SHARED_LTS_OVS_ARCHIVE, SHARED_LTS_OVN_ARCHIVE].map((p) => path.basename(p))).toEqual(['ovn-23.03.1.tar.xz', 'openvswitch-3.3.8.tar.xz', 'ovn-24.03.9.tar.xz']);
  });

  it('takes OVS_SOURCE / OVN_SOURCE first, else the shared archives, without a warning', () => {
    const shared = { ovs: archives.ovs, ovn: archives.ovn };
    const fromEnv = warnings(() => ltsSourcesFor('t', { OVS_SOURCE: '/src/ovs', OVN_SOURCE: 'https://example.invalid/ovn.git#v24.03.9' }, shared));
    expect(fromEnv).toEqual({ result: { ovs: '/src/ovs', ovn: 'https://example.invalid/ovn.git#v24.03.9' }, text: '' });
    expect(warnings(() => ltsSourcesFor('t', {}, shared))).toEqual({ result: shared, text: '' });
    expect(warnings(() => ltsSourcesFor('t', { OVS_SOURCE: '' }, shared)).result).toEqual(shared);
    expect(warnings(() => ovnSourceFor('t', {}, archives.old))).toEqual({ result: archives.old, text: '' });
  });

  it('skips only when neither exists, naming the variable and the missing archive', () => {
    const missing = path.join(root, 'absent', 'ovn-24.03.9.tar.xz');
    const one = warnings(() => ltsSourcesFor('the LTS test', {}, { ovs: archives.ovs, ovn: missing }));
    expect(one.result).toBeUndefined();
    expect(one.text).toContain('SKIPPED: the LTS test: no OVN 24.03 source. OVN_SOURCE is not set and');
    expect(one.text).toContain(missing);
    expect(one.text).not.toContain('OVS_SOURCE');
    // The variable alone is enough, even without the archive.
    expect(warnings(() => ltsSourcesFor('t', { OVN_SOURCE: '/src/ovn' }, { ovs: archives.ovs, ovn: missing })).result).toEqual({ ovs: archives.ovs, ovn: '/src/ovn' });
    const old = warnings(() => ovnSourceFor('the 23.03 test', {}, missing));
    expect(old.result).toBeUndefined();
    expect(old.text).toMatch(/OVN_SOURCE is not set and .*absent\/ovn-24\.03\.9\.tar\.xz does not exist/);
  });
});
