/**
 * commander, loaded through require(): its ESM wrapper makes Node parse and translate the CommonJS
 * package on every start (about 10 ms of the ~20 ms commander costs), and every command pays
 * start-up. The types are commander's own.
 */
import { createRequire } from 'node:module';
import type * as commander from 'commander';

const loaded = createRequire(import.meta.url)('commander') as typeof commander;

export const { Command, CommanderError, Option } = loaded;
export type Command = commander.Command;
export type CommanderError = commander.CommanderError;
export type Option = commander.Option;
