/**
 * Which addresses network sources may reach. A source URL is user input, and ffmpeg will connect
 * wherever it points, so without a policy `http://127.0.0.1:6379/` or
 * `http://169.254.169.254/latest/meta-data/` would make the server read its own loopback services
 * or the cloud metadata endpoint (SSRF). By default network sources may not reach:
 *
 * - loopback: 127.0.0.0/8, ::1 (lifted by `allowLoopback`);
 * - link-local: 169.254.0.0/16, fe80::/10;
 * - cloud metadata: 169.254.169.254, fd00:ec2::254 (AWS IPv6), 100.100.100.200 (Alibaba);
 * - unspecified: 0.0.0.0/8 (on Linux 0.0.0.0 reaches this host), ::;
 * - multicast and broadcast: 224.0.0.0/4, 255.255.255.255, ff00::/8 (not one host).
 *
 * Private LAN ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed: cameras live there.
 * `allow` lifts any of the default ranges for the addresses it names; `deny` adds ranges (it wins
 * over everything). Host names are checked after DNS resolution, on every address they resolve
 * to; IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) count as the IPv4 address.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { SourceError } from './source.js';

export interface NetworkPolicy {
  /** Let network sources reach loopback addresses (a camera relay or test server on this host). */
  allowLoopback: boolean;
  /** Addresses or CIDR ranges (`169.254.10.20`, `fe80::/10`) reachable although denied by default. */
  allow: string[];
  /** Addresses or CIDR ranges never reachable, on top of the defaults (e.g. the LAN's router). */
  deny: string[];
}

export const DEFAULT_NETWORK_POLICY: NetworkPolicy = { allowLoopback: false, allow: [], deny: [] };

export interface AddressPolicy {
  /** Why `address` (an IP literal) may not be reached, or undefined when it may. */
  refusal(address: string): string | undefined;
  /**
   * Resolves `host` (a name or an IP literal, brackets allowed) and returns the address to connect
   * to. Throws a `SourceError` when any address it resolves to is refused, a plain Error when it
   * does not resolve.
   */
  resolve(host: string): Promise<string>;
}

const DEFAULT_DENIED: [string, string[]][] = [
  // Checked in this order, so the metadata addresses are named as such, not as link-local.
  ['cloud metadata', ['169.254.169.254/32', 'fd00:ec2::254/128', '100.100.100.200/32']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['multicast or broadcast', ['224.0.0.0/4', '255.255.255.255/32', 'ff00::/8']],
];

const HINT = 'network sources may not reach it (ARBEX_SOURCE_ALLOW_LOOPBACK / ARBEX_SOURCE_ALLOW lift this)';

/** A BlockList of `entries` (addresses or CIDR ranges); `what` names the setting in errors. */
function blockList(entries: string[], what: string): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const m = /^\[?([^\]/]+)\]?(?:\/(\d{1,3}))?$/.exec(entry.trim());
    const family = m ? net.isIP(m[1]!) : 0;
    const prefix = m?.[2] === undefined ? (family === 4 ? 32 : 128) : Number(m[2]);
    if (!m || family === 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new Error(`${what}: "${entry}" is not an IP address or CIDR range (e.g. 192.168.1.20 or 10.0.0.0/8)`);
    }
    list.addSubnet(m[1]!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

const familyOf = (address: string): 'ipv4' | 'ipv6' => (net.isIP(address) === 4 ? 'ipv4' : 'ipv6');

/**
 * @example
 * const policy = createAddressPolicy({ allowLoopback: true });
 * policy.refusal('169.254.169.254'); // 'a cloud metadata address: network sources may not reach it ...'
 * const address = await policy.resolve('cam.local'); // connect here, not to the name
 */
export function createAddressPolicy(options: Partial<NetworkPolicy> = {}): AddressPolicy {
  const { allowLoopback, allow, deny } = { ...DEFAULT_NETWORK_POLICY, ...options };
  const allowed = blockList(allow, 'ARBEX_SOURCE_ALLOW');
  const denied = blockList(deny, 'ARBEX_SOURCE_DENY');
  const defaults = DEFAULT_DENIED.filter(([name]) => !(allowLoopback && name === 'loopback')).map(
    ([name, ranges]) => [name, blockList(ranges, name)] as const,
  );

  const refusal = (address: string): string | undefined => {
    if (net.isIP(address) === 0) return `${address} is not an IP address`;
    const family = familyOf(address);
    if (denied.check(address, family)) return `a denied address (ARBEX_SOURCE_DENY): network sources may not reach it`;
    if (allowed.check(address, family)) return undefined;
    const hit = defaults.find(([, list]) => list.check(address, family));
    return hit ? `a ${hit[0]} address: ${HINT}` : undefined;
  };

  return {
    refusal,
    async resolve(host) {
      const name = host.replace(/^\[(.*)\]$/, '$1');
      const literal = net.isIP(name) !== 0;
      const found = literal ? [{ address: name }] : await lookup(name, { all: true, verbatim: true });
      if (found.length === 0) throw new Error(`${name} did not resolve to any address`);
      // Every address must pass: a name may resolve to a public and a loopback address at once.
      for (const { address } of found) {
        const why = refusal(address);
        if (why) throw new SourceError(`Source refused: ${literal ? `${name} is` : `${name} resolves to ${address},`} ${why}`);
      }
      return found[0]!.address;
    },
  };
}
