/**
 * `ovn-deploy pki ...`: the CA, issuing/signing, revocation, CRL refresh and status. Prints short
 * confirmations (paths, serials, dates) and never key material.
 */
import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Command } from './commander.js';
import { InputError, type Problem } from '../errors.js';
import { writeFilesAtomic } from '../fsx.js';
import { pkiPaths } from '../paths.js';
import { LEAF_ROLES, REVOCATION_REASONS, type IssuedCertificate, type LeafRole, type RevocationReason } from '../pki/types.js';
import { err, out, positiveInt, readInputText, throwIfProblems } from './cli-io.js';

/** node-forge and @peculiar/x509 come with the PKI: loaded by the action that uses them. */
const pki = () => import('../pki/index.js');
/** Issuing and signing alone: no CRL code (@peculiar/x509), which `pki issue` in a loop would pay every time. */
const pkiIssue = () => import('../pki/issue.js');

/** Library field -> the option a CLI user typed, so problems name what they can fix. */
const OPTION_OF: Record<string, string> = {
  dir: '--dir',
  name: '--name',
  role: '--role',
  sans: '--san',
  host: '--host',
  validityDays: '--days',
  keyBits: '--key-bits',
  commonName: '--cn',
  nextUpdateDays: '--days',
  renewalWindowDays: '--renewal-days',
  reason: '--reason',
};

async function withOptionNames<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    throw new InputError(
      e.problems.map((p) => {
        if (p.file !== undefined) return p;
        const m = /^([A-Za-z]+)(.*)$/.exec(p.path);
        const option = m === null ? undefined : OPTION_OF[m[1] ?? ''];
        return option === undefined ? p : { ...p, path: `${option}${m?.[2] ?? ''}` };
      }),
    );
  }
}

function role(value: string | undefined, problems: Problem[]): LeafRole {
  if (value === undefined || !(LEAF_ROLES as readonly string[]).includes(value)) {
    problems.push({ path: '--role', message: `expected one of ${LEAF_ROLES.join(', ')} (got ${JSON.stringify(value ?? '')})` });
  }
  return value as LeafRole;
}

/** `--san a --san b,c` and `--san a b` all give [a, b, c]. */
function sans(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

function printIssued(what: string, c: IssuedCertificate): void {
  out(`${what} ${c.name} (${c.role}): serial ${c.serial}, valid until ${c.notAfter.toISOString()}`);
  out(`  certificate: ${c.certPath}`);
  if (c.keyPath !== undefined) out(`  private key: ${c.keyPath} (mode 0600)`);
}

interface DirOpt {
  dir: string;
}

function initSub(): Command {
  return new Command('init')
    .description('create the CA (RSA 3072, 10 years), an empty index, the CA bundle and a first CRL; keeps an existing CA')
    .requiredOption('--dir <dir>', 'PKI directory')
    .option('--key-bits <n>', 'CA key size in bits (default 3072)')
    .option('--days <n>', 'CA lifetime in days (default 3650)')
    .option('--cn <name>', 'CA subject: "ovn-deploy CA <name>" (default: this host name)')
    .action(async (o: DirOpt & { keyBits?: string; days?: string; cn?: string }) => {
      const problems: Problem[] = [];
      const keyBits = positiveInt(o.keyBits, '--key-bits', problems);
      const validityDays = positiveInt(o.days, '--days', problems);
      throwIfProblems(problems);
      const { initPki } = await pki();
      const r = await withOptionNames(() =>
        initPki(o.dir, {
          ...(keyBits === undefined ? {} : { keyBits }),
          ...(validityDays === undefined ? {} : { validityDays }),
          ...(o.cn === undefined ? {} : { commonName: o.cn }),
        }),
      );
      const p = pkiPaths(o.dir);
      out(r.created ? `created CA in ${o.dir}` : `CA already present in ${o.dir}: kept`);
      out(`  CA certificate: ${r.caCertPath}`);
      out(`  CA bundle: ${p.caBundle}`);
      out(`  CRL: ${p.crl}`);
    });
}

function issueSub(): Command {
  return new Command('issue')
    .description('issue a certificate with a fresh private key (central: server+client; worker, metadata-agent: client)')
    .requiredOption('--dir <dir>', 'PKI directory')
    .requiredOption('--name <name>', 'certificate name (a worker: its chassis system-id)')
    .requiredOption('--role <role>', LEAF_ROLES.join(' | '))
    .option('--san <nameOrIp...>', 'extra DNS name or IP for the subjectAltName (repeatable, or comma-separated)')
    .option('--days <n>', 'lifetime in days (default 730)')
    .option('--key-bits <n>', 'key size in bits (default 2048)')
    .option('--host <host>', 'host the certificate belongs to (default: the name)')
    .action(async (o: DirOpt & { name: string; role: string; san?: string[]; days?: string; keyBits?: string; host?: string }) => {
      const problems: Problem[] = [];
      const r = role(o.role, problems);
      const validityDays = positiveInt(o.days, '--days', problems);
      const keyBits = positiveInt(o.keyBits, '--key-bits', problems);
      const [{ checkKeyBits }, { generateKeyPair, DEFAULT_LEAF_KEY_BITS }, { takeEarlyKey }] = await Promise.all([
        import('../pki/validate.js'),
        import('../pki/keygen.js'),
        import('../pki/early-key.js'),
      ]);
      checkKeyBits(keyBits, '--key-bits', problems);
      throwIfProblems(problems);
      // The key is made on the threadpool while node-forge and the certificate code load; cli.ts
      // usually started it already, before the commands loaded (early-key.ts).
      const bits = keyBits ?? DEFAULT_LEAF_KEY_BITS;
      const keyPair = takeEarlyKey(bits) ?? generateKeyPair(bits);
      keyPair.catch(() => undefined); // awaited below; a failed request must not leave it unhandled
      const s = sans(o.san);
      const { issueCertificate } = await pkiIssue();
      const c = await withOptionNames(() =>
        issueCertificate(
          o.dir,
          {
            name: o.name,
            role: r,
            ...(s === undefined ? {} : { sans: s }),
            ...(validityDays === undefined ? {} : { validityDays }),
            ...(keyBits === undefined ? {} : { keyBits }),
            ...(o.host === undefined ? {} : { host: o.host }),
          },
          { keyPair },
        ),
      );
      printIssued('issued', c);
    });
}

/** A CSR is a few KiB: anything much larger is not one (and is not read whole). */
const CSR_MAX_BYTES = 64 * 1024;

const readCsrFile = (file: string): Promise<string> => readInputText(file, { what: 'CSR', maxBytes: CSR_MAX_BYTES });

/** Where `p` really is: its nearest existing ancestor with every link resolved, plus the rest. */
function resolvedThroughLinks(p: string): string {
  const abs = path.resolve(p);
  for (let d = abs; ; d = path.dirname(d)) {
    try {
      return path.join(realpathSync(d), path.relative(d, abs));
    } catch {
      if (d === path.dirname(d)) return abs;
    }
  }
}

/**
 * Where a copy of a certificate may go, checked before anything is signed: a file (not a
 * directory), never inside the PKI directory, however it is reached (a symlinked parent too).
 */
function checkCopyTarget(file: string, option: string, pkiDir: string, problems: Problem[]): void {
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory()) return void problems.push({ path: option, message: `${file} is a directory: give the file to write` });
  if (st !== undefined && !st.isFile()) return void problems.push({ path: option, message: `${file} is not a regular file` });
  const parent = resolvedThroughLinks(path.dirname(file));
  const pkiReal = resolvedThroughLinks(pkiDir);
  if (parent === pkiReal || parent.startsWith(`${pkiReal}${path.sep}`)) {
    problems.push({ path: option, message: `${file} is inside the PKI directory ${pkiDir}: a copy goes elsewhere (the PKI keeps its own in certs/)` });
  }
}

function signCsrSub(): Command {
  return new Command('sign-csr')
    .description("sign hosts' certificate signing requests (the hosts keep their keys); several CSRs are signed as one batch: one lock, one index write")
    .requiredOption('--dir <dir>', 'PKI directory')
    .requiredOption('--csr <files...>', 'PEM certificate signing request(s); with several, each is named by its CN')
    .requiredOption('--role <role>', LEAF_ROLES.join(' | '))
    .option('--name <name>', "certificate name (default: the request's CN; one CSR only)")
    .option('--san <nameOrIp...>', 'DNS name or IP for the subjectAltName (repeatable, or comma-separated; one CSR only)')
    .option('--days <n>', 'lifetime in days (default 730)')
    .option('--host <host>', 'host the certificate belongs to (default: the name; one CSR only)')
    .option('--out <file>', 'also write the certificate here (one CSR only)')
    .option('--out-dir <dir>', 'also write each certificate here as NAME.crt')
    .action(async (o: DirOpt & { csr: string[]; role: string; name?: string; san?: string[]; days?: string; host?: string; out?: string; outDir?: string }) => {
      const problems: Problem[] = [];
      const r = role(o.role, problems);
      const validityDays = positiveInt(o.days, '--days', problems);
      if (o.csr.length > 1) {
        for (const [opt, v] of [['--name', o.name], ['--san', o.san], ['--host', o.host], ['--out', o.out]] as const) {
          if (v !== undefined) problems.push({ path: opt, message: `applies to one CSR only (got ${o.csr.length}): each certificate is named by its CSR's CN` });
        }
      }
      if (o.out !== undefined) checkCopyTarget(o.out, '--out', o.dir, problems);
      if (o.outDir !== undefined) {
        const st = lstatSync(o.outDir, { throwIfNoEntry: false });
        if (st !== undefined && !st.isDirectory()) problems.push({ path: '--out-dir', message: `${o.outDir} is not a directory` });
        else checkCopyTarget(path.join(o.outDir, 'NAME.crt'), '--out-dir', o.dir, problems);
      }
      throwIfProblems(problems);
      // The signing code loads while the CSR files are read.
      const [pems, { signCsrs }] = await Promise.all([Promise.all(o.csr.map(readCsrFile)), pkiIssue()]);
      const s = sans(o.san);
      const signed = await withOptionNames(() =>
        signCsrs(
          o.dir,
          pems.map((csrPem, i) => ({
            csrPem,
            opts: {
              role: r,
              file: o.csr[i] ?? 'CSR',
              ...(o.name === undefined ? {} : { name: o.name }),
              ...(s === undefined ? {} : { sans: s }),
              ...(validityDays === undefined ? {} : { validityDays }),
              ...(o.host === undefined ? {} : { host: o.host }),
            },
          })),
        ),
      );
      const copies = [
        ...(o.out === undefined ? [] : signed.map((c) => ({ file: o.out as string, content: c.certPem }))),
        ...(o.outDir === undefined ? [] : signed.map((c) => ({ file: path.join(o.outDir as string, `${c.name}.crt`), content: c.certPem }))),
      ];
      await writeFilesAtomic(copies);
      for (const c of signed) {
        printIssued('signed', c);
        if (o.out !== undefined) out(`  copy: ${o.out}`);
        if (o.outDir !== undefined) out(`  copy: ${path.join(o.outDir, `${c.name}.crt`)}`);
      }
    });
}

function revokeSub(): Command {
  const reasons = Object.keys(REVOCATION_REASONS);
  return new Command('revoke')
    .description('revoke every still-valid certificate of a name and re-sign the CRL')
    .requiredOption('--dir <dir>', 'PKI directory')
    .requiredOption('--name <name>', 'certificate name')
    .option('--reason <reason>', `${reasons.join(' | ')} (default unspecified)`)
    .action(async (o: DirOpt & { name: string; reason?: string }) => {
      if (o.reason !== undefined && !reasons.includes(o.reason)) {
        throw new InputError([{ path: '--reason', message: `expected one of ${reasons.join(', ')} (got ${JSON.stringify(o.reason)})` }]);
      }
      const { readCrlInfo, revokeCertificate } = await pki();
      const revoked = await withOptionNames(() =>
        revokeCertificate(o.dir, o.name, o.reason === undefined ? {} : { reason: o.reason as RevocationReason }),
      );
      if (revoked.length === 0) out(`${o.name}: nothing left to revoke (already revoked)`);
      for (const e of revoked) out(`revoked ${e.name} (${e.role}): serial ${e.serial}`);
      const crl = await readCrlInfo(o.dir);
      out(`  CRL: ${pkiPaths(o.dir).crl}${crl === undefined ? '' : ` (${crl.revokedSerials.length} revoked, next update ${crl.nextUpdate?.toISOString() ?? '-'})`}`);
    });
}

function crlSub(): Command {
  return new Command('crl')
    .description('re-sign a current CRL (a CRL past its next update makes TLS peers reject every client)')
    .requiredOption('--dir <dir>', 'PKI directory')
    .option('--days <n>', 'days until the next update (default 30)')
    .action(async (o: DirOpt & { days?: string }) => {
      const problems: Problem[] = [];
      const nextUpdateDays = positiveInt(o.days, '--days', problems);
      throwIfProblems(problems);
      const { readCrlInfo, refreshCrl } = await pki();
      await withOptionNames(() => refreshCrl(o.dir, nextUpdateDays === undefined ? {} : { nextUpdateDays }));
      const crl = await readCrlInfo(o.dir);
      out(`CRL re-signed: ${pkiPaths(o.dir).crl}`);
      if (crl !== undefined) out(`  number ${crl.crlNumber}, ${crl.revokedSerials.length} revoked, next update ${crl.nextUpdate?.toISOString() ?? '-'}`);
    });
}

function statusSub(): Command {
  return new Command('status')
    .description('list the CA and every certificate with expiry, renewal due and CRL freshness')
    .requiredOption('--dir <dir>', 'PKI directory')
    .option('--json', 'print the report as JSON')
    .option('--renewal-days <n>', 'renewal window in days before expiry (default: the last third of each lifetime)')
    .action(async (o: DirOpt & { json?: boolean; renewalDays?: string }) => {
      const problems: Problem[] = [];
      const renewalWindowDays = positiveInt(o.renewalDays, '--renewal-days', problems);
      throwIfProblems(problems);
      const { pkiStatus, renderStatusTable } = await pki();
      const report = await withOptionNames(() => pkiStatus(o.dir, renewalWindowDays === undefined ? {} : { renewalWindowDays }));
      if (o.json) {
        out(JSON.stringify(report, null, 2));
        return;
      }
      process.stdout.write(renderStatusTable(report));
      for (const w of report.warnings) err(`warning: ${w}`);
    });
}

export function pkiCommand(): Command {
  return new Command('pki')
    .description('the deployment PKI: CA, certificates for centrals, chassis and metadata agents, revocation and CRL')
    .addCommand(initSub())
    .addCommand(issueSub())
    .addCommand(signCsrSub())
    .addCommand(revokeSub())
    .addCommand(crlSub())
    .addCommand(statusSub());
}
