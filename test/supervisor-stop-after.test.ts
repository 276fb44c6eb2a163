/**
 * OwnSupervisor.stop(names) keeps the other services and writes them back as the desired state:
 * an `after` that names a stopped service must go, or the supervisor ignores the whole file
 * (serviceProblems: unknown service) and the stop is never confirmed (apply's restart of the
 * stunnel client, which ovn-northd and ovn-controller start after, timed out on every host).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { supervisorPaths } from '../src/paths.js';
import { OwnSupervisor } from '../src/supervisor/own.js';
import { serviceProblems } from '../src/supervisor/spec.js';
import { readDesired, writeDesired } from '../src/supervisor/state.js';
import type { ServiceSpec } from '../src/supervisor/types.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'odsup-after-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const svc = (name: string, after?: string[]): ServiceSpec => ({ name, argv: ['sleep', '1000'], logFile: path.join(tmp, `${name}.log`), ...(after === undefined ? {} : { after }) });

it('stop(names) drops the stopped ones from the others\' `after`, so the desired state stays valid', async () => {
  const p = supervisorPaths(tmp);
  await writeDesired(p.services, { version: 1, revision: 'r0', services: [svc('nb'), svc('client'), svc('northd', ['nb', 'client']), svc('controller', ['client'])] });
  await new OwnSupervisor(tmp).stop(['client']); // no supervisor runs: only the desired state changes
  const desired = await readDesired(p.services);
  expect(desired?.services.map((s) => [s.name, s.after])).toEqual([
    ['nb', undefined],
    ['northd', ['nb']],
    ['controller', undefined],
  ]);
  expect(serviceProblems(desired?.services ?? [])).toEqual([]);
});
