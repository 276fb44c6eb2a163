/** One file per command; each exports a function that returns its commander Command. */
import type { Command } from 'commander';
import { applyCommand } from './apply.js';
import { backupCommand } from './backup.js';
import { buildCommand } from './build.js';
import { centralCommand } from './central.js';
import { certsCommand } from './certs.js';
import { deployCommand } from './deploy.js';
import { downCommand } from './down.js';
import { initCommand } from './init.js';
import { pkiCommand } from './pki.js';
import { renderCommand } from './render.js';
import { restoreCommand } from './restore.js';
import { schemaCommand } from './schema.js';
import { statusCommand } from './status.js';
import { superviseCommand } from './supervise.js';
import { upCommand } from './up.js';
import { validateCommand } from './validate.js';

export function registerCommands(program: Command): void {
  program.addCommand(upCommand());
  program.addCommand(applyCommand());
  program.addCommand(statusCommand());
  program.addCommand(deployCommand());
  program.addCommand(centralCommand());
  program.addCommand(downCommand());
  program.addCommand(certsCommand());
  program.addCommand(backupCommand());
  program.addCommand(restoreCommand());
  program.addCommand(pkiCommand());
  program.addCommand(buildCommand());
  program.addCommand(initCommand());
  program.addCommand(validateCommand());
  program.addCommand(schemaCommand());
  program.addCommand(renderCommand());
  program.addCommand(superviseCommand(), { hidden: true });
}
