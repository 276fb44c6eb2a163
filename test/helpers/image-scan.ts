/**
 * What an image's filesystem holds that a runtime image must not: compilers and build tools, source
 * trees (C files, autotools files) and PEM private keys. Walks the image mounted by podman (`podman
 * image mount`), never following a symbolic link, and reads every regular file for key material.
 * Not counted: headers (Debian's libperl ships perl's CORE/*.h for the runtime), C examples under
 * usr/share/doc (libpam-modules ships one), and the base's rpmbuild (Debian's rpm package carries
 * it; without a compiler it builds nothing), and PEM blocks inside ELF binaries (GnuTLS embeds the
 * public test keys of its self-tests): a deployment's key would be a file of its own.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Podman } from '../../src/packaging/podman.js';

const TOOLS = new Set(['gcc', 'cc', 'c++', 'g++', 'clang', 'make', 'ld', 'as', 'autoconf', 'automake', 'libtool']);
const AUTOTOOLS = new Set(['configure', 'configure.ac', 'Makefile.am', 'Makefile.in', 'boot.sh']);
const BIN_DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'usr/local/sbin'];
/** A PEM private key block: the armour line followed by base64, not just the words in a string table. */
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{16,}/;
const SKIP = new Set(['proc', 'sys', 'dev']);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export interface ImageFindings {
  tools: string[];
  sources: string[];
  privateKeys: string[];
  files: number;
}

async function walk(root: string, rel: string, found: ImageFindings): Promise<void> {
  for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (rel === '' && SKIP.has(e.name)) continue;
    if (e.isDirectory()) {
      await walk(root, r, found);
      continue;
    }
    if (BIN_DIRS.includes(rel) && TOOLS.has(e.name)) found.tools.push(r);
    if ((/\.(c|cc|cpp)$/.test(e.name) && !r.startsWith('usr/share/doc/')) || AUTOTOOLS.has(e.name)) found.sources.push(r);
    if (!e.isFile()) continue;
    found.files++;
    const data = await fs.readFile(path.join(root, r));
    const elf = data.subarray(0, 4).equals(ELF_MAGIC);
    if (!elf && PRIVATE_KEY.test(data.toString('latin1'))) found.privateKeys.push(r);
  }
}

export async function scanImage(podman: Podman, image: string): Promise<ImageFindings> {
  const mountPoint = (await podman.run(['image', 'mount', image])).stdout.trim();
  try {
    const found: ImageFindings = { tools: [], sources: [], privateKeys: [], files: 0 };
    await walk(mountPoint, '', found);
    return found;
  } finally {
    await podman.run(['image', 'unmount', image], { allowFailure: true });
  }
}
