/**
 * The real RemoteHost: the system OpenSSH client (src/tools/ssh.ts: BatchMode, host keys checked
 * against a known_hosts file, ControlMaster per host, timeouts) and the tool shipped by content id
 * (src/deploy/tool-archive.ts), built once per run and sent only to hosts that lack it.
 */
import type { Host } from '../inventory/types.js';
import { ZxRunner, type Runner } from '../runner.js';
import { Ssh, SshError } from '../tools/ssh.js';
import { saveLocalImage, shipImage, type LocalImage } from './image-archive.js';
import { buildToolArchive, shipTool, type ToolArchive } from './tool-archive.js';
import { sshTarget, type Connect, type RemoteHost } from './remote.js';

const oneLine = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(': ');

export interface SshSettings {
  knownHostsFile: string;
  identityFile?: string;
  connectTimeoutSec: number;
  /** Ship the tool when missing (deploy); status only reads. Default true. */
  shipTool?: boolean;
  /** Tests: record what goes over the wire. */
  runner?: Runner;
}

export function sshConnector(settings: SshSettings): Connect {
  const runner = settings.runner ?? new ZxRunner();
  let archive: Promise<ToolArchive> | undefined;
  // Saved once per run however many hosts need it.
  const images = new Map<string, Promise<LocalImage | undefined>>();
  return (host: Host): RemoteHost => {
    const ssh = new Ssh(sshTarget(host), {
      knownHostsFile: settings.knownHostsFile,
      ...(settings.identityFile === undefined ? {} : { identityFile: settings.identityFile }),
      connectTimeoutSec: settings.connectTimeoutSec,
      // No controlDir: each Ssh makes a private one for its ControlMaster socket and removes it
      // in close(), which deploy, status and central remove call for every host they reached.
      runner,
    });
    const remoteHost: RemoteHost = {
      name: host.name,
      unreachableReason: async () => {
        try {
          await ssh.run(['true'], { timeoutMs: (settings.connectTimeoutSec + 10) * 1000 });
          return undefined;
        } catch (err) {
          // Unreachable, host key or authentication: all mean this host cannot be deployed now.
          // One line: it goes into tables and JSON.
          if (err instanceof SshError) return oneLine(err.message);
          throw err;
        }
      },
      run: (argv, opts = {}) => ssh.run([...argv], opts),
      pushDirectory: (local, remoteDir) => ssh.pushDirectory(local, remoteDir),
      ensureTool: async () => {
        if (settings.shipTool === false) return false;
        archive ??= buildToolArchive({ runner });
        return (await shipTool(ssh, await archive)).shipped;
      },
      shipImage: async (ref) => {
        let local = images.get(ref);
        if (local === undefined) images.set(ref, (local = saveLocalImage(runner, ref)));
        const img = await local;
        return img === undefined ? undefined : shipImage(remoteHost, img);
      },
      close: () => ssh.close(),
    };
    return remoteHost;
  };
}
