/**
 * What a stunnel config is made of. A spec is plain data: the site topology decides it
 * (src/site/topology.ts), the renderer (render.ts) only validates and formats it.
 */

/** Certificate, key and trust files; absolute paths on the host that runs stunnel. */
export interface StunnelTlsFiles {
  cert: string;
  key: string;
  /** The CA bundle peers are verified against. */
  caFile: string;
  /** Must hold a current CRL for every CA in caFile, or stunnel rejects every peer. */
  crlFile: string;
}

/** TLS in, plaintext out: `accept` on a real address, `connect` to ovsdb-server's loopback port. */
export interface ServerService {
  name: string;
  /** `addr:port` or `[v6]:port`. */
  accept: string;
  /** `127.0.0.1:port` (any loopback address) or a unix socket path: never a routable address. */
  connect: string;
  /**
   * Restricts the service to clients whose certificate carries one of these names (any one of
   * checkHost/checkIP suffices), on top of the chain and CRL check: a RAFT port admits only the
   * other centrals, not every certificate of the CA.
   */
  checkHost?: string[];
  checkIP?: string[];
}

/** Plaintext in (loopback only), TLS out to the centrals. */
export interface ClientService {
  name: string;
  /** `127.0.0.1:port` (any loopback address) or a unix socket path. */
  accept: string;
  /** `host:port` / `[v6]:port` targets, tried in this order (failover = prio). */
  connect: string[];
  /** Names the peer certificate must carry (any one of checkHost/checkIP suffices). */
  checkHost?: string[];
  checkIP?: string[];
}

export type StunnelKind = 'server' | 'client';

export interface StunnelConfigSpec {
  kind: StunnelKind;
  site: string;
  host: string;
  tls: StunnelTlsFiles;
  pidFile: string;
  logFile: string;
  /** `foreground = yes`: for systemd Type=simple units and ovn-deploy's own supervisor. */
  foreground: boolean;
  services: (ServerService | ClientService)[];
  /** syslog level 5 (notice, default) to 7; below 5 reloads could not be confirmed from the log. */
  debugLevel?: number;
}
