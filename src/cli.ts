#!/usr/bin/env node
// The supervisor is started by `up` on every cold start: load only what it needs rather than the
// command-line program (about 0.4 s less on the critical path of `up`).
const args = process.argv.slice(2);
if (args.length === 3 && args[0] === 'supervise' && args[1] === '--dir' && args[2] !== undefined) {
  const { runSupervisorDaemon } = await import('./supervisor/daemon.js');
  process.exitCode = await runSupervisorDaemon(args[2]);
} else {
  // `pki issue` in a loop is mostly key generation: its key starts first, while the program loads.
  if (args[0] === 'pki' && args[1] === 'issue') (await import('./pki/early-key.js')).startEarlyKey(args);
  const { main } = await import('./main.js');
  process.exitCode = await main(process.argv);
}
