// Target policy: which addresses and URLs a worker may send requests to (docs/api.md §6).
//
// Posthorn makes HTTP requests to URLs that its users choose, so without a policy any API key
// could reach the cloud metadata service, the database, or anything else on the worker's network
// (SSRF). The policy is deny-by-default for every address that is not plain public unicast.
// It is pure (no I/O): the gateway uses checkUrl() at enqueue, and the worker's dispatcher
// (worker/dispatcher.ts) uses checkAddress() on every address a name resolves to at delivery.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { type FieldError, problem } from './errors.ts';
import type { Logger } from './logger.ts';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

export type TargetVerdict = { ok: true } | { ok: false; reason: string };

export type TargetPolicyOptions = {
  /** POSTHORN_ALLOW_PRIVATE_TARGETS: allow every target. For self-hosted use on an internal network. */
  allowPrivate: boolean;
  /** POSTHORN_TARGET_ALLOWLIST entries: CIDRs, single IPs, host names or "*.suffix" wildcards. */
  allowlist: string[];
};

export type TargetPolicy = {
  /** Connect time: is this (resolved or literal) address allowed? Expects canonical IP text. */
  checkAddress(ip: string): TargetVerdict;
  /** Enqueue time: refuses literal denied IPs and localhost names; other names pass (checked at delivery). */
  checkUrl(url: URL): TargetVerdict;
  /** True when the host name is on the allowlist: all its addresses are allowed, private or not. */
  isAllowlistedHost(hostname: string): boolean;
  allowsPrivate: boolean;
};

const OK: TargetVerdict = { ok: true };

// Human-readable names for the ranges ipaddr.js's range() reports. Every range other than
// 'unicast' is denied; names missing here fall back to "a special-purpose address (<name>)".
const RANGE_LABELS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address (cloud metadata services live here)',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address',
  private: 'a private address',
  reserved: 'a reserved address',
  uniqueLocal: 'a unique-local address',
  deprecatedSiteLocal: 'a site-local address',
  discard: 'a discard-only address',
  benchmarking: 'a benchmarking address',
};

// ipaddr.js lumps documentation, benchmarking and other blocks into 'reserved'; these give a
// clearer reason. Only used for wording: the whole 'reserved' range is denied either way.
const RESERVED_DETAIL: [Cidr, string][] = (
  [
    ['192.0.2.0/24', 'a documentation address'],
    ['198.51.100.0/24', 'a documentation address'],
    ['203.0.113.0/24', 'a documentation address'],
    ['2001:db8::/32', 'a documentation address'],
    ['3fff::/20', 'a documentation address'],
    ['198.18.0.0/15', 'a benchmarking address'],
    ['192.0.0.0/24', 'an IETF protocol assignment address'],
    ['192.88.99.0/24', 'a 6to4 relay anycast address'],
  ] as const
).map(([cidr, label]) => [ipaddr.parseCIDR(cidr), label]);

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');
const SIX_TO_FOUR = ipaddr.parseCIDR('2002::/16');

function inCidr(addr: Address, [net, bits]: Cidr): boolean {
  // ipaddr's match() throws when the families differ.
  return addr.kind() === net.kind() && addr.match(net, bits);
}

/**
 * Parses IP text that net.isIP() accepts. Not ipaddr.parse() directly: it accepts "0177.1" and
 * reads "::10.0.0.1" as ::ffff:10.0.0.1, where Node and WHATWG URL read ::a00:1. Two parsers
 * that disagree about an address are how SSRF filters get bypassed, so we spell the embedded
 * dotted quad out in hex first and let ipaddr.js see only plain IPv6.
 */
function parseIp(text: string): Address {
  if (isIP(text) === 4) return ipaddr.IPv4.parse(text);
  const [addr = '', zone] = text.split('%');
  const hex = addr.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  return ipaddr.IPv6.parse(zone === undefined ? hex : `${hex}%${zone}`);
}

function v4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/**
 * IPv6 forms that carry an IPv4 address which is where the packets really end up (or which a
 * relay will forward to). These are judged by the embedded address, so ::ffff:127.0.0.1 or a
 * 6to4 address wrapping 10.0.0.1 cannot be used to sneak past the IPv4 rules.
 */
function embeddedIPv4(v6: ipaddr.IPv6): { form: string; v4: ipaddr.IPv4 } | undefined {
  const p = v6.parts;
  const range = v6.range() as string;
  if (range === 'ipv4Mapped') return { form: 'an IPv4-mapped', v4: v4FromWords(p[6]!, p[7]!) };
  if (range === 'rfc6145') return { form: 'an IPv4-translated', v4: v4FromWords(p[6]!, p[7]!) };
  if (inCidr(v6, NAT64_WELL_KNOWN)) return { form: 'a NAT64', v4: v4FromWords(p[6]!, p[7]!) };
  if (inCidr(v6, SIX_TO_FOUR)) return { form: 'a 6to4', v4: v4FromWords(p[1]!, p[2]!) };
  // Teredo 2001:0::/32: the client's address is the last 32 bits, inverted.
  if (range === 'teredo') return { form: 'a Teredo', v4: v4FromWords(p[6]! ^ 0xffff, p[7]! ^ 0xffff) };
  // Deprecated IPv4-compatible ::a.b.c.d (:: and ::1 are caught earlier as unspecified/loopback).
  if (p.slice(0, 6).every((w) => w === 0)) return { form: 'an IPv4-compatible', v4: v4FromWords(p[6]!, p[7]!) };
  return undefined;
}

function rangeLabel(addr: Address, range: string): string {
  if (range === 'reserved') {
    const detail = RESERVED_DETAIL.find(([cidr]) => inCidr(addr, cidr));
    if (detail) return detail[1];
  }
  return RANGE_LABELS[range] ?? `a special-purpose address (${range})`;
}

/** Why the address is denied (a phrase that follows "<ip> is"), or null for public unicast. */
function denyLabel(addr: Address): string | null {
  const range = addr.range() as string;
  if (addr.kind() === 'ipv4') return range === 'unicast' ? null : rangeLabel(addr, range);

  const v6 = addr as ipaddr.IPv6;
  if (range === 'unspecified' || range === 'loopback') return rangeLabel(v6, range);
  const embedded = embeddedIPv4(v6);
  if (embedded) {
    const inner = denyLabel(embedded.v4);
    return inner === null ? null : `${embedded.form} form of ${embedded.v4}, ${inner}`;
  }
  // 64:ff9b:1::/48 is for local NAT64 deployments that may put the IPv4 address at several
  // offsets (RFC 6052 prefix lengths /48 to /96), so we cannot unwrap it reliably: deny it all.
  if (range === 'rfc6052') return 'a local-use NAT64 address';
  if (range !== 'unicast') return rangeLabel(v6, range);
  // Everything public in IPv6 today is in 2000::/3; what ipaddr.js calls unicast outside it is
  // unassigned or reserved space that no legitimate webhook receiver uses.
  if (!inCidr(v6, GLOBAL_UNICAST_V6)) return 'outside the global unicast range 2000::/3';
  // A zone index only means something for link-local addresses, which are denied above.
  if (v6.zoneId) return 'a scoped address (it has a zone index)';
  return null;
}

// ---- allowlist ----

type Allowlist = { cidrs: Cidr[]; names: Set<string>; suffixes: string[] };

function badEntry(entry: string, why: string): Error {
  return new Error(`invalid POSTHORN_TARGET_ALLOWLIST entry "${entry}": ${why}`);
}

/** Lower case, no trailing dots: "Internal.Example." and "internal.example" are the same host. */
function normaliseName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
// A last label like this makes WHATWG URL treat the host as an IPv4 address ("127.1", "0x7f").
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;

/** Validates one entry and returns its canonical text; throws an Error naming the entry. */
function normaliseEntry(entry: string): string {
  const e = entry.trim();
  if (e.includes('%')) throw badEntry(entry, 'zone indexes are not supported');
  if (e.includes('/')) {
    const [ip = '', bits = '', ...rest] = e.split('/');
    const family = isIP(ip);
    if (rest.length > 0 || family === 0) throw badEntry(entry, 'expected a CIDR like 10.0.0.0/8 or fd00::/8');
    const n = Number(bits);
    if (!/^\d{1,3}$/.test(bits) || n > (family === 4 ? 32 : 128)) throw badEntry(entry, 'bad prefix length');
    return `${parseIp(ip).toString()}/${n}`;
  }
  if (isIP(e)) return parseIp(e).toString();

  const name = normaliseName(e);
  const body = name.startsWith('*.') ? name.slice(2) : name;
  const labels = body.split('.');
  if (body.length === 0 || body.length > 253 || !labels.every((l) => LABEL.test(l))) {
    throw badEntry(entry, 'expected a CIDR, an IP address or a host name (IDN names in xn-- form)');
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) {
    throw badEntry(entry, 'looks like an IP address; write it as a.b.c.d');
  }
  return name;
}

/** Parses POSTHORN_TARGET_ALLOWLIST: comma separated, blanks ignored, every entry validated. */
export function parseAllowlist(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(normaliseEntry);
}

function buildAllowlist(entries: string[]): Allowlist {
  const list: Allowlist = { cidrs: [], names: new Set(), suffixes: [] };
  for (const entry of entries.map(normaliseEntry)) {
    if (entry.includes('/')) {
      const [ip = '', bits = ''] = entry.split('/');
      list.cidrs.push([parseIp(ip), Number(bits)]);
    } else if (isIP(entry)) {
      const addr = parseIp(entry);
      list.cidrs.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
    } else if (entry.startsWith('*.'))
      list.suffixes.push(entry.slice(1)); // keeps the dot: ".corp.example"
    else list.names.add(entry);
  }
  return list;
}

function allowlistHasAddress(list: Allowlist, addr: Address): boolean {
  // ::ffff:10.1.2.3 is how a dual-stack socket spells 10.1.2.3, so match both spellings.
  const alt = addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : undefined;
  return list.cidrs.some((cidr) => inCidr(addr, cidr) || (alt !== undefined && inCidr(alt, cidr)));
}

// ---- policy ----

function isLocalhostName(name: string): boolean {
  // RFC 6761: "localhost" and everything under it resolve to loopback.
  return name === 'localhost' || name.endsWith('.localhost');
}

export function createTargetPolicy(opts: TargetPolicyOptions): TargetPolicy {
  const allowPrivate = opts.allowPrivate;
  const allowlist = buildAllowlist(opts.allowlist);

  const isAllowlistedHost = (hostname: string): boolean => {
    const name = normaliseName(hostname);
    return allowlist.names.has(name) || allowlist.suffixes.some((s) => name.endsWith(s));
  };

  const checkAddress = (ip: string): TargetVerdict => {
    if (allowPrivate) return OK;
    // Only canonical text (what DNS and WHATWG URL produce), never "0177.1" or "2130706433".
    if (isIP(ip) === 0) return { ok: false, reason: `${ip} is not an IP address` };
    const addr = parseIp(ip);
    if (allowlistHasAddress(allowlist, addr)) return OK;
    const label = denyLabel(addr);
    return label === null ? OK : { ok: false, reason: `${ip} is ${label}` };
  };

  const checkUrl = (url: URL): TargetVerdict => {
    // Only special schemes get their host normalised by WHATWG URL ("foo://0x7f.1" keeps its
    // odd spelling), and only http(s) is delivered anyway.
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { ok: false, reason: `${url.protocol} URLs are not supported` };
    }
    // WHATWG URL has already turned 2130706433, 0x7f.1, 0177.0.0.1 and 127.1 into 127.0.0.1.
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (host === '') return { ok: false, reason: 'the URL has no host' };
    if (isIP(host) !== 0) return checkAddress(host);
    if (allowPrivate || isAllowlistedHost(host)) return OK;
    if (isLocalhostName(normaliseName(host))) return { ok: false, reason: `${host} is a localhost name` };
    return OK; // other names are resolved and checked at delivery
  };

  return { checkAddress, checkUrl, isAllowlistedHost, allowsPrivate: allowPrivate };
}

/** The policy a process runs with (gateway and worker alike), saying so loudly when it lets every target through. */
export function targetPolicyFromConfig(
  config: { allowPrivateTargets: boolean; targetAllowlist: string[] },
  logger: Pick<Logger, 'warn'>,
): TargetPolicy {
  const policy = createTargetPolicy({ allowPrivate: config.allowPrivateTargets, allowlist: config.targetAllowlist });
  if (policy.allowsPrivate) logger.warn('POSTHORN_ALLOW_PRIVATE_TARGETS is on: tasks may reach loopback, private and metadata addresses');
  return policy;
}

// ---- enqueue-time checks of a task's URLs ----

export type TargetCheck = (url: URL) => TargetVerdict;

/**
 * 400 target_not_allowed naming every URL field (url, callback_url, failure_callback_url) the
 * policy refuses: tasks and schedule templates are checked alike when they are saved.
 */
export function refuseForbiddenTargets(
  input: { url: string; callback_url?: string; failure_callback_url?: string },
  checkTarget: TargetCheck,
  prefix: (string | number)[] = [],
) {
  const refused: FieldError[] = [];
  for (const field of ['url', 'callback_url', 'failure_callback_url'] as const) {
    const value = input[field];
    const verdict = value ? checkTarget(new URL(value)) : null;
    if (verdict && !verdict.ok) refused.push({ path: [...prefix, field].join('.'), message: verdict.reason });
  }
  if (refused.length) throw problem('target_not_allowed', refused.map((e) => `${e.path}: ${e.message}`).join('; '), refused);
}
