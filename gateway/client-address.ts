// Who sent a request: the TCP peer, or, when the peer is one of POSTHORN_TRUSTED_PROXIES, the
// address those proxies put in X-Forwarded-For. Used by the failed-authentication limit (which
// keyed on the proxy before, so one client's brute force blocked everyone behind it) and logs.
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import ipaddr from 'ipaddr.js';
import type { TrustedProxies } from '../shared/config.ts';

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

const parse = (raw: string): Addr | null => {
  const s = raw.trim();
  return ipaddr.isValid(s) ? ipaddr.process(s) : null; // IPv4-mapped IPv6 unwrapped
};

const trusts = (proxies: TrustedProxies, a: Addr) => proxies.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));

/**
 * The client's address, or null when the peer is unknown (app.request in tests). X-Forwarded-For
 * is read from the right: each trusted proxy appends the address it was connected from, so the
 * rightmost entry that is not itself a trusted proxy is the client; entries left of it are
 * whatever the client wrote and are never believed. An entry that is not an address ends the
 * walk at the last trusted hop.
 */
export function clientIp(c: Context, proxies: TrustedProxies = []): string | null {
  // @hono/node-server's bindings; absent under app.request (tests), where the peer is unknown.
  const raw = (c.env as Partial<HttpBindings> | undefined)?.incoming?.socket?.remoteAddress;
  const peer = raw ? parse(raw) : null;
  if (!peer) return null;
  let client = peer;
  if (proxies.length && trusts(proxies, peer)) {
    const hops = (c.req.header('x-forwarded-for') ?? '').split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      if (hops[i]!.trim() === '') continue;
      const hop = parse(hops[i]!);
      if (!hop) break;
      client = hop;
      if (!trusts(proxies, hop)) break;
    }
  }
  return client.toString();
}

/**
 * The key a failed authentication is counted against: the client's IP, an IPv6 client by its
 * /64 since one host usually holds a whole /64.
 */
export function clientKey(ip: string | null): string {
  if (!ip) return 'unknown';
  const addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}
