/**
 * `pki issue` spends most of its time making the RSA key (100-300 ms for 2048 bits on a small
 * machine), and the key depends on nothing but its size. cli.ts starts it here, on the libuv
 * threadpool, before main and the command declarations load (about 50 ms of start-up); the issue
 * action takes it when the size it parsed is the size the key was made with, else makes its own.
 * A key is taken at most once, so it is used for one certificate only. `up` starts the sandbox
 * CA's key the same way when the sandbox has no CA yet; `pki init` (initPki) takes it.
 *
 * The command line is read only for `--key-bits`; commander checks everything else as usual. A
 * command that is then refused waits for the key before exiting (a crypto job cannot be
 * cancelled), so only sizes that take well under a second are made early.
 */
import { DEFAULT_LEAF_KEY_BITS, startKey } from './keygen.js';

export { takeEarlyKey } from './keygen.js';

/** Larger keys (seconds to make) wait for the command line to be checked. */
const EARLY_MAX_BITS = 3072;
const EARLY_MIN_BITS = 2048;

/** The key size `pki issue` will ask for, read from its arguments; undefined when unsure. */
export function requestedKeyBits(args: readonly string[]): number | undefined {
  if (args[0] !== 'pki' || args[1] !== 'issue') return undefined;
  let value: string | undefined;
  for (let i = 2; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') return undefined; // no operands for `pki issue`: commander will refuse the line
    if (a === '-h' || a === '--help') return undefined;
    if (a === '--key-bits') {
      if (i + 1 >= args.length) return undefined; // no value: commander will refuse the line
      value = args[++i];
    } else if (a.startsWith('--key-bits=')) value = a.slice('--key-bits='.length);
  }
  if (value === undefined) return DEFAULT_LEAF_KEY_BITS;
  if (!/^[0-9]{1,6}$/.test(value)) return undefined;
  const bits = Number(value);
  return bits >= EARLY_MIN_BITS && bits <= EARLY_MAX_BITS ? bits : undefined;
}

/** Starts `pki issue`'s key if `args` (argv after the script) are a `pki issue` command line. */
export function startEarlyKey(args: readonly string[]): void {
  const bits = requestedKeyBits(args);
  if (bits !== undefined) startKey(bits);
}
