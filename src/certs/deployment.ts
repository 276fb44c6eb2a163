/**
 * What the certificate lifecycle commands work on: the TLS endpoints of a deployment (which
 * certificate, key, CA bundle and CRL each stunnel uses, and how to reach it) plus the few
 * actions that differ between the sandbox and a site over SSH (read/write a public TLS file on a
 * host, make a key and CSR there, reload its stunnel, run a probe as the host, lock). Everything
 * else (due checks, rotation, rollback, CA rollover, revocation) is written once against this
 * interface. Both implementations build their endpoints with siteEndpoints (site-endpoints.ts).
 */
import type { LeafRole } from '../pki/types.js';
import type { Runner } from '../runner.js';
import type { TlsFiles } from '../tools/ovs.js';

/** A TLS listener of a stunnel server, as a peer reaches it. */
export interface TlsListener {
  /** Network namespace to probe from (the sandbox central's namespace). */
  netns?: string;
  host: string;
  port: number;
  /** The database behind it: who it admits (NB: centrals and cms hosts; SB: every host of the site). */
  db?: 'nb' | 'sb';
}

/**
 * How to prove that a stunnel client side works: a NEW plaintext connection to its local port
 * gets an answer from the database behind the tunnel.
 */
export interface LocalTunnelProbe {
  netns?: string;
  /** OVSDB remote of the local plaintext side, e.g. `unix:/var/run/ovn-deploy/ovsdb/central1.sb` (src/site/topology.ts). */
  remote: string;
  /** Database that must answer, e.g. `OVN_Southbound`. */
  database: string;
  /** The same database through the tunnel's listeners for the other centrals: one answering is enough (a central may be down). */
  alternates?: string[];
  /** Native TLS: `ssl:` remotes, reached with the host's own files (what its daemons present). */
  tls?: TlsFiles;
}

export interface StunnelInstance {
  /**
   * Native TLS (`tls.mode: native`): not stunnel but ovsdb-server's or the OVS clients' own TLS,
   * which re-read changed files themselves: nothing to reload, only to verify.
   */
  native?: true;
  /** Name of the supervised service (supervisor.signal), for messages and real-host units. */
  serviceName: string;
  pidFile: string;
  /** stunnel's `output` file: a reload is confirmed (or found failed) there. */
  logFile: string;
  side: 'server' | 'client';
  netns?: string;
  /** Server side: its TLS listeners. */
  listeners: TlsListener[];
  /** Client side: how to test the tunnel. */
  tunnelProbe?: LocalTunnelProbe;
}

export interface TlsEndpoint {
  /** Host name as in the inventory (`central`, `worker1`). */
  host: string;
  role: LeafRole;
  /** Certificate name in the PKI (index `name`, certs/NAME.crt). */
  certName: string;
  /** subjectAltNames a renewed certificate gets. */
  sans: string[];
  /** The files stunnel loads, as paths on the host. */
  certPath: string;
  keyPath: string;
  caFile: string;
  crlFile: string;
  stunnel: StunnelInstance;
}

export interface DeploymentLock {
  release(): Promise<void>;
}

/** What a renewed key's CSR asks for (the PKI signs it for exactly these). */
export interface KeyRequest {
  name: string;
  sans: readonly string[];
  keyBits: number;
}

export interface Deployment {
  /** For messages: `sandbox 1609 (/var/lib/ovn-deploy/sandbox)`, `site lab (site.yaml)`. */
  readonly description: string;
  readonly pkiDir: string;
  readonly endpoints: readonly TlsEndpoint[];
  /** What a renewed leaf gets. */
  readonly leafPolicy: { validityDays: number; keyBits: number };
  /** The arguments that select this deployment again (`--dir DIR`), for the renewal timer and hints. */
  readonly selector: string[];
  /**
   * Runs probes (openssl s_client, ovsdb-client) as the endpoint's host: where its certificate,
   * key and tunnels are (the sandbox: this machine, in the host's namespace; a site: over SSH).
   */
  runnerFor(endpoint: TlsEndpoint): Runner;
  /** A public TLS file of the endpoint's host (certificate, CA bundle, CRL); undefined when absent. */
  read(endpoint: TlsEndpoint, file: string): Promise<string | undefined>;
  /** Writes a public TLS file (or its rotation backup) on the endpoint's host atomically; `content` undefined removes it. */
  write(endpoint: TlsEndpoint, file: string, content: string | undefined, mode: number): Promise<void>;
  /**
   * On the endpoint's host: a new key in its pending slot and a CSR for it. The key never leaves
   * the host; only the CSR comes back, and only the certificate goes there.
   */
  newKey(endpoint: TlsEndpoint, req: KeyRequest): Promise<string>;
  /**
   * On the host: the certificate signed for the pending key and that key replace the pair
   * together (the previous key kept as its rotation backup); refused if they do not belong together.
   */
  installPair(endpoint: TlsEndpoint, certPem: string): Promise<void>;
  /** On the host: the key installPair replaced and the certificate it had (undefined: none) go back together (rollback). */
  restorePair(endpoint: TlsEndpoint, certPem: string | undefined): Promise<void>;
  /** On the host: whether its key belongs to its certificate. */
  keyMatches(endpoint: TlsEndpoint): Promise<boolean>;
  /**
   * After a new CA bundle reached the endpoint's host: the CAs the host accepts its deployment
   * bundles from follow it (apply pins the CA bundle of every bundle it applied), so a bundle
   * signed by the new CA is accepted once the old one is retired. Absent: nothing to do.
   */
  bundleTrustChanged?(endpoint: TlsEndpoint, caBundlePem: string): Promise<void>;
  /** Reloads the endpoint's stunnel and confirms from its log that the new config loaded (throws if not). */
  reload(endpoint: TlsEndpoint): Promise<void>;
  /** Held while a command changes certificates (against `up`/`down` and another `certs` run). */
  lock(what: string): Promise<DeploymentLock>;
  /** Lets go of connections to the hosts (SSH control masters); absent when there are none. */
  close?(): Promise<void>;
}

export function hostsOf(d: Deployment): string[] {
  return [...new Set(d.endpoints.map((e) => e.host))];
}

export function endpointsOf(d: Deployment, host: string): TlsEndpoint[] {
  return d.endpoints.filter((e) => e.host === host);
}

/** The endpoints of the given hosts (all when none are given); unknown hosts are bad input. */
export function selectEndpoints(d: Deployment, hosts: readonly string[] | undefined): TlsEndpoint[] {
  if (hosts === undefined || hosts.length === 0) return [...d.endpoints];
  return d.endpoints.filter((e) => hosts.includes(e.host));
}

export function unknownHosts(d: Deployment, hosts: readonly string[] | undefined): string[] {
  const known = new Set(hostsOf(d));
  return (hosts ?? []).filter((h) => !known.has(h));
}
