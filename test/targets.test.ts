// Pure target-policy tests (docs/api.md §6). No network traffic: public-looking addresses only ever
// go through the policy functions here.
import { describe, expect, it } from 'vitest';
import { createTargetPolicy, parseAllowlist } from '../shared/targets.ts';

const strict = createTargetPolicy({ allowPrivate: false, allowlist: [] });

// [address, expected reason (substring), or null when allowed]
const addressCases: [string, string | null][] = [
  // IPv4, denied
  ['0.0.0.0', '0.0.0.0 is an unspecified address'],
  ['0.1.2.3', 'unspecified'],
  ['127.0.0.1', '127.0.0.1 is a loopback address'],
  ['127.255.255.254', 'loopback'],
  ['10.1.2.3', '10.1.2.3 is a private address'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['169.254.169.254', '169.254.169.254 is a link-local address'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['100.127.255.255', 'carrier-grade NAT'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['255.255.255.255', 'the broadcast address'],
  ['240.0.0.1', 'reserved'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['192.0.0.8', 'IETF protocol assignment'],
  ['192.88.99.1', '6to4 relay'],
  // IPv4, allowed
  ['93.184.216.34', null],
  ['1.1.1.1', null],
  ['8.8.8.8', null],
  ['11.0.0.1', null],
  ['172.32.0.1', null], // just past 172.16.0.0/12
  ['100.128.0.1', null], // just past 100.64.0.0/10
  ['169.253.255.255', null],
  ['223.255.255.255', null],
  // IPv6, denied
  ['::1', '::1 is a loopback address'],
  ['::', 'unspecified'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456::1', 'unique-local'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['100::1', 'discard'],
  ['fec0::1', 'site-local'],
  ['5f00::1', 'special-purpose'],
  ['4000::1', 'outside the global unicast range'],
  // IPv6 forms that embed IPv4, judged by the embedded address
  ['::ffff:127.0.0.1', 'IPv4-mapped form of 127.0.0.1, a loopback address'],
  ['::ffff:7f00:1', 'IPv4-mapped form of 127.0.0.1'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped form of 169.254.169.254, a link-local'],
  ['::ffff:0:7f00:1', 'IPv4-translated form of 127.0.0.1'],
  ['::7f00:1', 'IPv4-compatible form of 127.0.0.1'],
  ['::10.0.0.1', 'IPv4-compatible form of 10.0.0.1, a private'],
  ['64:ff9b::a00:1', 'NAT64 form of 10.0.0.1, a private address'],
  ['64:ff9b::7f00:1', 'NAT64 form of 127.0.0.1'],
  ['64:ff9b:1::5db8:d822', 'local-use NAT64'],
  ['2002:7f00:1::', '6to4 form of 127.0.0.1'],
  ['2002:a9fe:a9fe::1', '6to4 form of 169.254.169.254'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo form of 127.0.0.1'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo form of 192.0.2.45, a documentation'],
  // IPv6, allowed
  ['2606:4700::1111', null],
  ['2a00:1450:4001:82b::200e', null],
  ['2001:4860:4860::8888', null],
  ['::ffff:93.184.216.34', null],
  ['64:ff9b::5db8:d822', null],
  ['2002:5db8:d822::1', null],
  ['2001:0:4136:e378:8000:63bf:a247:27dd', null], // Teredo, client 93.184.216.34
  // Not canonical IP text: checkAddress only takes what DNS / WHATWG URL produce
  ['0177.0.0.1', 'not an IP address'],
  ['127.1', 'not an IP address'],
  ['2130706433', 'not an IP address'],
  ['localhost', 'not an IP address'],
];

describe('checkAddress (default policy)', () => {
  it.each(addressCases)('%s -> %s', (ip, reason) => {
    const verdict = strict.checkAddress(ip);
    if (reason === null) expect(verdict).toEqual({ ok: true });
    else {
      expect(verdict.ok).toBe(false);
      expect(verdict.ok ? '' : verdict.reason).toContain(reason);
    }
  });

  it('starts reasons with the address', () => {
    expect(strict.checkAddress('127.0.0.1')).toEqual({ ok: false, reason: '127.0.0.1 is a loopback address' });
  });
});

// What WHATWG URL does to odd host spellings before the policy ever sees them.
const urlNormalisation: [string, string][] = [
  ['http://2130706433/', '127.0.0.1'],
  ['http://0x7f.1/', '127.0.0.1'],
  ['http://0177.0.0.1/', '127.0.0.1'],
  ['http://0x7f000001/', '127.0.0.1'],
  ['http://017700000001/', '127.0.0.1'],
  ['http://127.1/', '127.0.0.1'],
  ['http://127.0.0.1./', '127.0.0.1'],
  ['http://\uff11\uff12\uff17.0.0.1/', '127.0.0.1'], // full-width digits
  ['http://0/', '0.0.0.0'],
  ['http://256/', '0.0.1.0'],
  ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
  ['http://[0:0:0:0:0:0:0:1]/', '[::1]'],
  ['http://LOCALHOST./', 'localhost.'],
  ['http://loc%61lhost/', 'localhost'],
];

describe('WHATWG URL host normalisation', () => {
  it.each(urlNormalisation)('%s has hostname %s', (input, hostname) => {
    expect(new URL(input).hostname).toBe(hostname);
  });

  it.each(['http://[fe80::1%25eth0]/', 'http://999.1.1.1/', 'http://4294967296/', 'http://08.0.0.1/'])(
    '%s does not parse at all',
    (input) => expect(() => new URL(input)).toThrow(),
  );
});

// [url, expected reason (substring), or null when it passes enqueue]
const urlCases: [string, string | null][] = [
  ['http://127.0.0.1/', 'loopback'],
  ['http://2130706433/', 'loopback'],
  ['http://0x7f.1/', 'loopback'],
  ['http://0177.0.0.1/', 'loopback'],
  ['http://0x7f000001/', 'loopback'],
  ['http://127.1/', 'loopback'],
  ['http://127.0.0.1./', 'loopback'],
  ['http://\uff11\uff12\uff17.0.0.1/', 'loopback'],
  ['http://0/', 'unspecified'],
  ['http://0xffffffff/', 'broadcast'],
  ['http://[::1]:8080/', 'loopback'],
  ['http://[::]/', 'unspecified'],
  ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped form of 127.0.0.1'],
  ['http://[::ffff:7f00:1]/', 'IPv4-mapped form of 127.0.0.1'],
  ['http://[::127.0.0.1]/', 'IPv4-compatible form of 127.0.0.1'],
  ['http://[64:ff9b::a00:1]/', 'NAT64 form of 10.0.0.1'],
  ['http://[2002:7f00:1::]/', '6to4 form of 127.0.0.1'],
  ['http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/', 'Teredo form of 127.0.0.1'],
  ['http://[fe80::1]/', 'link-local'],
  ['http://169.254.169.254/latest/meta-data/', 'link-local'],
  ['https://10.0.0.1:8443/hook', 'private'],
  ['http://localhost/', 'localhost is a localhost name'],
  ['http://localhost:3000/x', 'localhost name'],
  ['http://LOCALHOST./', 'localhost name'],
  ['http://foo.localhost/', 'localhost name'],
  ['http://a.b.LocalHost/', 'localhost name'],
  ['http://loc%61lhost/', 'localhost name'],
  ['ftp://example.com/', 'ftp: URLs are not supported'],
  ['foo://0x7f.1/', 'not supported'],
  // passes enqueue
  ['http://example.com/', null],
  ['https://example.com./path?q=1', null],
  ['https://93.184.216.34/', null],
  ['http://[2606:4700::1111]/', null],
  ['http://metadata.google.internal/', null], // a name: resolved and checked at delivery
  ['http://127.0.0.1.nip.io/', null], // likewise
  ['http://localhost.example.com/', null],
  ['http://mylocalhost/', null],
];

describe('checkUrl (default policy)', () => {
  it.each(urlCases)('%s -> %s', (input, reason) => {
    const verdict = strict.checkUrl(new URL(input));
    if (reason === null) expect(verdict).toEqual({ ok: true });
    else {
      expect(verdict.ok).toBe(false);
      expect(verdict.ok ? '' : verdict.reason).toContain(reason);
    }
  });
});

describe('allowlist', () => {
  it('a CIDR allows addresses inside it, including their IPv4-mapped form', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['10.0.0.0/8'] });
    expect(p.checkAddress('10.1.2.3').ok).toBe(true);
    expect(p.checkAddress('::ffff:10.1.2.3').ok).toBe(true);
    expect(p.checkUrl(new URL('http://10.2.3.4:9000/')).ok).toBe(true);
    expect(p.checkAddress('192.168.1.1').ok).toBe(false);
    expect(p.checkAddress('127.0.0.1').ok).toBe(false);
  });

  it('an IPv6 CIDR', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['fd00::/8'] });
    expect(p.checkAddress('fd12::1').ok).toBe(true);
    expect(p.checkUrl(new URL('http://[fd00::5]/')).ok).toBe(true);
    expect(p.checkAddress('fc00::1').ok).toBe(false);
    expect(p.checkAddress('10.0.0.1').ok).toBe(false);
  });

  it('a single IP is exactly that address', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['127.0.0.1', '::1'] });
    expect(p.checkAddress('127.0.0.1').ok).toBe(true);
    expect(p.checkAddress('::1').ok).toBe(true);
    expect(p.checkAddress('127.0.0.2').ok).toBe(false);
  });

  it('a host name matches case-insensitively, trailing dot ignored, not its subdomains', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['Internal.Example.'] });
    expect(p.isAllowlistedHost('internal.example')).toBe(true);
    expect(p.isAllowlistedHost('INTERNAL.example.')).toBe(true);
    expect(p.isAllowlistedHost('x.internal.example')).toBe(false);
    expect(p.checkUrl(new URL('http://internal.example/')).ok).toBe(true);
    // a name on the list says nothing about addresses
    expect(p.checkAddress('10.0.0.1').ok).toBe(false);
  });

  it('a *.suffix wildcard matches subdomains only', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['*.corp.example'] });
    expect(p.isAllowlistedHost('a.corp.example')).toBe(true);
    expect(p.isAllowlistedHost('a.b.corp.example.')).toBe(true);
    expect(p.isAllowlistedHost('corp.example')).toBe(false);
    expect(p.isAllowlistedHost('evilcorp.example')).toBe(false);
  });

  it('an operator may allowlist localhost by name', () => {
    const p = createTargetPolicy({ allowPrivate: false, allowlist: ['localhost'] });
    expect(p.checkUrl(new URL('http://localhost:3000/')).ok).toBe(true);
    expect(p.checkUrl(new URL('http://foo.localhost/')).ok).toBe(false);
  });

  it('createTargetPolicy rejects a bad entry', () => {
    expect(() => createTargetPolicy({ allowPrivate: false, allowlist: ['10.0.0.0/40'] })).toThrow('10.0.0.0/40');
  });
});

describe('allowPrivate', () => {
  const open = createTargetPolicy({ allowPrivate: true, allowlist: [] });

  it.each(['127.0.0.1', '10.0.0.1', '169.254.169.254', '::1', 'fe80::1', '::ffff:127.0.0.1', '93.184.216.34'])('allows address %s', (ip) =>
    expect(open.checkAddress(ip)).toEqual({ ok: true }),
  );

  it.each(['http://localhost/', 'http://foo.localhost/', 'http://127.1/', 'http://[::1]/', 'http://example.com/'])('allows URL %s', (url) =>
    expect(open.checkUrl(new URL(url))).toEqual({ ok: true }),
  );

  it('still refuses schemes other than http(s), and says it allows private', () => {
    expect(open.checkUrl(new URL('file:///etc/passwd')).ok).toBe(false);
    expect(open.allowsPrivate).toBe(true);
    expect(strict.allowsPrivate).toBe(false);
  });
});

describe('parseAllowlist', () => {
  it('splits on commas, trims, drops blanks and normalises', () => {
    expect(parseAllowlist('')).toEqual([]);
    expect(parseAllowlist(' 10.0.0.0/8 , Internal.Example. ,, *.Corp.example , FD00::/8,::1 ')).toEqual([
      '10.0.0.0/8',
      'internal.example',
      '*.corp.example',
      'fd00::/8',
      '::1',
    ]);
  });

  it('reads ::a.b.c.d as IPv4-compatible (like Node and WHATWG URL), not IPv4-mapped', () => {
    expect(parseAllowlist('::10.0.0.1, ::ffff:10.0.0.1/128')).toEqual(['::a00:1', '::ffff:a00:1/128']);
  });

  it.each([
    '10.0.0.0/33',
    'fd00::/129',
    '10.0.0.0/8/8',
    '10.0.0/8',
    '10.0.0.0/',
    '/8',
    '10.0.0.0/x',
    'http://x.example',
    'x.example:8080',
    '127.1',
    '0x7f.1',
    '2130706433',
    'bad_host!',
    '*',
    '*.',
    'a.*.example',
    'fe80::1%eth0',
    '-bad.example',
    'exa mple.com',
    'ex..ample',
    'bücher.example',
  ])('rejects %s, naming it', (entry) => {
    expect(() => parseAllowlist(`10.0.0.0/8,${entry}`)).toThrow(`"${entry}"`);
  });
});
