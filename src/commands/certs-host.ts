/**
 * `ovn-deploy certs host ...` (hidden): the host side of the certificate lifecycle, run ON a host
 * by `certs` over SSH with the shipped tool. Each action is one function of certs/host-files.ts
 * on hostPaths(--root): files are named by kind (cert, caBundle, crl), never by path, and the key
 * is never printed: new-key prints its CSR, key-matches says yes or no.
 */
import { Command, Option } from './commander.js';
import { ExitError } from '../errors.js';
import { err, out, readStdin } from './cli-io.js';

const KINDS = ['cert', 'caBundle', 'crl'];

const rootOption = () => new Option('--root <dir>', "the host's root directory (tests)").default('/');

/** A certificate, CA bundle or CRL: a few KiB; a CRL with many revocations stays far below this. */
const MAX_STDIN = 4 * 1024 * 1024;

const stdin = async (): Promise<string> => (await readStdin(MAX_STDIN)).toString('utf8');

/** A certificate on stdin for `install-pair` / `restore-pair`: one, and no private key with it. */
async function certificateOnStdin(what: string): Promise<string> {
  const pem = await stdin();
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ExitError(`refusing to ${what}: stdin holds no certificate`, 2);
  if (/PRIVATE KEY-----/.test(pem)) throw new ExitError(`refusing to ${what}: stdin holds a private key`, 2);
  return pem;
}

async function paths(root: string) {
  const { hostPaths } = await import('../paths.js');
  return hostPaths(root);
}

export function certsHostCommand(): Command {
  const files = () => import('../certs/host-files.js');
  const cmd = new Command('host').description('the host side of `certs` (run over SSH by the certs commands)');
  cmd
    .command('read')
    .argument('<kind>', KINDS.join(' | '))
    .option('--backup', 'its rotation backup (FILE.prev)')
    .addOption(rootOption())
    .action(async (kind: string, o: { backup?: boolean; root: string }) => {
      const { ABSENT_EXIT, readPublicFile, PUBLIC_FILES } = await files();
      if (!(PUBLIC_FILES as readonly string[]).includes(kind)) throw new ExitError(`not a public TLS file kind: ${kind}`, 2);
      const content = await readPublicFile(await paths(o.root), { kind: kind as (typeof PUBLIC_FILES)[number], backup: o.backup === true });
      if (content === undefined) process.exitCode = ABSENT_EXIT;
      else process.stdout.write(content);
    });
  cmd
    .command('write')
    .argument('<kind>', KINDS.join(' | '))
    .option('--backup', 'its rotation backup (FILE.prev)')
    .option('--remove', 'remove it instead')
    .addOption(rootOption())
    .action(async (kind: string, o: { backup?: boolean; remove?: boolean; root: string }) => {
      const { writePublicFile, PUBLIC_FILES } = await files();
      if (!(PUBLIC_FILES as readonly string[]).includes(kind)) throw new ExitError(`not a public TLS file kind: ${kind}`, 2);
      const content = o.remove === true ? undefined : await stdin();
      if (content !== undefined && !content.includes('-----BEGIN ')) throw new ExitError(`refusing to write ${kind}: stdin holds no PEM`, 2);
      if (content !== undefined && /PRIVATE KEY-----/.test(content)) throw new ExitError(`refusing to write ${kind}: stdin holds a private key`, 2);
      await writePublicFile(await paths(o.root), { kind: kind as (typeof PUBLIC_FILES)[number], backup: o.backup === true }, content);
    });
  cmd
    .command('new-key')
    .requiredOption('--name <name>', 'CN of the CSR')
    .option('--san <name>', 'subjectAltName (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .requiredOption('--key-bits <n>', 'RSA key size')
    .addOption(rootOption())
    .action(async (o: { name: string; san?: string[]; keyBits: string; root: string }) => {
      const bits = Number(o.keyBits);
      if (!Number.isInteger(bits) || bits < 2048 || bits > 8192) throw new ExitError(`--key-bits: expected 2048 to 8192 (got ${o.keyBits})`, 2);
      const { CERT_NAME_RE } = await import('../pki/index.js');
      if (!CERT_NAME_RE.test(o.name)) throw new ExitError(`--name: expected a certificate name (${String(CERT_NAME_RE)}), got ${JSON.stringify(o.name.slice(0, 80))}`, 2);
      const sans = o.san ?? [];
      if (sans.length > 64 || sans.some((x) => x.length > 253 || !/^[A-Za-z0-9.:_-]+$/.test(x))) throw new ExitError('--san: at most 64 DNS names or IP addresses, each at most 253 characters of [A-Za-z0-9.:_-]', 2);
      const { pendingKeyCsr } = await files();
      process.stdout.write(await pendingKeyCsr(await paths(o.root), { name: o.name, sans, keyBits: bits }));
    });
  cmd
    .command('install-pair')
    .description('the certificate on stdin and the pending key become the key pair together')
    .addOption(rootOption())
    .action(async (o: { root: string }) => {
      const pem = await certificateOnStdin('install a pair');
      await (await files()).installPendingPair(await paths(o.root), pem);
    });
  cmd
    .command('restore-pair')
    .description('the previous key and the certificate on stdin go back together (a failed rotation)')
    .option('--no-cert', 'there was no certificate: remove it')
    .addOption(rootOption())
    .action(async (o: { cert: boolean; root: string }) => {
      const pem = o.cert ? await certificateOnStdin('restore a pair') : undefined;
      await (await files()).restorePreviousPair(await paths(o.root), pem);
    });
  cmd
    .command('key-matches')
    .addOption(rootOption())
    .action(async (o: { root: string }) => out((await (await files()).keyMatchesOnHost(await paths(o.root))) ? 'yes' : 'no'));
  cmd
    .command('follow-trust')
    .description('the bundle trust pin follows the CA bundle on stdin')
    .addOption(rootOption())
    .action(async (o: { root: string }) => {
      const pem = await stdin();
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ExitError('stdin holds no CA certificate', 2);
      await (await files()).followBundleTrust(await paths(o.root), pem);
    });
  cmd
    .command('reload')
    .argument('<service>', "a TLS service of the host's bundle (stunnel-server, stunnel-client)")
    .addOption(rootOption())
    .action(async (service: string, o: { root: string }) => {
      if (!/^stunnel-(server|client)$/.test(service)) throw new ExitError(`not a TLS service: ${service}`, 2);
      const { ZxRunner } = await import('../runner.js');
      await (await files()).reloadOnHost(o.root, service, new ZxRunner());
      err(`${service} reloaded`);
    });
  return cmd;
}
