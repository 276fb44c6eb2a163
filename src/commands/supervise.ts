/**
 * `ovn-deploy supervise --dir STATE` (internal, hidden from help): the own supervisor in the
 * foreground. `up` starts it detached; running it by hand is for debugging.
 */
import { Command } from './commander.js';

export function superviseCommand(): Command {
  return new Command('supervise')
    .description('(internal) keep the daemons of a state directory running until SIGTERM')
    .requiredOption('--dir <dir>', 'state directory whose supervisor/services.json to follow')
    .action(async (opts: { dir: string }) => {
      const { runSupervisorDaemon } = await import('../supervisor/daemon.js');
      process.exitCode = await runSupervisorDaemon(opts.dir);
    });
}
