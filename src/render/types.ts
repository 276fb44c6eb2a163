/** Inputs of `render` besides the inventory. */
import type { KeyObject } from 'node:crypto';
import type { MetadataAgentRuntime } from './metadata-runtime.js';

/** The site PKI's public half: what every host trusts. Never a key. */
export interface SitePki {
  /** Every trusted CA certificate (PEM), as `pki` keeps it in ca/ca-bundle.crt. */
  caBundlePem: string;
  /** The current CRL (PEM) of the CA(s) in the bundle. */
  crlPem: string;
}

export interface RenderOptions {
  /** The metadata agents' shared secret (read by the CLI from --metadata-secret-file); only goes into 0600 files. */
  metadataSecret?: string;
  /** Written into every manifest, e.g. `ovn-deploy 0.1.0`; default `ovn-deploy`. */
  generator?: string;
  /** The site CA (certificate + key): signs each manifest into manifest.sig (see bundle/signature.ts). */
  signer?: { key: KeyObject; certPem: string };
  /**
   * The host's root directory (default '/'): every path a daemon, a config or a unit names lies
   * below it, and the manifest records it so apply refuses the bundle under any other --root.
   * Destinations stay paths on the host, which apply places below its --root.
   */
  root?: string;
  /** How the host runs its metadata agent (default: the distribution's binary as a process). */
  metadataRuntime?: MetadataAgentRuntime;
}
