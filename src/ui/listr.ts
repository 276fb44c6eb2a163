/**
 * listr2 settings shared by every command that shows progress: the animated renderer on a
 * terminal, a plain line-per-event renderer when output is a pipe, a file or CI (CI=true), and
 * nothing at all when asked to be quiet.
 */
import { PRESET_TIMER, type ListrBaseClassOptions } from 'listr2';
import { isCi } from './ci.js';

export { isCi };

export type ProgressMode = 'auto' | 'plain' | 'silent';

/** Whether the animated renderer can be used (a TTY, not CI, not a dumb terminal). */
export function fancyOutput(stream: NodeJS.WriteStream = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !isCi(env) && env.TERM !== 'dumb';
}

export function listrOptions<Ctx>(mode: ProgressMode = 'auto'): ListrBaseClassOptions<Ctx, 'default', 'simple'> {
  return {
    renderer: 'default',
    fallbackRenderer: 'simple',
    fallbackRendererCondition: mode === 'plain' || !fancyOutput(),
    silentRendererCondition: mode === 'silent',
    // Errors are reported once, by the CLI's top-level catch: not collected and printed twice.
    collectErrors: false,
    exitOnError: true,
    rendererOptions: { collapseSubtasks: false, showErrorMessage: false, timer: PRESET_TIMER },
    fallbackRendererOptions: { timer: PRESET_TIMER },
  };
}
