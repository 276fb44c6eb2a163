import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, formatProblem } from '../src/errors.js';
import {
  DEFAULT_CERTIFICATE_POLICY,
  DEFAULT_LOOPBACK_PORTS,
  DEFAULT_PORTS,
  DEFAULT_SB_ADMIN_PORT,
  checkInventoryText,
  exampleSiteYaml,
  hostsWithRole,
  inventoryJsonSchema,
  loadInventory,
  parseInventory,
  sandboxInventory,
  type Inventory,
} from '../src/inventory/index.js';

const FILE = 'site.yaml';

/** The formatted problems parseInventory throws for `text` (fails the test if it does not throw). */
function problemsOf(text: string): string[] {
  try {
    parseInventory(text, FILE);
  } catch (err) {
    if (err instanceof InputError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('expected an InputError, the inventory was accepted');
}

const lines = (...l: string[]): string => `${l.join('\n')}\n`;

// A valid two-host site; the cases below change one thing at a time so every expected line
// number is easy to check by eye.
const CENTRAL = ['  - name: central1', '    addresses: [192.0.2.10]', '    roles: [central]'];
const WORKER = ['  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]', '    encap: { type: geneve, ip: 192.0.2.21 }'];

interface BadCase {
  name: string;
  text: string;
  problems: string[];
}

const BAD: BadCase[] = [
  {
    name: 'an address that is not an IP',
    text: lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21, 300.1.1.1]', '    roles: [worker]', '    encap: { ip: 192.0.2.21 }'),
    problems: ['site.yaml: hosts[1].addresses[1]: not an IPv4 or IPv6 address: "300.1.1.1" (line 6)'],
  },
  {
    name: 'an address with a prefix length',
    text: lines('hosts:', '  - name: central1', '    addresses: [192.0.2.10/24]', '    roles: [central]'),
    problems: ['site.yaml: hosts[0].addresses[0]: not an IPv4 or IPv6 address: "192.0.2.10/24" (write the address without a prefix length) (line 3)'],
  },
  {
    name: 'a missing required field',
    text: lines('hosts:', '  - addresses: [192.0.2.10]', '    roles: [central]'),
    problems: ['site.yaml: hosts[0].name: required (line 2)'],
  },
  {
    name: 'a scalar where a list belongs',
    text: lines('hosts:', '  - name: central1', '    addresses: 192.0.2.10', '    roles: [central]'),
    problems: ['site.yaml: hosts[0].addresses: expected a list (line 3)'],
  },
  {
    name: 'a host that is not a mapping',
    text: lines('hosts:', ...CENTRAL, '  - worker1'),
    problems: ['site.yaml: hosts[1]: expected a mapping (line 5)'],
  },
  {
    name: 'an unknown role',
    text: lines('hosts:', '  - name: central1', '    addresses: [192.0.2.10]', '    roles: [central, router]'),
    problems: ['site.yaml: hosts[0].roles[1]: expected one of central, worker, metadata-agent, cms, got "router" (line 4)'],
  },
  {
    name: "a dnsName that is another host's name (it would pass the centrals' name checks as that host)",
    text: lines(
      'hosts:',
      ...CENTRAL,
      '  - name: worker1',
      '    addresses: [192.0.2.21]',
      '    dnsNames: [worker1.example.org, CENTRAL1]',
      '    roles: [worker]',
      '    encap: { ip: 192.0.2.21 }',
    ),
    problems: ['site.yaml: hosts[1].dnsNames[1]: "central1" is already a name of hosts[0] (central1): certificates are admitted by name, so each name belongs to one host (line 7)'],
  },
  {
    name: 'a port out of range',
    text: lines('ports: { nb: 70000 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: ports.nb: expected a port number 1-65535, got 70000 (line 1)'],
  },
  {
    name: 'a port written as a string',
    text: lines('loopbackPorts:', '  sb: "16642"', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: loopbackPorts.sb: expected a port number 1-65535, got "16642" (line 2)'],
  },
  {
    name: 'unknown fields, with a suggestion for a typo',
    text: lines('foo: 1', 'hosts:', '  - name: central1', '    adresses: [192.0.2.10]', '    addresses: [192.0.2.10]', '    roles: [central]'),
    problems: ['site.yaml: unknown field "foo" (line 1)', 'site.yaml: hosts[0]: unknown field "adresses" (did you mean "addresses"?) (line 4)'],
  },
  {
    name: 'two hosts with the same name',
    text: lines('hosts:', ...CENTRAL, '  - name: central1', '    addresses: [192.0.2.11]', '    roles: [central]', '    systemId: central1b'),
    problems: ['site.yaml: hosts[1].name: "central1" is already the name of hosts[0] (line 5)'],
  },
  {
    name: 'the same address on two hosts, in two IPv6 spellings',
    text: lines('hosts:', '  - name: central1', '    addresses: ["2001:db8::1"]', '    roles: [central]', '  - name: central2', '    addresses: ["2001:DB8:0::1"]', '    roles: [central]'),
    problems: ['site.yaml: hosts[1].addresses[0]: 2001:DB8:0::1 is already an address of hosts[0] (central1) (line 6)'],
  },
  {
    name: 'a system-id used twice',
    text: lines('hosts:', ...CENTRAL, ...WORKER, '    systemId: central1'),
    problems: ['site.yaml: hosts[1].systemId: "central1" is already the system-id of hosts[0] (central1) (line 9)'],
  },
  {
    name: 'no central',
    text: lines('hosts:', ...WORKER),
    problems: ['site.yaml: hosts: no host has the central role (line 1)'],
  },
  {
    name: 'a worker without encap',
    text: lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]'),
    problems: ['site.yaml: hosts[1].encap.ip: required for a worker (line 5)'],
  },
  {
    name: 'an encap without ip',
    text: lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]', '    encap: { type: vxlan }'),
    problems: ['site.yaml: hosts[1].encap.ip: required (line 8)'],
  },
  {
    name: 'a metadata agent on a host that is not a worker',
    text: lines('hosts:', '  - name: central1', '    addresses: [192.0.2.10]', '    roles: [central, metadata-agent]', 'metadataAgent: { novaMetadataHost: nova.example.org }'),
    problems: ['site.yaml: hosts[0].roles: metadata-agent needs the worker role on the same host (it runs next to ovn-controller) (line 4)'],
  },
  {
    name: 'an encap ip that is not an address',
    text: lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]', '    encap: { type: geneve, ip: worker1 }'),
    problems: ['site.yaml: hosts[1].encap.ip: not an IPv4 or IPv6 address: "worker1" (line 8)'],
  },
  {
    name: 'an encap type that does not exist',
    text: lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]', '    encap: { type: gre, ip: 192.0.2.21 }'),
    problems: ['site.yaml: hosts[1].encap.type: expected one of geneve, vxlan, got "gre" (line 8)'],
  },
  {
    name: 'two workers with the same encap ip',
    text: lines('hosts:', ...CENTRAL, ...WORKER, '  - name: worker2', '    addresses: [192.0.2.22]', '    roles: [worker]', '    encap: { ip: 192.0.2.21 }'),
    problems: ['site.yaml: hosts[2].encap.ip: 192.0.2.21 is already the encap IP of hosts[1] (worker1) (line 12)'],
  },
  {
    name: 'a port used twice',
    text: lines('ports: { nb: 6641, sb: 6641 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: ports.sb: port 6641 is already used by ports.nb (line 1)'],
  },
  {
    name: 'a loopback port clashing with a default TLS port',
    text: lines('loopbackPorts: { nbRaft: 6642 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: loopbackPorts.nbRaft: port 6642 is already used by ports.sb (the default) (line 1)'],
  },
  {
    name: 'the native admin SB port clashing with a TLS port',
    text: lines('tls: { mode: native, sbAdminPort: 6643 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: tls.sbAdminPort: port 6643 is already used by ports.nbRaft (the default) (line 1)'],
  },
  {
    // RBAC knows a chassis by its certificate's name (the host name): a system-id of its own
    // would make every write of that chassis a permission error.
    name: 'native TLS with a worker whose system-id is not its name',
    text: lines('tls: { mode: native }', 'hosts:', ...CENTRAL, ...WORKER, '    systemId: chassis-7'),
    problems: [
      'site.yaml: hosts[1].systemId: with tls.mode native the system-id must be the host name "worker1": Southbound RBAC admits a chassis\'s writes by its certificate\'s name (drop systemId or use stunnel mode) (line 10)',
    ],
  },
  {
    name: 'native TLS with a containerized metadata agent',
    text: lines('tls: { mode: native }', 'metadataAgent: { novaMetadataHost: nova.example.org, image: registry.example.org/agent:1 }', 'hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker, metadata-agent]', '    encap: { ip: 192.0.2.21 }'),
    problems: [
      "site.yaml: metadataAgent.image: with tls.mode native the metadata agent runs as the distribution's process (host worker1): its container would need the host's private key mounted, which it does not get (line 2)",
    ],
  },
  {
    name: 'a renewal window as long as the certificate lifetime',
    text: lines('certificates: { leafValidityDays: 365, renewalWindowDays: 365 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: certificates.renewalWindowDays: must be less than leafValidityDays (365), got 365 (line 1)'],
  },
  {
    name: 'a leaf lifetime shorter than the default renewal window',
    text: lines('certificates: { leafValidityDays: 200 }', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: certificates.leafValidityDays: must be more than renewalWindowDays (243, the default), got 200 (line 1)'],
  },
  {
    name: 'a leaf certificate outliving its CA',
    text: lines('certificates:', '  caValidityDays: 365', '  leafValidityDays: 400', '  renewalWindowDays: 30', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: certificates.leafValidityDays: must not exceed caValidityDays (365), got 400 (line 3)'],
  },
  {
    name: 'an unsupported key size and a zero lifetime',
    text: lines('certificates: { caKeyBits: 1024, caValidityDays: 0 }', 'hosts:', ...CENTRAL),
    problems: [
      'site.yaml: certificates.caValidityDays: expected a whole number of days 1-36500, got 0 (line 1)',
      'site.yaml: certificates.caKeyBits: expected one of 2048, 3072, 4096, got 1024 (line 1)',
    ],
  },
  {
    name: 'an empty hosts list',
    text: lines('site: lab1', 'hosts: []'),
    problems: ['site.yaml: hosts: expected at least one host (line 2)'],
  },
  {
    name: 'no hosts at all',
    text: lines('site: lab1'),
    problems: ['site.yaml: hosts: required'],
  },
  {
    name: 'broken YAML syntax',
    text: lines('hosts:', '  - name: central1', '    addresses: [192.0.2.10', '    roles: [central]'),
    problems: [
      'site.yaml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] (line 4, column 5)',
    ],
  },
  {
    name: 'a key written twice',
    text: lines('site: lab1', 'site: lab2', 'hosts:', ...CENTRAL),
    problems: ['site.yaml: invalid YAML: Map keys must be unique (line 2, column 1)'],
  },
  {
    name: 'a document that is a list',
    text: lines('- name: central1'),
    problems: ['site.yaml: expected a mapping at the top level, got a list'],
  },
  {
    name: 'a file with only comments',
    text: lines('# nothing yet'),
    problems: ['site.yaml: empty document: expected a mapping with at least "hosts"'],
  },
  {
    name: 'a site name with capitals, tls mode tcp, a bad DNS name, a bad ssh port',
    text: lines(
      'site: Lab_1',
      'tls: { mode: tcp }',
      'hosts:',
      '  - name: central1',
      '    addresses: [192.0.2.10]',
      '    dnsNames: [bad_name.example.org]',
      '    roles: [central]',
      '    ssh: { port: 0 }',
    ),
    problems: [
      'site.yaml: site: expected a site name (lowercase letters, digits and "-", at most 63 characters, no "-" at either end), got "Lab_1" (line 1)',
      'site.yaml: tls.mode: expected one of stunnel, native, got "tcp" (line 2)',
      'site.yaml: hosts[0].dnsNames[0]: not a DNS name: "bad_name.example.org" (line 6)',
      'site.yaml: hosts[0].ssh.port: expected a port number 1-65535, got 0 (line 8)',
    ],
  },
  {
    // Field errors and cross-field rules together, in file order: everything in one run.
    name: 'many problems in one document',
    text: lines(
      'ports: { nb: 6641, sb: 6641 }',
      'hosts:',
      '  - name: central1',
      '    addresses: [192.0.2.10, 300.1.1.1]',
      '    roles: [central, metadata-agent]',
      '  - name: central1',
      '    addresses: [192.0.2.10]',
      '    roles: [worker, router]',
      '    colour: blue',
    ),
    problems: [
      'site.yaml: metadataAgent: required: host central1 has the metadata-agent role; add metadataAgent: { novaMetadataHost: ... } (novaMetadataPort and workers are optional)',
      'site.yaml: ports.sb: port 6641 is already used by ports.nb (line 1)',
      'site.yaml: hosts[0].addresses[1]: not an IPv4 or IPv6 address: "300.1.1.1" (line 4)',
      'site.yaml: hosts[0].roles: metadata-agent needs the worker role on the same host (it runs next to ovn-controller) (line 5)',
      'site.yaml: hosts[1].name: "central1" is already the name of hosts[0] (line 6)',
      'site.yaml: hosts[1].encap.ip: required for a worker (line 6)',
      'site.yaml: hosts[1].addresses[0]: 192.0.2.10 is already an address of hosts[0] (central1) (line 7)',
      'site.yaml: hosts[1].roles[1]: expected one of central, worker, metadata-agent, cms, got "router" (line 8)',
      'site.yaml: hosts[1]: unknown field "colour" (line 9)',
    ],
  },
];

describe('parseInventory rejects bad site files with exact messages', () => {
  it('covers enough kinds of mistakes', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(18);
  });

  it.each(BAD)('$name', ({ text, problems }) => {
    expect(problemsOf(text)).toEqual(problems);
  });

  it('reports the same findings without the file name through checkInventoryText', () => {
    const report = checkInventoryText(lines('ports: { nb: 70000 }', 'hosts:', ...CENTRAL));
    expect(report.inventory).toBeUndefined();
    expect(report.errors).toEqual([{ path: 'ports.nb', message: 'expected a port number 1-65535, got 70000', line: 1 }]);
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 6; i++) bomb.push(`${'bcdefg'[i]}: &${'bcdefg'[i]} [${Array(10).fill(`*${i === 0 ? 'a' : 'bcdefg'[i - 1]}`).join(', ')}]`);
    const problems = problemsOf(lines(...bomb, 'hosts: []'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^site\.yaml: invalid YAML: .*alias/i);
  });
});

describe('parseInventory accepts good site files', () => {
  it("a stunnel site may use tls.sbAdminPort's default for another port: only native mode binds it", () => {
    const { inventory } = parseInventory(lines('ports: { sbRaft: 6648 }', 'hosts:', ...CENTRAL), FILE);
    expect(inventory.ports.sbRaft).toBe(6648);
    expect(problemsOf(lines('tls: { mode: native }', 'ports: { sbRaft: 6648 }', 'hosts:', ...CENTRAL))).toEqual(['site.yaml: ports.sbRaft: port 6648 is already used by tls.sbAdminPort (the default) (line 2)']);
  });

  it('applies every default', () => {
    const { inventory, warnings, file } = parseInventory(lines('hosts:', ...CENTRAL, '  - name: worker1', '    addresses: [192.0.2.21]', '    roles: [worker]', '    encap: { ip: 192.0.2.21 }', '    ssh: {}'), FILE);
    const want: Inventory = {
      site: 'ovn',
      tls: { mode: 'stunnel', sbAdminPort: DEFAULT_SB_ADMIN_PORT },
      ports: { ...DEFAULT_PORTS },
      loopbackPorts: { ...DEFAULT_LOOPBACK_PORTS },
      certificates: { ...DEFAULT_CERTIFICATE_POLICY },
      hosts: [
        { name: 'central1', addresses: ['192.0.2.10'], dnsNames: [], roles: ['central'], systemId: 'central1', datapath: 'system' },
        {
          name: 'worker1',
          addresses: ['192.0.2.21'],
          dnsNames: [],
          roles: ['worker'],
          datapath: 'system',
          encap: { type: 'geneve', ip: '192.0.2.21' },
          systemId: 'worker1',
          ssh: { user: 'root', port: 22 },
        },
      ],
    };
    expect(inventory).toStrictEqual(want);
    expect(warnings).toEqual([]);
    expect(file).toBe(FILE);
  });

  it('fills partly written sections and keeps what was written', () => {
    const { inventory } = parseInventory(lines('ports: { sb: 7642 }', 'certificates: { leafKeyBits: 4096 }', 'hosts:', ...CENTRAL, '    systemId: chassis-a'), FILE);
    expect(inventory.ports).toEqual({ ...DEFAULT_PORTS, sb: 7642 });
    expect(inventory.certificates).toEqual({ ...DEFAULT_CERTIFICATE_POLICY, leafKeyBits: 4096 });
    expect(inventory.hosts[0]?.systemId).toBe('chassis-a');
  });

  it('warns about an even number of centrals', () => {
    const { warnings } = parseInventory(lines('hosts:', ...CENTRAL, '  - name: central2', '    addresses: [192.0.2.11]', '    roles: [central]'), FILE);
    expect(warnings).toEqual(['2 central hosts: RAFT needs an odd number for a useful quorum (3 or 5)']);
  });

  it('warns about more than 7 centrals', () => {
    const hosts = Array.from({ length: 9 }, (_, i) => [`  - name: c${i}`, `    addresses: [192.0.2.${i + 1}]`, '    roles: [central]']).flat();
    const { warnings } = parseInventory(lines('hosts:', ...hosts), FILE);
    expect(warnings).toEqual(['9 central hosts: every RAFT write waits for a majority, more than 7 only slows the cluster (use 3 or 5)']);
  });

  it('accepts a host that is central and worker at once', () => {
    const { inventory } = parseInventory(lines('hosts:', '  - name: aio', '    addresses: [192.0.2.5]', '    roles: [central, worker, metadata-agent]', '    encap: { ip: 192.0.2.5 }', 'metadataAgent: { novaMetadataHost: 192.0.2.9 }'), FILE);
    expect(hostsWithRole(inventory, 'central').map((h) => h.name)).toEqual(['aio']);
    expect(hostsWithRole(inventory, 'metadata-agent').map((h) => h.name)).toEqual(['aio']);
  });
});

describe('the example written by init', () => {
  it('validates without warnings and shows a realistic site', () => {
    const { inventory, warnings } = parseInventory(exampleSiteYaml(), 'example');
    expect(warnings).toEqual([]);
    expect(hostsWithRole(inventory, 'central')).toHaveLength(3);
    expect(hostsWithRole(inventory, 'worker')).toHaveLength(2);
    expect(hostsWithRole(inventory, 'metadata-agent')).toHaveLength(1);
  });

  it('spells out the defaults, so leaving a section out changes nothing', () => {
    const { inventory } = parseInventory(exampleSiteYaml(), 'example');
    expect(inventory.ports).toEqual(DEFAULT_PORTS);
    expect(inventory.loopbackPorts).toEqual(DEFAULT_LOOPBACK_PORTS);
    expect(inventory.certificates).toEqual(DEFAULT_CERTIFICATE_POLICY);
  });
});

describe('sandboxInventory', () => {
  const opts = {
    site: 'sandbox',
    central: { name: 'central1', address: '10.99.0.1' },
    workers: [
      { name: 'worker1', address: '10.99.0.11', metadataAgent: true },
      { name: 'worker2', address: '10.99.0.12' },
    ],
    ports: { nb: 26641 },
    metadataAgent: { novaMetadataHost: '127.0.0.1', novaMetadataPort: 8775 },
  };

  it('builds an inventory that passes the site-file validation', () => {
    const inv = sandboxInventory(opts);
    expect(inv.ports.nb).toBe(26641);
    expect(inv.hosts.map((h) => [h.name, h.roles, h.encap?.ip])).toEqual([
      ['central1', ['central'], undefined],
      ['worker1', ['worker', 'metadata-agent'], '10.99.0.11'],
      ['worker2', ['worker'], '10.99.0.12'],
    ]);
    // Round trip: the same data written as a site file validates to the same inventory.
    expect(parseInventory(JSON.stringify(inv), 'roundtrip.yaml').inventory).toStrictEqual(inv);
  });

  it('throws an InputError naming the sandbox for bad options', () => {
    let caught: unknown;
    try {
      sandboxInventory({ ...opts, workers: [{ name: 'worker1', address: '10.99.0.1' }] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as InputError).problems.map(formatProblem)).toEqual([
      '(sandbox): hosts[1].addresses[0]: 10.99.0.1 is already an address of hosts[0] (central1)',
    ]);
  });
});

describe('inventoryJsonSchema', () => {
  it('is JSON describing hosts, with defaults and help texts', () => {
    const schema = JSON.parse(JSON.stringify(inventoryJsonSchema())) as {
      $schema: string;
      title: string;
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { description?: string; default?: unknown; items?: { required: string[]; properties: Record<string, { description?: string }> } }>;
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.title).toMatch(/site/);
    expect(schema.required).toEqual(['hosts']);
    expect(schema.additionalProperties).toBe(false);
    const hosts = schema.properties.hosts;
    expect(hosts?.description).toBeTruthy();
    expect(hosts?.items?.required).toEqual(['name', 'addresses', 'roles']);
    expect(hosts?.items?.properties.roles?.description).toMatch(/metadata-agent/);
    expect(schema.properties.ports?.default).toEqual({});
  });
});

describe('loadInventory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ovn-deploy-inv-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and validates a file', async () => {
    const file = path.join(dir, 'site.yaml');
    await writeFile(file, exampleSiteYaml());
    const parsed = await loadInventory(file);
    expect(parsed.file).toBe(file);
    expect(parsed.inventory.site).toBe('lab1');
  });

  it('names the file it cannot read', async () => {
    const file = path.join(dir, 'missing.yaml');
    await expect(loadInventory(file)).rejects.toThrow(`${file}: cannot read the site file: no such file`);
    await expect(loadInventory(dir)).rejects.toThrow(`${dir}: cannot read the site file: is a directory, expected a site file`);
  });
});
