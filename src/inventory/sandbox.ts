/**
 * The inventory of the local sandbox (`up`): one central and N workers on addresses the caller
 * chose (network namespaces). Built as plain data and checked by the same rules as a site file,
 * so the sandbox exercises exactly the model real hosts use.
 */
import { DEFAULT_CERTIFICATE_POLICY, DEFAULT_LOOPBACK_PORTS, DEFAULT_PORTS } from './defaults.js';
import { validateInventory } from './parse.js';
import type { CertificatePolicy, Inventory, LoopbackPorts, Ports, TlsSettings } from './types.js';

export interface SandboxHost {
  name: string;
  address: string;
}

export interface SandboxWorker extends SandboxHost {
  /** Also run neutron-ovn-metadata-agent on this worker. */
  metadataAgent?: boolean;
  datapath?: 'netdev' | 'system';
  /** The NIC holding `address` (apply moves it into br-phy with the userspace datapath). */
  interface?: string;
}

export interface SandboxInventoryOptions {
  site: string;
  central: SandboxHost;
  /** Northbound clients (role `cms`), e.g. the operator's host. */
  cms?: SandboxHost[];
  workers: SandboxWorker[];
  ports?: Partial<Ports>;
  loopbackPorts?: Partial<LoopbackPorts>;
  certificates?: Partial<CertificatePolicy>;
  tls?: Pick<TlsSettings, 'mode'>;
  /** Required when a worker has `metadataAgent` (the same rule as a site file's). */
  metadataAgent?: { novaMetadataHost: string; novaMetadataPort: number };
}

/** Throws InputError (file "(sandbox)") if the options make an invalid site, e.g. a bad address. */
export function sandboxInventory(opts: SandboxInventoryOptions): Inventory {
  const raw = {
    site: opts.site,
    tls: { mode: opts.tls?.mode ?? 'stunnel' },
    ports: { ...DEFAULT_PORTS, ...opts.ports },
    loopbackPorts: { ...DEFAULT_LOOPBACK_PORTS, ...opts.loopbackPorts },
    certificates: { ...DEFAULT_CERTIFICATE_POLICY, ...opts.certificates },
    ...(opts.metadataAgent === undefined ? {} : { metadataAgent: opts.metadataAgent }),
    hosts: [
      { name: opts.central.name, addresses: [opts.central.address], roles: ['central'] },
      ...(opts.cms ?? []).map((h) => ({ name: h.name, addresses: [h.address], roles: ['cms'] })),
      ...opts.workers.map((w) => ({
        name: w.name,
        addresses: [w.address],
        roles: w.metadataAgent === true ? ['worker', 'metadata-agent'] : ['worker'],
        ...(w.datapath === undefined ? {} : { datapath: w.datapath }),
        encap: { type: 'geneve', ip: w.address, ...(w.interface === undefined ? {} : { interface: w.interface }) },
      })),
    ],
  };
  return validateInventory(raw, '(sandbox)').inventory;
}
