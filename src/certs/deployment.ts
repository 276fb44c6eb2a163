/**
 * What the certificate lifecycle commands work on: the TLS endpoints of a deployment (which
 * certificate, key, CA bundle and CRL each stunnel uses, and how to reach it) plus the few
 * actions that differ between a local sandbox and real hosts (read/write a file on the host,
 * reload its stunnel, lock the deployment). Everything else (due checks, rotation, rollback, CA
 * rollover, revocation) is written once against this interface.
 */
import type { LeafRole } from '../pki/types.js';
import type { Runner } from '../runner.js';

/** A TLS listener of a stunnel server, as a peer reaches it. */
export interface TlsListener {
  /** Network namespace to probe from (the sandbox central's namespace). */
  netns?: string;
  host: string;
  port: number;
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
}

export interface StunnelInstance {
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

export interface Deployment {
  /** For messages: `sandbox 1609 (/var/lib/ovn-deploy/sandbox)`. */
  readonly description: string;
  readonly pkiDir: string;
  readonly endpoints: readonly TlsEndpoint[];
  /** What a renewed leaf gets. */
  readonly leafPolicy: { validityDays: number; keyBits: number };
  /** Runs probes (openssl s_client, ovsdb-client) where the endpoints can be reached. */
  readonly runner: Runner;
  /**
   * The hosts' files are on this machine, so a host path equal to a PKI path is the PKI's own
   * file and needs no copy. False for the sandbox: each of its hosts has a root of its own whose
   * files are copies, as on a real host.
   */
  readonly hostFilesAreLocal: boolean;
  /** The arguments that select this deployment again (`--dir DIR`), for the renewal timer. */
  readonly selector: string[];
  /** A file on the endpoint's host; undefined when it does not exist. */
  read(endpoint: TlsEndpoint, file: string): Promise<string | undefined>;
  /** Writes a file on the endpoint's host atomically; `content` undefined removes it. */
  write(endpoint: TlsEndpoint, file: string, content: string | undefined, mode: number): Promise<void>;
  /**
   * After a new CA bundle reached the endpoint's host: the CAs the host accepts its deployment
   * bundles from follow it (apply pins the CA bundle of every bundle it applied), so a bundle
   * signed by the new CA is accepted once the old one is retired. Absent: nothing to do.
   */
  bundleTrustChanged?(endpoint: TlsEndpoint, caBundlePem: string): Promise<void>;
  /** SIGHUP the endpoint's stunnel and confirm from its log that the new config loaded (throws if not). */
  reload(endpoint: TlsEndpoint): Promise<void>;
  /** Held while a command changes certificates (against `up`/`down` and another `certs` run). */
  lock(what: string): Promise<DeploymentLock>;
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
