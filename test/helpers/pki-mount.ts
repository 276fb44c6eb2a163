/**
 * The PKI directory a role container mounts read-only at /etc/ovn-deploy/pki: what an operator
 * puts on the host for one container (key.pem 0600, cert.pem, ca.pem), copied from the project's
 * PKI so the container never sees the CA key or another host's key.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const PKI_MOUNT = '/etc/ovn-deploy/pki';

export async function pkiMountDir(dir: string, files: { cert: string; key: string; ca: string }): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.copyFile(files.key, path.join(dir, 'key.pem'));
  await fs.chmod(path.join(dir, 'key.pem'), 0o600);
  await fs.copyFile(files.cert, path.join(dir, 'cert.pem'));
  await fs.copyFile(files.ca, path.join(dir, 'ca.pem'));
  return dir;
}

/** podman arguments for that mount, read-only. */
export const pkiVolume = (dir: string): string[] => ['-v', `${dir}:${PKI_MOUNT}:ro`];
