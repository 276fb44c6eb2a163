/**
 * stunnel started with pre-bound listening sockets (systemd's socket-activation protocol). stunnel
 * closes the listeners it bound itself during every SIGHUP reload, so connections arriving then
 * are refused or reset (measured on stunnel 5.68: about 2 per reload under load); sockets it
 * inherited it keeps open, and connections queue in their backlog until the reload is done. On
 * real hosts a systemd .socket unit does the same (one ListenStream= per `accept`, in order).
 *
 * The inherited sockets are matched to the config's `accept` lines by position, so a reload must
 * not change those lines: a changed listener needs a restart.
 */
import { accessSync, constants } from 'node:fs';
import { stunnelActivationScript } from '../paths.js';

/** The distribution's python3 (a pyenv shim on PATH would only add startup time); OVS depends on it. */
export function systemPython(candidates: readonly string[] = ['/usr/bin/python3', '/usr/local/bin/python3']): string {
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return 'python3';
}

/** argv that runs `binary confPath` with every `accept` of confPath bound beforehand (same pid). */
export function socketActivatedStunnel(binary: string, confPath: string, python = systemPython()): string[] {
  return [python, stunnelActivationScript, confPath, binary, confPath];
}
