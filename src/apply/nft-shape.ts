/**
 * The nftables files apply loads with `nft -f` (the firewall, and a central's local-access table)
 * come from the bundle: held to the shape render writes, line by line, before any is loaded. So
 * a bundle can only ever replace ovn-deploy's own two tables, with chains whose policy is accept
 * and rules about ports: never flush the host's ruleset, touch another table, include a file, or
 * drop all input (an nft file can do each of these in one line). What the shape still allows: a
 * port rule that drops new connections to a port the bundle names (the signer's choice, as the
 * daemons' argv are).
 */
import type { Problem } from '../errors.js';

const ADDRS = String.raw`[0-9A-Fa-f:., ]+`;
const PORTS = String.raw`(\d{1,5}|\{ \d{1,5}(, \d{1,5})* \})`;
const LINES: readonly RegExp[] = [
  /^$/,
  /^#.*$/,
  /^table inet ovn_deploy(_local)? \{$/,
  /^delete table inet ovn_deploy(_local)?$/,
  /^\}$/,
  /^chain (input|output) \{$/,
  /^type filter hook (input|output) priority filter; policy accept;$/,
  /^ct state established,related accept$/,
  /^iif "lo" accept$/,
  new RegExp(`^ip6? saddr \\{ ${ADDRS} \\} (tcp|udp) dport ${PORTS} accept$`),
  new RegExp(`^(tcp|udp) dport ${PORTS} (accept|drop)$`),
  new RegExp(`^oifname "lo" ip daddr 127\\.0\\.0\\.0/8 tcp dport ${PORTS} ct state new meta skuid != 0 counter reject with tcp reset$`),
];

/** Every line of `content` that is not one render writes; empty when the file is of render's shape. */
export function nftShapeProblems(content: string, file: string, field: string): Problem[] {
  const problems: Problem[] = [];
  content.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!LINES.some((re) => re.test(line))) problems.push({ file, path: field, message: `line ${i + 1} is not a rule ovn-deploy writes (only its own tables, accept-policy chains and port rules): ${JSON.stringify(line.slice(0, 120))}` });
  });
  return problems.slice(0, 5);
}
