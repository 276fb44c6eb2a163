import { defineConfig } from 'vitest/config';

// Two projects: `unit` stays under a minute and touches no daemon; `slow` drives real OVN, stunnel,
// openssl, rpmbuild or podman and is named *.slow.test.ts. `npm test` (the README's and CI's
// command) runs both, and there every slow test must execute (OVN_DEPLOY_REQUIRE_SLOW).
export default defineConfig({
  test: {
    // skips.ts lists what did not run and fails a run meant to be complete (scripts/test.sh).
    reporters: ['default', './test/reporters/skips.ts'],
    // Vitest's default on 2 cores is one worker; most unit files wait on child processes
    // (openssl, node, stunnel) rather than the CPU, so two keep the unit run under a minute.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.slow.test.ts', 'node_modules/**'],
          testTimeout: 20_000,
          // Files of a worker share loaded modules: re-importing src for each of ~70 files cost
          // about 18 s of the run (74 s isolated against 53-57 s shared, also in shuffled file
          // orders). So a unit test restores whatever it stubs (spies, env) before it ends.
          isolate: false,
        },
      },
      {
        test: {
          name: 'slow',
          include: ['test/**/*.slow.test.ts'],
          // In a full run, the test images' rootfs builds start at once, in the background.
          globalSetup: ['test/setup/prebuild-rootfs.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Real daemons share 2 cores; files run one at a time so timings and ports stay sane.
          fileParallelism: false,
        },
      },
    ],
  },
});
