/**
 * The TLS policy files of the role images are generated from src/stunnel/policy.ts: the shell
 * fragment (sourced by bash, as the entrypoints do) and the OpenSSL configuration (read by the
 * real openssl, as every process in the images does through OPENSSL_CONF).
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TLS_OPENSSL_CONF, TLS_POLICY_SHELL, tlsPolicyFiles } from '../src/packaging/image-tls.js';
import { TLS_CIPHERS, TLS_VERSION } from '../src/stunnel/policy.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-image-tls-'));
  for (const [f, content] of tlsPolicyFiles()) await fs.writeFile(path.join(dir, f), content);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

it('the shell fragment gives OVSDB the policy version and cipher list', () => {
  const r = spawnSync('bash', ['-c', `set -eu; . "$1"; printf '%s\\n' "$OVN_DEPLOY_TLS_PROTOCOLS" "$OVN_DEPLOY_TLS_CIPHERS"`, 'sh', path.join(dir, TLS_POLICY_SHELL)], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout.split('\n').slice(0, 2)).toEqual([TLS_VERSION, TLS_CIPHERS.join(':')]);
});

it('OpenSSL reads the configuration and is left with exactly the policy ciphers for TLS 1.2', () => {
  const r = spawnSync('openssl', ['ciphers', '-s', '-tls1_2'], { encoding: 'utf8', env: { ...process.env, OPENSSL_CONF: path.join(dir, TLS_OPENSSL_CONF) } });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  expect(r.stdout.trim().split(':')).toEqual([...TLS_CIPHERS]);
});
