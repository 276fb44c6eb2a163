/**
 * The daemons of one host, in the foreground at the distribution's paths: what the own supervisor
 * runs verbatim and what the rendered systemd units start. Order: stage 0 (databases, stunnel)
 * before stage 1 (what needs them).
 */
import path from 'node:path';
import type { BundleService } from '../bundle/manifest.js';
import { METADATA_AGENT_BINARY, metadataAgentCommand, NETNS_DIR_PRESTART, type MetadataAgentRuntime } from './metadata-runtime.js';
import { hostPaths, hostRenderedPaths, type HostPaths } from '../paths.js';
import { ovsdbRemotes, type HostTopology, type SiteTopology } from '../site/topology.js';
import { nativeTlsArgs, nativeTlsFiles, sslListener } from '../site/native-tls.js';
import type { Inventory } from '../inventory/types.js';

/** The Debian binaries, absolute so that systemd units verify and no PATH lookup differs. */
export const BINARIES = {
  ovsdbServer: '/usr/sbin/ovsdb-server',
  vswitchd: '/usr/sbin/ovs-vswitchd',
  northd: '/usr/bin/ovn-northd',
  controller: '/usr/bin/ovn-controller',
  stunnel: '/usr/bin/stunnel4',
  nbctl: '/usr/bin/ovn-nbctl',
  sbctl: '/usr/bin/ovn-sbctl',
  metadataAgent: METADATA_AGENT_BINARY,
} as const;

export const SERVICE = {
  nbOvsdb: 'ovn-nb-ovsdb',
  sbOvsdb: 'ovn-sb-ovsdb',
  stunnelServer: 'stunnel-server',
  stunnelClient: 'stunnel-client',
  northd: 'ovn-northd',
  ovsOvsdb: 'ovs-ovsdb',
  vswitchd: 'ovs-vswitchd',
  controller: 'ovn-controller',
  metadataAgent: 'ovn-metadata-agent',
} as const;

/** Console output only for warnings and worse (the journal / supervisor log); the full log goes to --log-file. */
const VLOG = ['-vconsole:warn', '-vfile:info'];

/**
 * Directories a unit lets systemd create, relative to /run, /var/lib, /var/log, /etc (the
 * RuntimeDirectory=... family). Not part of the manifest: only the unit renderer reads them.
 */
export interface ServiceDirs {
  runtime: string[];
  state: string[];
  logs: string[];
  configuration: string[];
}

export interface HostService {
  spec: BundleService;
  dirs: ServiceDirs;
  /** Short: the unit's Description. */
  description: string;
  /** One sentence for the unit's header comment. */
  purpose: string;
  /**
   * Run by the systemd unit before the daemon (ExecStartPre=), at boot too, when no apply has run
   * since: what must hold before the daemon listens.
   */
  preStart?: PreStart[];
}

/** One ExecStartPre= of a unit, with the reason for its comment line. */
export interface PreStart {
  argv: string[];
  why: string;
}

/** The nft binary (Debian and Fedora/EL). */
const NFT = '/usr/sbin/nft';

/**
 * Native TLS: a central's NB and admin SB ports admit any certificate of the CA, and its firewall
 * is what keeps workers off them: their units load it first, so that after a reboot (or a flush of
 * the host's ruleset) they never listen unguarded until the next apply.
 */
const loadFirewall = (root: string): PreStart => ({
  argv: [NFT, '-f', hostRenderedPaths(root).firewall],
  why: 'firewall.nft first: with native TLS the NB and admin SB ports are guarded by it alone (at boot too)',
});

/**
 * A central's RAFT listeners (ovsdb-server's on L(C), the stunnel client's tunnels) are loopback
 * TCP: their unit loads local-access.nft first, so that after a reboot they never listen open to
 * every local user until the next apply (which loads it too, for the own supervisor).
 */
const loadLocalAccess = (root: string): PreStart => ({
  argv: [NFT, '-f', hostRenderedPaths(root).localAccess],
  why: "local-access.nft first: RAFT's loopback ports root only from the moment they listen (at boot too)",
});

/**
 * stunnel neither binds over a socket file that is there nor removes its own when it dies: before
 * the stunnel client starts, every socket in the OVSDB socket directory goes but this central's
 * own (ovsdb-server's, which removes and binds its own). A fixed command rather than the list of
 * listeners (the own supervisor's BundleService.unixListeners): the unit stays the same when
 * centrals come and go, so such a change reloads stunnel instead of restarting it.
 */
const removeStaleListeners = (root: string, ht: HostTopology): PreStart => {
  const hp = hostPaths(root);
  const own = ht.central === undefined ? [] : ['nb', 'sb'].flatMap((db) => ['!', '-name', `${ht.host.name}.${db}`]);
  return { argv: [FIND, hp.ovsdbDir, '-maxdepth', '1', '-type', 's', ...own, '-delete'], why: 'stale unix listeners of a stunnel that died: it cannot bind over them' };
};

const FIND = '/usr/bin/find';

/** The bridge ovn-controller programs (external_ids:ovn-bridge). */
export const INTEGRATION_BRIDGE = 'br-int';

const rel = (base: string, dir: string): string => path.relative(base, dir);
// systemd's RuntimeDirectory= family is relative to the machine's /run, /var/lib...: always the
// distribution layout, whatever root the daemons' own paths are under.
const hp0 = hostPaths();
const DIRS = {
  ovnRun: rel('/var/run', hp0.ovn.runDir),
  ovnState: rel('/var/lib', hp0.ovn.dbDir),
  ovnLogs: rel('/var/log', hp0.ovn.logDir),
  ovsRun: rel('/var/run', hp0.ovs.runDir),
  ovsLogs: rel('/var/log', hp0.ovs.logDir),
  ovsConf: rel('/etc', hp0.ovs.dbDir),
  ownRun: rel('/var/run', hp0.runDir),
  ownLogs: rel('/var/log', hp0.logDir),
  metadataState: rel('/var/lib', hostRenderedPaths().metadata.statePath),
  metadataLogs: rel('/var/log', hostRenderedPaths().metadata.logDir),
};
const ovnEnv = (hp: HostPaths): Record<string, string> => ({ OVN_RUNDIR: hp.ovn.runDir, OVS_RUNDIR: hp.ovs.runDir });
const noDirs: ServiceDirs = { runtime: [], state: [], logs: [], configuration: [] };

function service(
  hp: HostPaths,
  name: string,
  [description, purpose]: [string, string],
  argv: string[],
  opts: { stage: 0 | 1; after?: string[]; env?: Record<string, string>; reload?: boolean; needsCertificate?: boolean; unixListeners?: string[]; waitFor?: string[]; preStart?: PreStart[]; dirs: Partial<ServiceDirs> },
): HostService {
  return {
    description,
    purpose,
    ...(opts.preStart === undefined ? {} : { preStart: opts.preStart }),
    dirs: { ...noDirs, ...opts.dirs },
    spec: {
      name,
      argv,
      env: opts.env ?? {},
      after: opts.after ?? [],
      ...(opts.reload === true ? { reloadSignal: 'SIGHUP' as const } : {}),
      logFile: hp.serviceLog(name),
      unit: hostRenderedPaths().unitName(name),
      needsCertificate: opts.needsCertificate ?? false,
      stage: opts.stage,
      unixListeners: opts.unixListeners ?? [],
      waitFor: opts.waitFor ?? [],
    },
  };
}

function centralDb(inv: Inventory, root: string, ht: HostTopology, which: 'nb' | 'sb'): HostService {
  const hp = hostPaths(root);
  const rp = hostRenderedPaths(root);
  const c = ht.central;
  if (c === undefined) throw new Error('centralDb on a non-central');
  const o = hp.ovn;
  const f = which === 'nb' ? { db: o.nbDb, sock: o.nbSock, pid: o.nbPid, ctl: o.nbCtl, log: rp.logs.nbOvsdb } : { db: o.sbDb, sock: o.sbSock, pid: o.sbPid, ctl: o.sbCtl, log: rp.logs.sbOvsdb };
  const name = which === 'nb' ? 'Northbound' : 'Southbound';
  // Plaintext only on unix sockets (the distribution's, and the site's one in the root-only socket
  // directory that stunnel and every local client use).
  const local = [`--remote=punix:${f.sock}`, `--remote=punix:${hp.ovsdbSocket(c.host.name, which)}`];
  const tail = [`--pidfile=${f.pid}`, `--unixctl=${f.ctl}`, `--log-file=${f.log}`, '--no-chdir', ...VLOG];
  const dirs = { runtime: [DIRS.ovnRun], state: [DIRS.ovnState], logs: [DIRS.ovnLogs] };
  if (inv.tls.mode === 'native') {
    // Its own TLS on the central's address; RAFT too (the database file's ssl: address). The SB's
    // chassis listener is the Connection table's row with role=ovn-controller (RBAC).
    const tls =
      which === 'nb'
        ? [`--remote=${sslListener(c, inv.ports.nb)}`]
        : ['--remote=db:OVN_Southbound,SB_Global,connections', `--remote=${sslListener(c, inv.tls.sbAdminPort)}`];
    return service(
      hp,
      which === 'nb' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb,
      [`OVN ${name} database`, `a member of the RAFT cluster; its own TLS on this central's address${which === 'sb' ? ' (chassis under RBAC)' : ''}, plaintext only on unix sockets`],
      [BINARIES.ovsdbServer, f.db, ...local, ...tls, ...nativeTlsArgs(root), ...tail],
      { stage: 0, env: ovnEnv(hp), preStart: [loadFirewall(root)], dirs },
    );
  }
  // RAFT on L(C) is the database file's.
  return service(
    hp,
    which === 'nb' ? SERVICE.nbOvsdb : SERVICE.sbOvsdb,
    [`OVN ${name} database`, 'a member of the RAFT cluster; plaintext only on unix sockets, RAFT on this central\'s loopback address'],
    [BINARIES.ovsdbServer, f.db, ...local, ...tail],
    { stage: 0, env: ovnEnv(hp), preStart: [loadLocalAccess(root)], dirs },
  );
}

function stunnelService(root: string, kind: 'server' | 'client', unixListeners: string[] = [], preStart?: PreStart[]): HostService {
  return service(
    hostPaths(root),
    kind === 'server' ? SERVICE.stunnelServer : SERVICE.stunnelClient,
    kind === 'server'
      ? ['stunnel TLS server', "TLS in front of this central's databases and RAFT ports"]
      : ['stunnel TLS client', "listeners on the other centrals' loopback addresses, tunnelled to them over TLS"],
    [BINARIES.stunnel, hostRenderedPaths(root).stunnelConf(kind)],
    { stage: 0, reload: true, needsCertificate: true, unixListeners, ...(preStart === undefined ? {} : { preStart }), dirs: { runtime: [DIRS.ownRun], logs: [DIRS.ownLogs] } },
  );
}

/** Every daemon of the host, stage 0 first; every path in argv and env under `root`. */
export function hostServices(inv: Inventory, topo: SiteTopology, ht: HostTopology, hasClient: boolean, root = '/', metadataRuntime: MetadataAgentRuntime = { kind: 'process' }): HostService[] {
  const hp = hostPaths(root);
  const rp = hostRenderedPaths(root);
  const roles = ht.host.roles;
  const worker = roles.includes('worker');
  const client = hasClient ? [SERVICE.stunnelClient] : [];
  const native = inv.tls.mode === 'native';
  // Native mode: the clients' own TLS, which re-reads changed key and certificate files itself.
  // Only the files: ovn-northd and ovn-controller 23.03 abort on --ssl-protocols/--ssl-ciphers;
  // the policy is the servers' (ovsdb-server's, whose TLS 1.2 and ciphers every handshake gets).
  const tlsArgs = native ? nativeTlsFiles(root) : [];
  const stage0: HostService[] = [];
  const stage1: HostService[] = [];
  if (ht.isCentral) {
    stage0.push(centralDb(inv, root, ht, 'nb'), centralDb(inv, root, ht, 'sb'));
    if (!native) stage0.push(stunnelService(root, 'server'));
  }
  // The client's NB/SB listeners are unix sockets (stunnelClientSpec's accept lines).
  const clientSockets = ht.remoteCentrals.flatMap((d) => ht.clientEndpoints.flatMap((key) => (key === 'nb' || key === 'sb' ? [hp.ovsdbSocket(d.host.name, key)] : [])));
  if (hasClient) stage0.push(stunnelService(root, 'client', clientSockets, [...(ht.isCentral ? [loadLocalAccess(root)] : []), removeStaleListeners(root, ht)]));
  if (worker) {
    stage0.push(
      service(
        hp,
        SERVICE.ovsOvsdb,
        ['Open vSwitch database', "conf.db of this host's Open vSwitch"],
        [BINARIES.ovsdbServer, hp.ovs.confDb, `--remote=punix:${hp.ovs.dbSock}`, `--pidfile=${hp.ovs.ovsdbPid}`, `--unixctl=${hp.ovs.ovsdbCtl}`, `--log-file=${rp.logs.ovsdb}`, '--no-chdir', ...VLOG],
        { stage: 0, env: { OVS_RUNDIR: hp.ovs.runDir }, dirs: { runtime: [DIRS.ovsRun], logs: [DIRS.ovsLogs], configuration: [DIRS.ovsConf] } },
      ),
    );
  }
  if (ht.isCentral) {
    // On every central; the OVSDB lock makes one of them active.
    stage1.push(
      service(
        hp,
        SERVICE.northd,
        ['OVN northd', 'translates the Northbound into the Southbound; runs on every central, one is active through the OVSDB lock'],
        [BINARIES.northd, `--ovnnb-db=${ovsdbRemotes(topo, 'nb', root)}`, `--ovnsb-db=${ovsdbRemotes(topo, 'sb', root, true)}`, ...tlsArgs, `--pidfile=${hp.ovn.northdPid}`, `--unixctl=${hp.ovn.northdCtl}`, `--log-file=${rp.logs.northd}`, '--no-chdir', ...VLOG],
        { stage: 1, after: [SERVICE.nbOvsdb, SERVICE.sbOvsdb, ...client], env: ovnEnv(hp), dirs: { runtime: [DIRS.ovnRun], logs: [DIRS.ovnLogs] } },
      ),
    );
  }
  if (worker) {
    stage1.push(
      service(
        hp,
        SERVICE.vswitchd,
        ['Open vSwitch switch daemon', 'the datapath of this chassis'],
        [BINARIES.vswitchd, `unix:${hp.ovs.dbSock}`, `--pidfile=${hp.ovs.vswitchdPid}`, `--unixctl=${hp.ovs.vswitchdCtl}`, `--log-file=${rp.logs.vswitchd}`, '--no-chdir', ...VLOG],
        { stage: 1, after: [SERVICE.ovsOvsdb], env: { OVS_RUNDIR: hp.ovs.runDir }, dirs: { runtime: [DIRS.ovsRun], logs: [DIRS.ovsLogs] } },
      ),
    );
    // ovn-controller 23.03 has no --unixctl: its socket is named after its pid in OVN_RUNDIR.
    // A central that is also a worker reaches its own SB member directly.
    const sbPath = ht.isCentral ? [SERVICE.sbOvsdb, ...client] : client;
    stage1.push(
      service(
        hp,
        SERVICE.controller,
        ['OVN controller', 'makes this host a chassis of the site'],
        [BINARIES.controller, `unix:${hp.ovs.dbSock}`, ...tlsArgs, `--pidfile=${hp.ovn.controllerPid}`, `--log-file=${rp.logs.controller}`, '--no-chdir', ...VLOG],
        { stage: 1, after: [SERVICE.vswitchd, ...sbPath], waitFor: [hp.ovs.bridgeMgmt(INTEGRATION_BRIDGE)], env: ovnEnv(hp), dirs: { runtime: [DIRS.ovnRun], logs: [DIRS.ovnLogs] } },
      ),
    );
  }
  if (roles.includes('metadata-agent')) {
    const agent = metadataAgentCommand(metadataRuntime, hp, rp);
    stage1.push(
      service(
        hp,
        SERVICE.metadataAgent,
        ['Neutron OVN metadata agent', `serves instance metadata through haproxy in ovnmeta-* namespaces${metadataRuntime.kind === 'container' ? ' (in a podman container)' : ''}`],
        agent.argv,
        {
          stage: 1,
          after: [SERVICE.controller, ...client],
          env: agent.env,
          ...(metadataRuntime.kind === 'container' ? { preStart: [{ argv: [...NETNS_DIR_PRESTART], why: '/run/netns a shared mount point (as `ip netns add` makes it): the ovnmeta-* namespaces the agent makes in its container reach this host' }] } : {}),
          dirs: { state: [DIRS.metadataState], logs: [DIRS.metadataLogs] },
        },
      ),
    );
  }
  return [...stage0, ...stage1];
}
