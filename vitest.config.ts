import { defineConfig } from 'vitest/config';

// Three projects: `unit` stays under a minute and touches no daemon; the slow ones drive real OVN, stunnel,
// openssl, rpmbuild or podman and is named *.slow.test.ts (split in two: `slow` and `slow-build`).
// `npm test` (the README's and CI's command) runs all, and there every slow test must execute
// (OVN_DEPLOY_REQUIRE_SLOW).
/** The slow files that build (RPMs, images, the packed tarball) or hammer the CLI with kill -9. */
const SLOW_BUILD = [
  'test/build-*.slow.test.ts',
  'test/images-tls.slow.test.ts',
  'test/pack.slow.test.ts',
  'test/render-crash.slow.test.ts',
  'test/pki-crash.slow.test.ts',
];

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
        },
      },
      {
        test: {
          name: 'slow',
          include: ['test/**/*.slow.test.ts'],
          exclude: [...SLOW_BUILD, 'node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Real daemons share 2 cores; files run one at a time so timings and ports stay sane.
          fileParallelism: false,
        },
      },
      {
        // Compilers and packagers: CPU-bound, no daemon, no site. scripts/test.sh runs this
        // project beside `slow`, at a lower priority, so the compilers take the cores the daemon
        // tests leave idle (those mostly wait on elections, timeouts and SSH).
        test: {
          name: 'slow-build',
          include: SLOW_BUILD,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
