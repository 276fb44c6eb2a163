#!/usr/bin/env node
// The supervisor is started by `up` on every cold start: load only what it needs rather than every
// command's modules (about 0.4 s less on the critical path of `up`).
const args = process.argv.slice(2);
if (args.length === 3 && args[0] === 'supervise' && args[1] === '--dir' && args[2] !== undefined) {
  const { runSupervisorDaemon } = await import('./supervisor/daemon.js');
  process.exitCode = await runSupervisorDaemon(args[2]);
} else if (args[0] === 'pki') {
  // `pki issue` in a loop is mostly key generation: its key starts first, and only the pki
  // command loads (the other commands' declarations cost ~40 ms of every start).
  if (args[1] === 'issue') (await import('./pki/early-key.js')).startEarlyKey(args);
  const [{ buildProgramWith, runProgram }, { pkiCommand }] = await Promise.all([import('./program.js'), import('./commands/pki.js')]);
  process.exitCode = await runProgram(
    buildProgramWith((program) => program.addCommand(pkiCommand())),
    process.argv,
  );
} else {
  const { main } = await import('./main.js');
  process.exitCode = await main(process.argv);
}
