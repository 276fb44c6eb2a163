/**
 * Issue 12, the parts outside the PKI: ordinary bad input is exit 2 with a message and no stack
 * trace (item 7), `validate` refuses addresses that cannot work and a metadata-agent site without
 * its section (item 9), and user files are read only when they are small regular files (item 10).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki } from '../src/pki/index.js';
import { canonicalAddress, parseIpAddress, unusableAddressReason } from '../src/net/address.js';
import { readInputFile } from '../src/input-file.js';
import { runCli } from './helpers/cli.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hostile-input-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const site = (...hostLines: string[]): string => ['site: lab', 'hosts:', ...hostLines, ''].join('\n');
const CENTRAL = ['  - { name: central1, addresses: [192.0.2.10], roles: [central] }'];
const write = (name: string, text: string): string => {
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
};
const noStack = (stderr: string): void => {
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr).not.toMatch(/internal error/);
};

describe('validate: addresses that cannot work (item 9)', () => {
  it.each([
    ['0.0.0.0', /the unspecified address/],
    ['::', /the unspecified address/],
    ['127.0.0.1', /a loopback address/],
    ['127.45.3.9', /a loopback address/],
    ['::1', /the loopback address/],
    ['224.0.0.251', /a multicast address/],
    ['ff02::1', /a multicast address/],
    ['255.255.255.255', /the broadcast address/],
    ['fe80::1', /an IPv6 link-local address/],
    ['::ffff:127.0.0.1', /a loopback address/],
  ])('refuses %s as a host address (exit 2, the field named)', async (addr, why) => {
    const f = write(`bad-${addr.replace(/[:.]/g, '_')}.yaml`, site(`  - { name: central1, addresses: ["${addr}"], roles: [central] }`));
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`hosts[0].addresses[0]: ${JSON.stringify(addr)} cannot be a host's address`);
    expect(r.stderr).toMatch(why);
  });

  it('refuses a zone id and an unusable encap ip', async () => {
    const f = write('zone.yaml', site(...CENTRAL, '  - { name: w1, addresses: ["fe80::1%eth0"], roles: [worker], encap: { ip: 0.0.0.0 } }'));
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hosts[1].addresses[0]: not an IPv4 or IPv6 address: "fe80::1%eth0" (zone ids are not allowed)');
    expect(r.stderr).toContain('hosts[1].encap.ip: "0.0.0.0" cannot be a host\'s address: the unspecified address');
  });

  it('accepts ordinary addresses, IPv4 link-local included (one link can use it)', async () => {
    const f = write('good.yaml', site('  - { name: central1, addresses: [192.0.2.10, "2001:db8::10", 169.254.10.1], roles: [central] }'));
    const r = await runCli(['validate', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('::ffff:192.0.2.11 is a duplicate of 192.0.2.11', async () => {
    const f = write('mapped.yaml', site('  - { name: central1, addresses: [192.0.2.11], roles: [central] }', '  - { name: central2, addresses: ["::ffff:192.0.2.11"], roles: [central] }'));
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hosts[1].addresses[0]: ::ffff:192.0.2.11 is already an address of hosts[0] (central1)');
  });

  it('refuses a metadata-agent site without a metadataAgent section: the rule render applies', async () => {
    const f = write('meta.yaml', site(...CENTRAL, '  - { name: w1, addresses: [192.0.2.21], roles: [worker, metadata-agent], encap: { ip: 192.0.2.21 } }'));
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('metadataAgent: required: host w1 has the metadata-agent role; add metadataAgent: { novaMetadataHost: ... }');
  });

  it('the policy module: one spelling per address, a reason per unusable one', () => {
    expect(parseIpAddress('::ffff:192.0.2.11')).toEqual({ family: 4, canonical: '192.0.2.11' });
    expect(parseIpAddress('::ffff:c000:20b')).toEqual({ family: 4, canonical: '192.0.2.11' });
    expect(canonicalAddress('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(parseIpAddress('fe80::1%eth0')).toBeUndefined();
    expect(unusableAddressReason('192.0.2.1')).toBeUndefined();
    expect(unusableAddressReason('2001:db8::1')).toBeUndefined();
    expect(unusableAddressReason('febf::1')).toMatch(/link-local/);
    expect(unusableAddressReason('fec0::1')).toBeUndefined();
  });
});

describe('user files: regular, small, not followed through links (item 10)', () => {
  it('a symlink (to a file with secrets) is refused and its lines are never printed', async () => {
    const secret = write('shadow', 'root:$y$j9T$SECRETHASH:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n');
    const link = path.join(tmp, 'site-link.yaml');
    symlinkSync(secret, link);
    const r = await runCli(['validate', link]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${link}: cannot read the site file: is a symbolic link: give the site file itself`);
    expect(r.stderr).not.toContain('SECRETHASH');
  });

  it('a text file that is not YAML is quoted by a short excerpt only', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `user${i}:$y$j9T$SECRETHASH${i}:19000:0:99999:7:::`);
    const f = write('not-yaml.txt', `${lines.join('\n')}\n`);
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: not a site file: none of its 200 top-level keys is a site-file field (expected "hosts"); it begins with "user0:$y$j9T$SECRETH…"`);
    expect(r.stderr.length).toBeLessThan(400);
    expect(r.stderr).not.toContain('SECRETHASH');
  });

  it('a binary file is refused without dumping it', async () => {
    const f = path.join(tmp, 'binary.yaml');
    writeFileSync(f, Buffer.concat([Buffer.from('hosts: '), Buffer.alloc(200_000, 0), Buffer.from('x'.repeat(100_000))]));
    const r = await runCli(['validate', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read the site file: is a binary file (a NUL byte at offset 7), expected text');
    expect(r.stderr.length).toBeLessThan(300);
  });

  it('a FIFO is refused at once instead of hanging', async () => {
    const fifo = path.join(tmp, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    const r = await runCli(['validate', fifo]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot read the site file: is a FIFO, expected a site file');
    expect(Date.now() - t0).toBeLessThan(2_000);
  }, 5_000);

  it('a 50 MB file is refused by its size, not read', async () => {
    const big = path.join(tmp, 'big.yaml');
    writeFileSync(big, '');
    truncateSync(big, 50 * 1024 * 1024);
    const r = await runCli(['validate', big]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot read the site file: is ${50 * 1024 * 1024} bytes, more than the 1048576 a site file may have`);
  });

  it('the reader reads at most its limit even when fstat said less (a growing file)', async () => {
    const f = write('exact.txt', 'abc');
    expect((await readInputFile(f, { what: 'test file', maxBytes: 3 })).toString()).toBe('abc');
    await expect(readInputFile(write('four.txt', 'abcd'), { what: 'test file', maxBytes: 3 })).rejects.toThrow(/is 4 bytes, more than the 3/);
  });
});

describe('ordinary bad input: exit 2, a message, no stack trace (item 7)', () => {
  let pki: string;
  let inv: string;
  let secret: string;
  beforeAll(async () => {
    pki = path.join(tmp, 'pki');
    await initPki(pki, { keyBits: 2048, commonName: 'hostile' });
    inv = path.join(tmp, 'site.yaml');
    expect((await runCli(['init', '--out', inv])).code).toBe(0);
    secret = write('secret', `${'a'.repeat(32)}\n`);
  });

  it('render --out FILE', async () => {
    const file = write('out-file', 'not a directory\n');
    const r = await runCli(['render', '--inventory', inv, '--out', file, '--pki', pki, '--metadata-secret-file', secret]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ovn-deploy: ${file}: --out: is not a directory: --out names the directory the bundles go into\n`);
  });

  it('render --out FILE/sub', async () => {
    const file = write('out-file2', 'x\n');
    const r = await runCli(['render', '--inventory', inv, '--out', path.join(file, 'sub'), '--pki', pki, '--metadata-secret-file', secret]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/out-file2\/sub(\/.*)?: a part of this path is a file, expected a directory/);
    noStack(r.stderr);
  });

  it.each([['status'], ['up'], ['down'], ['certs', 'status']])('%s --dir FILE', async (...cmd) => {
    const file = write(`dir-file-${cmd.join('-')}`, 'x\n');
    const r = await runCli([...cmd, '--dir', file]);
    noStack(r.stderr);
    // down has nothing to remove in a file: exit 0 with a message is right there.
    if (cmd[0] === 'down') expect(r.code).toBe(0);
    else {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(file);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('render into a full file system (a 256 KB tmpfs of its own, root only), then a read-only one: exit 1, one line naming the path and why, nothing left behind', async () => {
    const mnt = path.join(tmp, 'small-fs');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,nr_inodes=64', 'tmpfs', mnt]);
    try {
      const out = path.join(mnt, 'out');
      const full = await runCli(['render', '--inventory', inv, '--out', out, '--pki', pki, '--metadata-secret-file', secret]);
      expect(full.code, full.stderr).toBe(1);
      expect(full.stderr).toMatch(new RegExp(`^ovn-deploy: ${mnt}/.*: no space left on its file system \\(no free blocks or inodes\\)\n$`));
      noStack(full.stderr);
      // Nothing reached --out: the staging, the first record and the directory render made are gone.
      expect(readdirSync(mnt)).toEqual([]);
      mkdirSync(out);
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      const ro = await runCli(['render', '--inventory', inv, '--out', out, '--pki', pki, '--metadata-secret-file', secret]);
      expect(ro.code, ro.stderr).toBe(1);
      expect(ro.stderr).toMatch(new RegExp(`^ovn-deploy: ${out}/.*: its file system is mounted read-only\n$`));
      noStack(ro.stderr);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it.skipIf(process.getuid?.() !== 0)('render adding hosts to --out on a file system that runs out of inodes while the writer thread stages them (a tmpfs of its own, root only): exit 1, one line, the bundles and the record as they were, no staging left', async () => {
    const mnt = path.join(tmp, 'inode-fs');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m,nr_inodes=20000', 'tmpfs', mnt]);
    try {
      const out = path.join(mnt, 'out');
      const host = (n: string, ip: string, roles: string) => `  - { name: ${n}, addresses: [${ip}], roles: [${roles}]${roles === 'worker' ? `, encap: { type: geneve, ip: ${ip} }` : ''} }`;
      // Enough existing bundles that their signing is still running when the writer thread fails.
      const before = [host('central1', '192.0.2.1', 'central'), ...Array.from({ length: 200 }, (_, i) => host(`worker${100 + i}`, `198.51.100.${i + 1}`, 'worker'))];
      const site1 = write('inodes-1.yaml', ['site: inodes', 'hosts:', ...before, ''].join('\n'));
      // The new hosts first: the writer thread fails while the others still render and sign.
      const site2 = write('inodes-2.yaml', ['site: inodes', 'hosts:', host('worker8', '192.0.2.18', 'worker'), host('worker9', '192.0.2.19', 'worker'), ...before, ''].join('\n'));
      expect((await runCli(['render', '--inventory', site1, '--out', out, '--pki', pki])).code).toBe(0);
      const snapshot = () => execFileSync('sh', ['-c', 'cd "$1" && { find . -printf "%p %y\\n" | sort && find . -type f -printf "%p %s %T@\\n" | sort && cat .ovn-deploy-render.json; } | sha256sum', 'sh', out], { encoding: 'utf8' });
      const was = snapshot();
      const used = Number(execFileSync('df', ['--output=iused', mnt], { encoding: 'utf8' }).trim().split('\n')[1]);
      // Room for the staging directory, a bundle's copy and its files/ and three files: the fourth fails.
      execFileSync('mount', ['-o', `remount,nr_inodes=${used + 6}`, mnt]);
      const r = await runCli(['render', '--inventory', site2, '--out', out, '--pki', pki]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^ovn-deploy: ${out}/\\.render-staging-[^\n]*: no space left on its file system \\(no free blocks or inodes\\)\n$`));
      noStack(r.stderr);
      expect(snapshot()).toBe(was);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('init --out FILE/x', async () => {
    const file = write('init-file', 'x\n');
    const r = await runCli(['init', '--out', path.join(file, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`ovn-deploy: ${path.join(file, 'x')}: a part of this path is a file, expected a directory\n`);
  });

  it('apply --certificate DIR, --trust-ca of a non-CA file', async () => {
    const dir = path.join(tmp, 'a-dir');
    mkdirSync(dir, { recursive: true });
    const c = await runCli(['apply', '--bundle', dir, '--certificate', dir]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain(`${dir}: --certificate: cannot read the certificate: is a directory, expected a certificate`);
    const t = await runCli(['apply', '--bundle', dir, '--trust-ca', secret]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain(`${secret}: --trust-ca: holds no CA certificate`);
    noStack(c.stderr + t.stderr);
  });
});
