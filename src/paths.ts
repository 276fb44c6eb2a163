/**
 * Every filesystem path ovn-deploy uses, in one place.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where templates/, specs/, containers/ live), in the source tree and when packed. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const templatesDir = path.join(packageRoot, 'templates');

/** Layout of a PKI directory (`pki init --dir DIR`). */
export function pkiPaths(dir: string) {
  return {
    dir,
    caCert: path.join(dir, 'ca', 'ca.crt'),
    caKey: path.join(dir, 'ca', 'ca.key'),
    /** Every CA certificate still trusted (current first); what TLS peers verify against. */
    caBundle: path.join(dir, 'ca', 'ca-bundle.crt'),
    crl: path.join(dir, 'ca', 'crl.pem'),
    index: path.join(dir, 'index.json'),
    lock: path.join(dir, '.lock'),
    cert: (name: string) => path.join(dir, 'certs', `${name}.crt`),
    key: (name: string) => path.join(dir, 'private', `${name}.key`),
    csr: (name: string) => path.join(dir, 'csr', `${name}.csr`),
  };
}
export type PkiPaths = ReturnType<typeof pkiPaths>;

/** The site inventory `init` writes when no --out is given (relative to the working directory). */
export const defaultSiteFile = 'site.yaml';

/** Default state directory of the local sandbox (`up`). */
export function defaultSandboxDir(): string {
  if (process.env.OVN_DEPLOY_DIR) return path.resolve(process.env.OVN_DEPLOY_DIR);
  return process.getuid?.() === 0
    ? '/var/lib/ovn-deploy/sandbox'
    : path.join(os.homedir(), '.local', 'state', 'ovn-deploy', 'sandbox');
}

/** The compiled CLI entry point; the own supervisor re-executes it as `ovn-deploy supervise`. */
export const cliPath = path.join(packageRoot, 'dist', 'cli.js');

/** Files of the own supervisor (`ovn-deploy supervise --dir STATE`) inside a state directory. */
export function supervisorPaths(stateDir: string) {
  const dir = path.join(path.resolve(stateDir), 'supervisor');
  return {
    dir,
    /** Desired services, written by clients (`ensure`, `stop`). */
    services: path.join(dir, 'services.json'),
    /** What the supervisor is running, written by the supervisor only. */
    status: path.join(dir, 'status.json'),
    pid: path.join(dir, 'supervisor.pid'),
    /** The supervisor's own stdout/stderr. */
    log: path.join(dir, 'supervisor.log'),
  };
}
export type SupervisorPaths = ReturnType<typeof supervisorPaths>;

/** Handlebars templates of the stunnel configs. */
export const stunnelTemplatesDir = path.join(templatesDir, 'stunnel');

/**
 * stunnel's files on a host, one set per side (`server`: TLS in front of ovsdb-server; `client`:
 * local plaintext ports tunnelled to the centrals). Distinct names so a host can run both.
 */
export function stunnelFiles(kind: 'server' | 'client', dirs: { runDir: string; logDir: string }) {
  return {
    /** File name of the rendered config (relative: the deploy step picks the directory). */
    confName: `stunnel-${kind}.conf`,
    pidFile: path.join(dirs.runDir, `stunnel-${kind}.pid`),
    logFile: path.join(dirs.logDir, `stunnel-${kind}.log`),
  };
}
