/**
 * node-forge's certificate code alone, through require(). The package's index loads every module
 * (TLS, ciphers, PKCS#7/#12, SSH, ed25519) and its ESM wrapper translates it again: about 15-20 ms
 * of every PKI command's start-up. Each forge module adds itself to the one shared forge object,
 * so this is the object `import forge from 'node-forge'` gives, with only the parts loaded that
 * certificates, CSRs and keys need. The types are node-forge's own (`import type * as Forge`).
 */
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';

const require = createRequire(import.meta.url);
require('node-forge/lib/x509.js'); // certificates, CSRs, RSA keys, PEM, ASN.1, OIDs
require('node-forge/lib/md.all.js'); // every digest a CSR's or certificate's signature may name

const forge = require('node-forge/lib/forge.js') as typeof Forge;
export default forge;
