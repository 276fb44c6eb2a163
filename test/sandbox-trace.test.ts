import path from 'node:path';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { planSandbox } from '../src/sandbox/plan.js';
import { expectedHops, formatTracePath, parseTraceSummary, traceMicroflow } from '../src/sandbox/trace.js';
import { parsePingSummary } from '../src/sandbox/verify.js';

/** `ovn-trace --summary` output exactly as printed in the seed post ("OVN Routing and ovn-trace"). */
const SEED_TRACE = `# ip,reg14=0x1,vlan_tci=0x0000,dl_src=40:44:00:00:00:01,dl_dst=40:44:00:00:00:03,nw_src=192.168.0.11,nw_dst=192.168.1.11,nw_proto=0,nw_tos=0,nw_ecn=0,nw_ttl=64
ingress(dp="network1", inport="vm1") {
    next;
    outport = "net1-router1";
    output;
    egress(dp="network1", inport="vm1", outport="net1-router1") {
        output;
        /* output to "net1-router1", type "patch" */;
        ingress(dp="router1", inport="router1-net1") {
            next;
            ip.ttl--;
            reg0 = ip4.dst;
            reg1 = 192.168.1.1;
            eth.src = 40:44:00:00:00:04;
            outport = "router1-net2";
            flags.loopback = 1;
            next;
            eth.dst = 40:44:00:00:00:02;
            next;
            output;
            egress(dp="router1", inport="router1-net1", outport="router1-net2") {
                output;
                /* output to "router1-net2", type "patch" */;
                ingress(dp="network2", inport="net2-router1") {
                    next;
                    outport = "vm2";
                    output;
                    egress(dp="network2", inport="net2-router1", outport="vm2") {
                        output;
                        /* output to "vm2", type "" */;
                    };
                };
            };
        };
    };
};
`;

/** The same flow traced by ovn-trace 23.03 in a sandbox (more pipeline stages, same markers). */
const OVN_23_03_TRACE = `# ip,reg14=0x1,vlan_tci=0x0000,dl_src=40:44:00:00:00:01,dl_dst=40:44:00:00:00:03,nw_src=192.168.0.11,nw_dst=192.168.1.11,nw_proto=0,nw_tos=0,nw_ecn=0,nw_ttl=64,nw_frag=no
ingress(dp="network1", inport="vm1") {
    reg0[15] = check_in_port_sec();
    next;
    outport = "net1-router1";
    output;
    egress(dp="network1", inport="vm1", outport="net1-router1") {
        ct_clear;
        next;
        reg0[15] = check_out_port_sec();
        next;
        output;
        /* output to "net1-router1", type "patch" */;
        ingress(dp="router1", inport="router1-net1") {
            xreg0[0..47] = 40:44:00:00:00:03;
            next;
            ip.ttl--;
            reg0 = ip4.dst;
            reg1 = 192.168.1.1;
            eth.src = 40:44:00:00:00:04;
            outport = "router1-net2";
            flags.loopback = 1;
            next;
            eth.dst = 40:44:00:00:00:02;
            next;
            output;
            egress(dp="router1", inport="router1-net1", outport="router1-net2") {
                reg9[4] = 0;
                next;
                output;
                /* output to "router1-net2", type "patch" */;
                ingress(dp="network2", inport="net2-router1") {
                    reg0[15] = check_in_port_sec();
                    next;
                    next;
                    outport = "vm2";
                    output;
                    egress(dp="network2", inport="net2-router1", outport="vm2") {
                        reg0[15] = check_out_port_sec();
                        next;
                        output;
                        /* output to "vm2", type "" */;
                    };
                };
            };
        };
    };
};
`;

describe('parseTraceSummary', () => {
  it("reads the seed post's trace as network1 -> router1 -> network2 -> vm2", () => {
    const p = parseTraceSummary(SEED_TRACE);
    expect(p.datapaths).toEqual(['network1', 'router1', 'network2']);
    expect(p.output).toEqual({ port: 'vm2', type: '' });
    expect(formatTracePath(p)).toBe('network1 -> router1 -> network2 -> vm2');
  });

  it('reads ovn-trace 23.03 output the same way', () => {
    expect(formatTracePath(parseTraceSummary(OVN_23_03_TRACE))).toBe('network1 -> router1 -> network2 -> vm2');
  });

  it('reports no output port when the packet is dropped', () => {
    const p = parseTraceSummary('ingress(dp="network1", inport="vm1") {\n    drop;\n};\n');
    expect(p.hops).toEqual(['network1']);
    expect(p.output).toBeUndefined();
    expect(formatTracePath(parseTraceSummary(''))).toMatch(/no path/);
  });
});

describe('trace microflow and expected path', () => {
  const plan = planSandbox({ stateDir: path.join(os.tmpdir(), 'od-trace-plan'), workers: 3, datapath: 'netdev' });
  const vm = (n: string) => {
    const v = plan.vms.find((x) => x.name === n);
    if (v === undefined) throw new Error(n);
    return v;
  };

  it("is the seed post's microflow for vm1 -> vm2 (to the router's MAC)", () => {
    expect(traceMicroflow(plan, vm('vm1'), vm('vm2'))).toBe(
      'inport == "vm1" && eth.src == 40:44:00:00:00:01 && eth.dst == 40:44:00:00:00:03 && ip4.src == 192.168.0.11 && ip4.dst == 192.168.1.11 && ip.ttl == 64',
    );
    expect(expectedHops(plan, vm('vm1'), vm('vm3'))).toEqual(['network1', 'router1', 'network2', 'vm3']);
    expect(expectedHops(plan, vm('vm2'), vm('vm3'))).toEqual(['network2', 'vm3']);
  });
});

describe('parsePingSummary', () => {
  it('reads counts and the average round trip', () => {
    const out = '--- 192.168.1.11 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 103ms\nrtt min/avg/max/mdev = 0.371/0.384/0.398/0.023 ms\n';
    expect(parsePingSummary(out)).toEqual({ transmitted: 3, received: 3, rttAvgMs: 0.384 });
    expect(parsePingSummary('1 packets transmitted, 0 received, 100% packet loss, time 0ms')).toEqual({ transmitted: 1, received: 0 });
  });
});
