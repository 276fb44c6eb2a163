/**
 * Every filesystem path ovn-deploy uses, in one place.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (where templates/, specs/, containers/ live), in the source tree and when packed. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const templatesDir = path.join(packageRoot, 'templates');

/** Layout of a PKI directory (`pki init --dir DIR`). */
export function pkiPaths(dir: string) {
  return {
    dir,
    caCert: path.join(dir, 'ca', 'ca.crt'),
    caKey: path.join(dir, 'ca', 'ca.key'),
    /** Every CA certificate still trusted (current first); what TLS peers verify against. */
    caBundle: path.join(dir, 'ca', 'ca-bundle.crt'),
    crl: path.join(dir, 'ca', 'crl.pem'),
    index: path.join(dir, 'index.json'),
    lock: path.join(dir, '.lock'),
    cert: (name: string) => path.join(dir, 'certs', `${name}.crt`),
    key: (name: string) => path.join(dir, 'private', `${name}.key`),
    csr: (name: string) => path.join(dir, 'csr', `${name}.csr`),
  };
}

/** CA rollover files inside a PKI directory (`certs ca-rollover`). */
export function rolloverPaths(pkiDir: string) {
  return {
    /** Phase and per-host progress of the current (or last) rollover. */
    state: path.join(pkiDir, 'rollover.json'),
    /**
     * Every CA a rollover made or retired, each in a folder shaped like a PKI directory
     * (`ca/ca.crt`, `ca/ca.key`) so the PKI's loadCa reads it unchanged.
     */
    caStore: (serial: string) => path.join(pkiDir, 'ca-store', serial),
  };
}

/** Where `certs rotate` keeps the previous version of a deployed certificate or key (restored on failure). */
export const rotationBackup = (file: string): string => `${file}.prev`;

/** systemd unit templates (the certificate renewal timer). */
export const systemdTemplatesDir = path.join(templatesDir, 'systemd');
/** The one unit-name rule: `<prefix><service>.service` (a sandbox's transient units add its id to the prefix). */
export function systemdUnitName(service: string, prefix = 'ovn-deploy-'): string {
  return `${prefix}${service}.service`;
}

/** Names of the renewal timer's units. */
export const renewalUnits = { service: 'ovn-deploy-cert-renew.service', timer: 'ovn-deploy-cert-renew.timer' } as const;
/** The scheduled `backup` (`backup --timer`). */
export const backupUnits = { service: 'ovn-deploy-backup.service', timer: 'ovn-deploy-backup.timer' } as const;

/** The site inventory `init` writes when no --out is given (relative to the working directory). */
export const defaultSiteFile = 'site.yaml';

/** Default state directory of the local sandbox (`up`). */
export function defaultSandboxDir(): string {
  if (process.env.OVN_DEPLOY_DIR) return path.resolve(process.env.OVN_DEPLOY_DIR);
  return process.getuid?.() === 0
    ? '/var/lib/ovn-deploy/sandbox'
    : path.join(os.homedir(), '.local', 'state', 'ovn-deploy', 'sandbox');
}

/** The compiled CLI entry point; the own supervisor re-executes it as `ovn-deploy supervise`. */
export const cliPath = path.join(packageRoot, 'dist', 'cli.js');

/** Files of the own supervisor (`ovn-deploy supervise --dir STATE`) inside a state directory. */
export function supervisorPaths(stateDir: string) {
  const dir = path.join(path.resolve(stateDir), 'supervisor');
  return {
    dir,
    /** Desired services, written by clients (`ensure`, `stop`). */
    services: path.join(dir, 'services.json'),
    /** What the supervisor is running, written by the supervisor only. */
    status: path.join(dir, 'status.json'),
    pid: path.join(dir, 'supervisor.pid'),
    /** The supervisor's own stdout/stderr. */
    log: path.join(dir, 'supervisor.log'),
  };
}
export type SupervisorPaths = ReturnType<typeof supervisorPaths>;

/**
 * Binds a stunnel config's listeners and hands them to stunnel as socket activation, so that a
 * reload never closes them (see the script's header).
 */
export const stunnelActivationScript = path.join(packageRoot, 'scripts', 'stunnel-socket-activate.py');

/** Handlebars templates of the stunnel configs. */
export const stunnelTemplatesDir = path.join(templatesDir, 'stunnel');

/**
 * stunnel's files on a host, one set per side (`server`: TLS in front of ovsdb-server; `client`:
 * local plaintext ports tunnelled to the centrals). Distinct names so a host can run both.
 */
export function stunnelFiles(kind: 'server' | 'client', dirs: { runDir: string; logDir: string }) {
  return {
    /** File name of the rendered config (relative: the deploy step picks the directory). */
    confName: `stunnel-${kind}.conf`,
    pidFile: path.join(dirs.runDir, `stunnel-${kind}.pid`),
    logFile: path.join(dirs.logDir, `stunnel-${kind}.log`),
  };
}

/**
 * Layout of a sandbox state directory (`up --dir DIR`). Everything `up` writes lives under it, in
 * the top-level entries listed in `entries`, which is exactly what `down` removes.
 */
export function sandboxPaths(stateDir: string) {
  const dir = path.resolve(stateDir);
  const at = (...parts: string[]): string => path.join(dir, ...parts);
  // Every sandbox host is a root with a real host's layout: its paths are hostPaths() below it.
  const host = (node: string) => hostPaths(at('hosts', node));
  const rendered = (node: string) => hostRenderedPaths(at('hosts', node));
  const nodeDirs = (node: string) => ({ run: host(node).runDir, log: host(node).logDir, db: host(node).state, etc: host(node).etc });
  const c = host('central');
  const cl = rendered('central').logs;
  return {
    dir,
    state: at('state.json'),
    /** Held by `up` and `down` while they change the sandbox. */
    lock: at('up.lock'),
    pki: at('pki'),
    entries: ['state.json', 'up.lock', 'pki', 'hosts', 'reports', 'etc', 'run', 'log', 'db', 'supervisor'] as const,
    /** A sandbox host's root directory: the hostPaths() layout of a real host below it. */
    hostRoot: (node: string) => at('hosts', node),
    /** The last apply report of a sandbox host (what deploy prints for a real one). */
    report: (node: string) => at('reports', `${node}.json`),
    node: nodeDirs,
    /** A sandbox-only service's stdout/stderr as captured by the supervisor. */
    serviceLog: (service: string) => at('log', `${service}.out`),
    central: {
      nbDb: c.ovn.nbDb,
      sbDb: c.ovn.sbDb,
      nbSock: c.ovn.nbSock,
      sbSock: c.ovn.sbSock,
      nbCtl: c.ovn.nbCtl,
      sbCtl: c.ovn.sbCtl,
      nbPid: c.ovn.nbPid,
      sbPid: c.ovn.sbPid,
      nbLog: cl.nbOvsdb,
      sbLog: cl.sbOvsdb,
      northdPid: c.ovn.northdPid,
      northdCtl: c.ovn.northdCtl,
      northdLog: cl.northd,
    },
    worker: (name: string) => {
      const w = host(name);
      const l = rendered(name).logs;
      return {
        confDb: w.ovs.confDb,
        dbSock: w.ovs.dbSock,
        ovsdbPid: w.ovs.ovsdbPid,
        ovsdbCtl: w.ovs.ovsdbCtl,
        ovsdbLog: l.ovsdb,
        vswitchdPid: w.ovs.vswitchdPid,
        vswitchdCtl: w.ovs.vswitchdCtl,
        vswitchdLog: l.vswitchd,
        controllerPid: w.ovn.controllerPid,
        controllerLog: l.controller,
        /** ovn-controller 23.03 has no --unixctl: its socket is named after its pid in OVN_RUNDIR. */
        controllerCtl: w.ovn.controllerCtl,
      };
    },
  };
}
export type SandboxPaths = ReturnType<typeof sandboxPaths>;

/** OVSDB schemas shipped by the distribution packages. */
export const ovsdbSchemas = {
  nb: '/usr/share/ovn/ovn-nb.ovsschema',
  sb: '/usr/share/ovn/ovn-sb.ovsschema',
  vswitch: '/usr/share/openvswitch/vswitch.ovsschema',
};

/** Our RPM specs (`specs/NAME.spec`) and their extra sources (`specs/NAME/`): units, logrotate... */
export const specsDir = path.join(packageRoot, 'specs');
export function specFiles(name: 'openvswitch' | 'ovn') {
  return { spec: path.join(specsDir, `${name}.spec`), sourcesDir: path.join(specsDir, name) };
}

/** Per-role container build contexts (`containers/ROLE/Containerfile`, entrypoint, healthcheck). */
export const containersDir = path.join(packageRoot, 'containers');
export const containerRoleDir = (role: string): string => path.join(containersDir, role);

/** Default artifact cache of `ovn-deploy build` (OVN_DEPLOY_BUILD_CACHE, else XDG cache dir). */
export function defaultBuildCacheDir(): string {
  if (process.env.OVN_DEPLOY_BUILD_CACHE) return path.resolve(process.env.OVN_DEPLOY_BUILD_CACHE);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'ovn-deploy', 'build');
}

/**
 * Where `deploy` keeps the tool archives it ships to hosts (`<id>.tar.gz`, content-addressed):
 * OVN_DEPLOY_TOOL_CACHE, else the XDG cache dir.
 */
export function toolArchiveCacheDir(): string {
  if (process.env.OVN_DEPLOY_TOOL_CACHE) return path.resolve(process.env.OVN_DEPLOY_TOOL_CACHE);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'ovn-deploy', 'tool');
}

/** Where deploy keeps `podman save` archives of the images it ships, by image ID (next to the tool's). */
export function imageArchiveCacheDir(): string {
  return path.join(path.dirname(toolArchiveCacheDir()), 'images');
}

/**
 * Layout of a build cache directory. Artifacts are named by the hash of their inputs; the rpmbuild
 * work trees sit at fixed paths per package so that ccache hits and the OVS build tree (which OVN
 * compiles against) stay where the previous build left them.
 */
export function buildCachePaths(cacheDir: string) {
  const dir = path.resolve(cacheDir);
  const at = (...p: string[]): string => path.join(dir, ...p);
  return {
    dir,
    lock: at('lock'),
    artifacts: at('artifacts'),
    artifact: (hash: string) => at('artifacts', hash),
    artifactMeta: (hash: string) => at('artifacts', hash, 'artifact.json'),
    /** Source tarballs prepared for rpmbuild (git archives, bootstrapped trees), by content key. */
    preparedSource: (key: string) => at('sources', key),
    /** Subtrees extracted from tarballs (an OVN release's bundled ovs/). */
    extracted: (key: string) => at('extracted', key),
    /** Bare git repositories that sources are fetched into, by URL hash. */
    gitRepo: (urlKey: string) => at('git', `${urlKey}.git`),
    /** rpmbuild _topdir of one package. */
    work: (pkg: string) => at('work', pkg),
    /** Which OVS artifact hash the OVS build tree under work/openvswitch belongs to. */
    ovsTreeStamp: at('work', 'openvswitch', 'tree.json'),
    ccache: at('ccache'),
    /** gcc/cc symlinks to ccache, put first in PATH (ccache's "masquerade" mode). */
    ccacheBin: at('ccache-bin'),
    logs: at('logs'),
    log: (name: string) => at('logs', `${name}.log`),
    /** Locally built base images (rootfs tarballs), by input hash. */
    baseImage: (hash: string) => at('base-images', `${hash}.tar`),
    tmp: at('tmp'),
  };
}
export type BuildCachePaths = ReturnType<typeof buildCachePaths>;

/** What `build` writes into its --out directory. */
export function buildOutputPaths(outDir: string) {
  const dir = path.resolve(outDir);
  return {
    dir,
    manifest: path.join(dir, 'build-manifest.json'),
    summary: path.join(dir, 'build-summary.json'),
    rpmsDir: path.join(dir, 'rpms'),
    imagesDir: path.join(dir, 'images'),
  };
}

/** Gitignored caches of the build tests and benches in a source checkout (ccache, artifacts, base images). */
export const checkoutCacheDir = path.join(packageRoot, '.cache');

/** Handlebars templates of the metadata-agent role (neutron.conf, agent ini, secret, unit). */
export const metadataTemplatesDir = path.join(templatesDir, 'metadata-agent');

/**
 * Files of the metadata-agent role, relative to its config directory. The shared secret has its
 * own 0600 file, passed as one more --config-file, so the other files never hold it.
 */
export const metadataAgentFiles = {
  neutronConf: 'neutron.conf',
  agentIni: 'neutron_ovn_metadata_agent.ini',
  secretIni: 'metadata-secret.ini',
} as const;

/** The sandbox's metadata proxy shared secret (one for all workers, like one per cloud), mode 0600. */
export const sandboxMetadataSecret = (stateDir: string): string => path.join(path.resolve(stateDir), 'etc', 'metadata-shared-secret');

/**
 * Where a real host (`apply`, `deploy`) keeps everything. Distribution paths for the OVS/OVN
 * databases, sockets and control files, so the stock CLI (`ovn-nbctl show`, `ovs-vsctl show`,
 * `ovn-appctl -t /var/run/ovn/ovnnb_db.ctl cluster/status OVN_Northbound`) works without flags;
 * ovn-deploy's own files under /etc/ovn-deploy, /var/lib/ovn-deploy and /var/log/ovn-deploy.
 * `root` prefixes every path (tests apply a bundle under a temporary root).
 */
/** `build(root)`, memoised per root (the layouts are pure; the renderer asks for them per host and unit). */
function perRoot<T>(build: (root: string) => T): (root?: string) => T {
  const byRoot = new Map<string, T>();
  return (root = '/') => {
    let v = byRoot.get(root);
    if (v === undefined) {
      v = build(root);
      if (byRoot.size > 64) byRoot.clear();
      byRoot.set(root, v);
    }
    return v;
  };
}

export const hostPaths: (root?: string) => ReturnType<typeof buildHostPaths> = perRoot((root) => buildHostPaths(root));

function buildHostPaths(root: string) {
  const at = (...parts: string[]): string => path.join(root, ...parts);
  return {
    root,
    /** Config files placed from the bundle. */
    etc: at('etc', 'ovn-deploy'),
    stunnelDir: at('etc', 'ovn-deploy', 'stunnel'),
    /** The host's key (generated on the host, 0600), CSR, certificate, and the site's CA bundle + CRL. */
    pki: {
      dir: at('etc', 'ovn-deploy', 'pki'),
      key: at('etc', 'ovn-deploy', 'pki', 'host.key'),
      /** A renewal's new key, waiting for its certificate (the current key keeps serving meanwhile). */
      keyNext: at('etc', 'ovn-deploy', 'pki', 'host.key.next'),
      csr: at('etc', 'ovn-deploy', 'pki', 'host.csr'),
      cert: at('etc', 'ovn-deploy', 'pki', 'host.pem'),
      caBundle: at('etc', 'ovn-deploy', 'pki', 'ca-bundle.pem'),
      crl: at('etc', 'ovn-deploy', 'pki', 'crl.pem'),
    },
    /** State of apply: the received bundle, what was last applied, the own supervisor's state. */
    state: at('var', 'lib', 'ovn-deploy'),
    bundle: at('var', 'lib', 'ovn-deploy', 'bundle'),
    /** Image archives deploy ships (`<image id>.tar`), loaded by apply, removed by deploy after the apply. */
    imagesDir: at('var', 'lib', 'ovn-deploy', 'images'),
    applied: at('var', 'lib', 'ovn-deploy', 'applied.json'),
    underlayState: at('var', 'lib', 'ovn-deploy', 'underlay.json'),
    /** Reloads/restarts apply owes from changed files, kept until done (survives a failed or needs-certificate apply). */
    applyPending: at('var', 'lib', 'ovn-deploy', 'apply-pending.json'),
    supervisorDir: at('var', 'lib', 'ovn-deploy', 'supervisor'),
    /**
     * A database `restore` put here for disaster recovery (0600): the bootstrap central's apply
     * creates the cluster from it instead of from the schema, then `restore` removes it.
     */
    restoreSeed: (db: string): string => at('var', 'lib', 'ovn-deploy', 'restore', `${db}.db`),
    /** Held while apply runs, so two applies never interleave. */
    applyLock: at('var', 'lib', 'ovn-deploy', 'apply.lock'),
    logDir: at('var', 'log', 'ovn-deploy'),
    /** stunnel's pid files and other runtime files of ours. */
    runDir: at('var', 'run', 'ovn-deploy'),
    /**
     * Every OVSDB client endpoint of the site on this host, as unix sockets: a central's own
     * ovsdb-server listens here, stunnel clients accept here for the other centrals. Mode 0700
     * (root only): the directory, not the sockets' own modes, is what keeps other users out.
     */
    ovsdbDir: at('var', 'run', 'ovn-deploy', 'ovsdb'),
    /** Central `central`'s NB or SB as this host reaches it (short: sun_path holds 107 bytes). */
    ovsdbSocket: (central: string, db: 'nb' | 'sb'): string => at('var', 'run', 'ovn-deploy', 'ovsdb', `${central}.${db}`),
    /** The daemons' stdout/stderr as captured by the supervisor. */
    serviceLog: (service: string) => at('var', 'log', 'ovn-deploy', `${service}.out`),
    /** The tool as shipped by `deploy`: one directory per content id, `current` -> the newest. */
    toolDir: at('opt', 'ovn-deploy'),
    toolCurrent: at('opt', 'ovn-deploy', 'current'),
    systemdDir: at('etc', 'systemd', 'system'),
    ovn: {
      dbDir: at('var', 'lib', 'ovn'),
      runDir: at('var', 'run', 'ovn'),
      logDir: at('var', 'log', 'ovn'),
      nbDb: at('var', 'lib', 'ovn', 'ovnnb_db.db'),
      sbDb: at('var', 'lib', 'ovn', 'ovnsb_db.db'),
      nbSock: at('var', 'run', 'ovn', 'ovnnb_db.sock'),
      sbSock: at('var', 'run', 'ovn', 'ovnsb_db.sock'),
      nbCtl: at('var', 'run', 'ovn', 'ovnnb_db.ctl'),
      sbCtl: at('var', 'run', 'ovn', 'ovnsb_db.ctl'),
      nbPid: at('var', 'run', 'ovn', 'ovnnb_db.pid'),
      sbPid: at('var', 'run', 'ovn', 'ovnsb_db.pid'),
      northdCtl: at('var', 'run', 'ovn', 'ovn-northd.ctl'),
      northdPid: at('var', 'run', 'ovn', 'ovn-northd.pid'),
      controllerPid: at('var', 'run', 'ovn', 'ovn-controller.pid'),
      /** ovn-controller 23.03 has no --unixctl: its socket is named after its pid. */
      controllerCtl: (pid: number) => at('var', 'run', 'ovn', `ovn-controller.${pid}.ctl`),
    },
    ovs: {
      dbDir: at('etc', 'openvswitch'),
      runDir: at('var', 'run', 'openvswitch'),
      logDir: at('var', 'log', 'openvswitch'),
      confDb: at('etc', 'openvswitch', 'conf.db'),
      dbSock: at('var', 'run', 'openvswitch', 'db.sock'),
      ovsdbPid: at('var', 'run', 'openvswitch', 'ovsdb-server.pid'),
      ovsdbCtl: at('var', 'run', 'openvswitch', 'ovsdb-server.ctl'),
      vswitchdPid: at('var', 'run', 'openvswitch', 'ovs-vswitchd.pid'),
      vswitchdCtl: at('var', 'run', 'openvswitch', 'ovs-vswitchd.ctl'),
      /** A bridge's OpenFlow socket, made by ovs-vswitchd once it has created the bridge. */
      bridgeMgmt: (bridge: string) => at('var', 'run', 'openvswitch', `${bridge}.mgmt`),
    },
  };
}
export type HostPaths = ReturnType<typeof hostPaths>;

/**
 * Where a bundle keeps the content of the file that goes to `dest`: files/<destination>, flat:
 * without the leading slash, `%` as `%25` and `/` as `%2F` (etc%2Fovn-deploy%2Ffirewall.nft).
 * One directory per bundle instead of one per destination directory: a 1,000-host render made
 * 20,000 directories, and creating them was most of its time. The manifest names each file's
 * source, so apply reads bundles of either layout.
 */
export function bundleSource(dest: string): string {
  return `files/${dest.replace(/^\/+/, '').replace(/%/g, '%25').replace(/\//g, '%2F')}`;
}

/** Layout of `render --out DIR`: one bundle directory per host. */
export function bundlePaths(outDir: string, host: string) {
  const dir = path.join(outDir, host);
  return {
    dir,
    manifest: path.join(dir, 'manifest.json'),
    source: bundleSource,
  };
}

/**
 * What `render` places on a real host besides hostPaths(): stunnel configs, our systemd units and
 * the drop-ins that keep the distribution's units idle, the firewall file, the metadata agent's
 * config, and the daemons' log files at the distribution's log paths.
 */
export const hostRenderedPaths: (root?: string) => ReturnType<typeof buildHostRenderedPaths> = perRoot((root) => buildHostRenderedPaths(root));

function buildHostRenderedPaths(root: string) {
  const hp = hostPaths(root);
  const unitName = (service: string): string => systemdUnitName(service);
  return {
    stunnelConf: (kind: 'server' | 'client'): string => path.join(hp.stunnelDir, stunnelFiles(kind, hp).confName),
    /** While this file exists, the distribution's own OVN/OVS/stunnel units do not start (a drop-in's condition). */
    managedMarker: path.join(hp.etc, 'managed-by-ovn-deploy'),
    /** nftables rules for the host's OVN ports (`nft -f`). */
    firewall: path.join(hp.etc, 'firewall.nft'),
    /** nftables rules that keep every user but root off the RAFT loopback ports (always loaded). */
    localAccess: path.join(hp.etc, 'local-access.nft'),
    /** Recreates the 0700 OVSDB socket directory at boot (systemd-tmpfiles). */
    tmpfiles: path.join(root, 'etc', 'tmpfiles.d', 'ovn-deploy.conf'),
    metadata: {
      confDir: path.join(hp.etc, 'metadata-agent'),
      statePath: path.join(hp.state, 'neutron'),
      lockPath: path.join(hp.state, 'neutron', 'lock'),
      /** Debian's own unit logs there too. */
      logDir: path.join(root, 'var', 'log', 'neutron'),
      logFile: path.join(root, 'var', 'log', 'neutron', 'neutron-ovn-metadata-agent.log'),
    },
    unitName,
    unit: (service: string): string => path.join(hp.systemdDir, unitName(service)),
    /** Our drop-in for a unit of the distribution. */
    dropIn: (unit: string): string => path.join(hp.systemdDir, `${unit}.d`, 'ovn-deploy.conf'),
    logs: {
      nbOvsdb: path.join(hp.ovn.logDir, 'ovsdb-server-nb.log'),
      sbOvsdb: path.join(hp.ovn.logDir, 'ovsdb-server-sb.log'),
      northd: path.join(hp.ovn.logDir, 'ovn-northd.log'),
      controller: path.join(hp.ovn.logDir, 'ovn-controller.log'),
      ovsdb: path.join(hp.ovs.logDir, 'ovsdb-server.log'),
      vswitchd: path.join(hp.ovs.logDir, 'ovs-vswitchd.log'),
    },
  };
}
export type HostRenderedPaths = ReturnType<typeof hostRenderedPaths>;

/** Handlebars templates of a real host's bundle: systemd units, drop-ins, firewall, marker. */
export const hostTemplatesDir = path.join(templatesDir, 'host');
