import { describe, expect, it, vi } from 'vitest';
import {
  type AccessClient,
  type AccessRules,
  createAccessControl,
  doubleReverseLookup,
  type ReverseLookupOptions,
} from '../../src/access.js';

const none: AccessRules = { allow: [], deny: [], cidr_allow: [], cidr_deny: [] };
const rules = (r: Partial<AccessRules>): AccessRules => ({ ...none, ...r });

/** The allow/deny lines of Net::Server's documented sample test.conf. */
const testConf = rules({
  allow: ['.+\\.(net|com)', 'domain\\.com'],
  deny: ['a.+'],
  cidr_allow: ['127.0.0.0/8', '192.0.2.0/24'],
  cidr_deny: ['192.0.2.4/30'],
});

type Row = [name: string, rules: AccessRules, client: AccessClient, allowed: boolean, reason: string];

// Every `allowed` below was checked against Net::Server's own allow_deny (Net::Server 2.x with
// Net::CIDR), run with the same rules and client.
const table: Row[] = [
  // No rules, unix sockets
  ['no rules serves everyone', none, { peeraddr: '10.0.0.1' }, true, 'no allow/deny rules'],
  [
    'unix clients skip the rules',
    rules({ deny: ['.*'] }),
    { peeraddr: '', proto: 'unix' },
    true,
    'unix socket clients are not subject to allow/deny',
  ],
  [
    'an empty peeraddr is a unix client',
    rules({ deny: ['.*'] }),
    { peeraddr: '' },
    true,
    'unix socket clients are not subject to allow/deny',
  ],

  // deny and cidr_deny alone: once any rule is set, a client must match an allow rule
  ['deny .* refuses', rules({ deny: ['.*'] }), { peeraddr: '10.0.0.1' }, false, 'deny .* matches 10.0.0.1'],
  [
    'deny-only refuses a non-matching client too',
    rules({ deny: ['10\\..*'] }),
    { peeraddr: '192.168.1.1' },
    false,
    'no allow or cidr_allow rule matches 192.168.1.1',
  ],
  [
    'cidr_deny-only refuses a non-matching client too',
    rules({ cidr_deny: ['10.0.0.0/8'] }),
    { peeraddr: '192.168.1.1' },
    false,
    'no allow or cidr_allow rule matches 192.168.1.1',
  ],
  [
    'cidr_deny refuses',
    rules({ cidr_deny: ['10.0.0.0/8'] }),
    { peeraddr: '10.1.2.3' },
    false,
    'cidr_deny 10.0.0.0/8 contains 10.1.2.3',
  ],

  // Anchoring: /^$rule$/, with Perl's ungrouped alternation
  [
    'allow matches the whole address',
    rules({ allow: ['10\\.0\\.0\\.1'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'allow 10\\.0\\.0\\.1 matches 10.0.0.1',
  ],
  [
    'allow is anchored at the end',
    rules({ allow: ['10\\.0\\.0\\.1'] }),
    { peeraddr: '10.0.0.10' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.10',
  ],
  [
    'allow is anchored at the start',
    rules({ allow: ['10\\.0\\.0\\.1'] }),
    { peeraddr: '110.0.0.1' },
    false,
    'no allow or cidr_allow rule matches 110.0.0.1',
  ],
  [
    'a prefix rule does not match',
    rules({ allow: ['10.0'] }),
    { peeraddr: '10.0.0.1' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1',
  ],
  [
    'x|1 is ^x or 1$, as in Perl',
    rules({ allow: ['x|1'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'allow x|1 matches 10.0.0.1',
  ],
  [
    '10|x is ^10 or x$, as in Perl',
    rules({ allow: ['10|x'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'allow 10|x matches 10.0.0.1',
  ],
  [
    'a grouped alternation is anchored',
    rules({ allow: ['(x|1)'] }),
    { peeraddr: '10.0.0.1' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1',
  ],
  [
    'character classes work',
    rules({ allow: ['\\d+\\.\\d+\\.\\d+\\.\\d+'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'allow \\d+\\.\\d+\\.\\d+\\.\\d+ matches 10.0.0.1',
  ],

  // peerhost
  [
    'allow matches peerhost',
    rules({ allow: ['.+\\.com'] }),
    { peeraddr: '10.0.0.1', peerhost: 'www.example.com' },
    true,
    'allow .+\\.com matches peerhost www.example.com',
  ],
  [
    'regexes are case-sensitive',
    rules({ allow: ['.+\\.com'] }),
    { peeraddr: '10.0.0.1', peerhost: 'WWW.EXAMPLE.COM' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1 (WWW.EXAMPLE.COM)',
  ],
  [
    'deny on peerhost wins over allow .*',
    rules({ allow: ['.*'], deny: ['evil\\..*'] }),
    { peeraddr: '10.0.0.1', peerhost: 'evil.example' },
    false,
    'deny evil\\..* matches peerhost evil.example',
  ],
  [
    'the address still matches when peerhost does not',
    rules({ allow: ['10\\.0\\.0\\.1'] }),
    { peeraddr: '10.0.0.1', peerhost: 'other.example' },
    true,
    'allow 10\\.0\\.0\\.1 matches 10.0.0.1',
  ],
  [
    'a rule never sees an unset peerhost',
    rules({ allow: ['undefined'] }),
    { peeraddr: '10.0.0.1', peerhost: undefined },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1',
  ],
  [
    'a peeraddr that is no address matches regexes',
    rules({ allow: ['localhost'] }),
    { peeraddr: 'localhost' },
    true,
    'allow localhost matches localhost',
  ],
  [
    'a peeraddr that is no address matches no CIDR block',
    rules({ cidr_allow: ['127.0.0.0/8'] }),
    { peeraddr: 'localhost' },
    false,
    'no allow or cidr_allow rule matches localhost',
  ],

  // Order: deny, cidr_deny, allow, cidr_allow
  [
    'deny beats allow',
    rules({ allow: ['10\\.0\\.0\\.1'], deny: ['10\\..*'] }),
    { peeraddr: '10.0.0.1' },
    false,
    'deny 10\\..* matches 10.0.0.1',
  ],
  [
    'cidr_deny beats allow',
    rules({ allow: ['.*'], cidr_deny: ['10.0.0.0/8'] }),
    { peeraddr: '10.0.0.1' },
    false,
    'cidr_deny 10.0.0.0/8 contains 10.0.0.1',
  ],
  [
    'deny beats cidr_allow',
    rules({ cidr_allow: ['10.0.0.0/8'], deny: ['10\\.0\\.0\\.2'] }),
    { peeraddr: '10.0.0.2' },
    false,
    'deny 10\\.0\\.0\\.2 matches 10.0.0.2',
  ],
  [
    'cidr_allow serves what deny misses',
    rules({ cidr_allow: ['10.0.0.0/8'], deny: ['10\\.0\\.0\\.2'] }),
    { peeraddr: '10.0.0.3' },
    true,
    'cidr_allow 10.0.0.0/8 contains 10.0.0.3',
  ],
  [
    'the first matching cidr_allow is named',
    rules({ cidr_allow: ['10.0.0.0/8', '192.168.0.0/16'] }),
    { peeraddr: '192.168.4.4' },
    true,
    'cidr_allow 192.168.0.0/16 contains 192.168.4.4',
  ],
  [
    'a bare address is a block of one',
    rules({ cidr_allow: ['10.0.0.1'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'cidr_allow 10.0.0.1 contains 10.0.0.1',
  ],

  // IPv6
  [
    'IPv6 block',
    rules({ cidr_allow: ['2001:db8::/32'] }),
    { peeraddr: '2001:db8::1' },
    true,
    'cidr_allow 2001:db8::/32 contains 2001:db8::1',
  ],
  [
    'outside an IPv6 block',
    rules({ cidr_allow: ['2001:db8::/32'] }),
    { peeraddr: '2001:db9::1' },
    false,
    'no allow or cidr_allow rule matches 2001:db9::1',
  ],
  [
    '::1/128',
    rules({ cidr_allow: ['::1/128'] }),
    { peeraddr: '::1' },
    true,
    'cidr_allow ::1/128 contains ::1',
  ],
  [
    '::1 is not in 127.0.0.0/8',
    rules({ cidr_allow: ['127.0.0.0/8'] }),
    { peeraddr: '::1' },
    false,
    'no allow or cidr_allow rule matches ::1',
  ],
  [
    '::1 is not in 0.0.0.0/0',
    rules({ cidr_allow: ['0.0.0.0/0'] }),
    { peeraddr: '::1' },
    false,
    'no allow or cidr_allow rule matches ::1',
  ],
  [
    'IPv4 is in ::/0, as Net::CIDR has it',
    rules({ cidr_allow: ['::/0'] }),
    { peeraddr: '10.0.0.1' },
    true,
    'cidr_allow ::/0 contains 10.0.0.1',
  ],
  [
    'IPv4 is in its mapped IPv6 block',
    rules({ cidr_allow: ['::ffff:127.0.0.0/104'] }),
    { peeraddr: '127.0.0.1' },
    true,
    'cidr_allow ::ffff:127.0.0.0/104 contains 127.0.0.1',
  ],
  [
    'IPv6 regex',
    rules({ allow: ['2001:db8::.*'] }),
    { peeraddr: '2001:db8::5' },
    true,
    'allow 2001:db8::.* matches 2001:db8::5',
  ],
  [
    'IPv6 regexes are case-sensitive too',
    rules({ allow: ['2001:DB8::.*'] }),
    { peeraddr: '2001:db8::5' },
    false,
    'no allow or cidr_allow rule matches 2001:db8::5',
  ],

  // IPv4-mapped IPv6 clients are checked as IPv4
  [
    'mapped client in an IPv4 block',
    rules({ cidr_allow: ['127.0.0.0/8'] }),
    { peeraddr: '::ffff:127.0.0.1' },
    true,
    'cidr_allow 127.0.0.0/8 contains 127.0.0.1',
  ],
  [
    'mapped client refused by an IPv4 block',
    rules({ allow: ['.*'], cidr_deny: ['127.0.0.0/8'] }),
    { peeraddr: '::ffff:127.0.0.1' },
    false,
    'cidr_deny 127.0.0.0/8 contains 127.0.0.1',
  ],
  [
    'mapped client refused by an IPv4 regex',
    rules({ allow: ['.*'], deny: ['127\\..*'] }),
    { peeraddr: '::ffff:127.0.0.1' },
    false,
    'deny 127\\..* matches 127.0.0.1',
  ],
  [
    'a ::ffff: regex never sees the mapped form',
    rules({ allow: ['.*'], deny: ['::ffff:.*'] }),
    { peeraddr: '::ffff:127.0.0.1' },
    true,
    'allow .* matches 127.0.0.1',
  ],
  [
    'upper-case ::FFFF: is unmapped too',
    rules({ allow: ['.*'], deny: ['127\\..*'] }),
    { peeraddr: '::FFFF:127.0.0.1' },
    false,
    'deny 127\\..* matches 127.0.0.1',
  ],

  // Net::Server's sample test.conf
  [
    'test.conf: loopback',
    testConf,
    { peeraddr: '127.0.0.1' },
    true,
    'cidr_allow 127.0.0.0/8 contains 127.0.0.1',
  ],
  [
    'test.conf: mapped loopback',
    testConf,
    { peeraddr: '::ffff:127.0.0.1' },
    true,
    'cidr_allow 127.0.0.0/8 contains 127.0.0.1',
  ],
  [
    'test.conf: 192.0.2.3',
    testConf,
    { peeraddr: '192.0.2.3' },
    true,
    'cidr_allow 192.0.2.0/24 contains 192.0.2.3',
  ],
  [
    'test.conf: 192.0.2.4',
    testConf,
    { peeraddr: '192.0.2.4' },
    false,
    'cidr_deny 192.0.2.4/30 contains 192.0.2.4',
  ],
  [
    'test.conf: 192.0.2.7',
    testConf,
    { peeraddr: '192.0.2.7' },
    false,
    'cidr_deny 192.0.2.4/30 contains 192.0.2.7',
  ],
  [
    'test.conf: 192.0.2.8',
    testConf,
    { peeraddr: '192.0.2.8' },
    true,
    'cidr_allow 192.0.2.0/24 contains 192.0.2.8',
  ],
  [
    'test.conf: cidr_deny beats an allowed host name',
    testConf,
    { peeraddr: '192.0.2.5', peerhost: 'www.example.com' },
    false,
    'cidr_deny 192.0.2.4/30 contains 192.0.2.5',
  ],
  [
    'test.conf: unknown address',
    testConf,
    { peeraddr: '10.0.0.1' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1',
  ],
  ['test.conf: ::1', testConf, { peeraddr: '::1' }, false, 'no allow or cidr_allow rule matches ::1'],
  [
    'test.conf: .com host',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'www.example.com' },
    true,
    'allow .+\\.(net|com) matches peerhost www.example.com',
  ],
  [
    'test.conf: .net host over IPv6',
    testConf,
    { peeraddr: '2001:db8::1', peerhost: 'www.example.net' },
    true,
    'allow .+\\.(net|com) matches peerhost www.example.net',
  ],
  [
    'test.conf: .org host',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'www.example.org' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1 (www.example.org)',
  ],
  [
    'test.conf: a host starting with a is denied',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'api.example.com' },
    false,
    'deny a.+ matches peerhost api.example.com',
  ],
  [
    'test.conf: deny on host beats cidr_allow on address',
    testConf,
    { peeraddr: '127.0.0.1', peerhost: 'a.example.net' },
    false,
    'deny a.+ matches peerhost a.example.net',
  ],
  [
    'test.conf: domain.com',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'domain.com' },
    true,
    'allow .+\\.(net|com) matches peerhost domain.com',
  ],
  [
    'test.conf: domain.community is not domain.com',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'domain.community' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1 (domain.community)',
  ],
  [
    'test.conf: a .com inside a name does not count',
    testConf,
    { peeraddr: '10.0.0.1', peerhost: 'ns.domain.com.evil.org' },
    false,
    'no allow or cidr_allow rule matches 10.0.0.1 (ns.domain.com.evil.org)',
  ],
];

describe('createAccessControl', () => {
  it.each(table)('%s', (_name, r, client, allowed, reason) => {
    expect(createAccessControl(r).check(client)).toEqual({ allowed, reason });
  });

  it('tells whether any rule is set', () => {
    expect(createAccessControl(none).hasRules).toBe(false);
    for (const key of ['allow', 'deny', 'cidr_allow', 'cidr_deny'] as const) {
      const value = key.startsWith('cidr') ? '10.0.0.0/8' : 'x';
      expect(createAccessControl(rules({ [key]: [value] })).hasRules).toBe(true);
    }
  });

  it('warns when deny rules come without any allow rule', () => {
    expect(createAccessControl(rules({ deny: ['x'] })).warnings).toEqual([
      'deny/cidr_deny without any allow/cidr_allow refuses every client (as in Net::Server); add allow .* to serve the rest',
    ]);
    expect(createAccessControl(rules({ cidr_deny: ['10.0.0.0/8'] })).warnings).toHaveLength(1);
    expect(createAccessControl(rules({ deny: ['x'], cidr_allow: ['10.0.0.0/8'] })).warnings).toEqual([]);
    expect(createAccessControl(none).warnings).toEqual([]);
  });

  it('throws on a rule the option schema would have rejected', () => {
    expect(() => createAccessControl(rules({ allow: ['('] }))).toThrow(SyntaxError);
    expect(() => createAccessControl(rules({ cidr_deny: ['10.0.0/8'] }))).toThrow(TypeError);
  });
});

/** Resolvers answering from tables, the way dns.promises.lookupService and lookup do. */
function resolvers(
  ptr: Record<string, string>,
  a: Record<string, string[]>,
): Required<Omit<ReverseLookupOptions, 'timeoutMs' | 'verify'>> {
  return {
    lookupService: vi.fn(async (address: string) => {
      const hostname = ptr[address];
      if (hostname === undefined)
        throw Object.assign(new Error('getnameinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      return { hostname, service: '0' };
    }),
    lookup: vi.fn(async (hostname: string) => {
      const addrs = a[hostname];
      if (addrs === undefined)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    }),
  };
}

describe('doubleReverseLookup', () => {
  it('verifies a name that resolves back to the address', async () => {
    const r = resolvers({ '192.0.2.1': 'host.example' }, { 'host.example': ['192.0.2.9', '192.0.2.1'] });
    expect(await doubleReverseLookup('192.0.2.1', r)).toEqual({
      peerhost: 'host.example',
      verified: true,
      addrs: ['192.0.2.9', '192.0.2.1'],
      reason: 'verified',
    });
    expect(r.lookupService).toHaveBeenCalledWith('192.0.2.1', 0);
    expect(r.lookup).toHaveBeenCalledWith('host.example', { all: true });
  });

  it('looks up and matches a mapped IPv4 client as IPv4', async () => {
    const r = resolvers({ '127.0.0.1': 'localhost' }, { localhost: ['127.0.0.1'] });
    const result = await doubleReverseLookup('::ffff:127.0.0.1', r);
    expect(result).toMatchObject({ peerhost: 'localhost', verified: true });
    expect(r.lookupService).toHaveBeenCalledWith('127.0.0.1', 0);
  });

  it('compares IPv6 addresses whatever their spelling', async () => {
    const r = resolvers({ '2001:db8::1': 'v6.example' }, { 'v6.example': ['2001:DB8:0:0:0:0:0:1'] });
    expect(await doubleReverseLookup('2001:db8::1', r)).toMatchObject({ verified: true, reason: 'verified' });
  });

  it('does not verify a name that resolves elsewhere', async () => {
    const r = resolvers({ '192.0.2.1': 'liar.example' }, { 'liar.example': ['198.51.100.7'] });
    expect(await doubleReverseLookup('192.0.2.1', r)).toEqual({
      peerhost: 'liar.example',
      verified: false,
      addrs: ['198.51.100.7'],
      reason: 'liar.example resolves to 198.51.100.7, not 192.0.2.1',
    });
  });

  it('reports an address without a name', async () => {
    const r = resolvers({}, {});
    expect(await doubleReverseLookup('192.0.2.1', r)).toEqual({
      verified: false,
      addrs: [],
      reason: 'reverse lookup of 192.0.2.1 failed: ENOTFOUND',
    });
    expect(r.lookup).not.toHaveBeenCalled();
  });

  it('keeps the name when the forward lookup fails', async () => {
    const r = resolvers({ '192.0.2.1': 'gone.example' }, {});
    expect(await doubleReverseLookup('192.0.2.1', r)).toEqual({
      peerhost: 'gone.example',
      verified: false,
      addrs: [],
      reason: 'forward lookup of gone.example failed: ENOTFOUND',
    });
  });

  it('treats an empty name as none', async () => {
    const r = resolvers({ '192.0.2.1': '' }, {});
    expect(await doubleReverseLookup('192.0.2.1', r)).toEqual({
      verified: false,
      addrs: [],
      reason: '192.0.2.1 has no host name',
    });
  });

  it('stops after the reverse lookup when verify is false', async () => {
    const r = resolvers({ '192.0.2.1': 'host.example' }, { 'host.example': ['192.0.2.1'] });
    expect(await doubleReverseLookup('192.0.2.1', { ...r, verify: false })).toEqual({
      peerhost: 'host.example',
      verified: false,
      addrs: [],
      reason: 'not verified: verify is false',
    });
    expect(r.lookup).not.toHaveBeenCalled();
  });

  it('gives up on a reverse lookup that never answers', async () => {
    const started = Date.now();
    const result = await doubleReverseLookup('192.0.2.1', {
      timeoutMs: 30,
      lookupService: () => new Promise(() => {}),
    });
    expect(result).toEqual({
      verified: false,
      addrs: [],
      reason: 'lookups of 192.0.2.1 timed out after 30 ms',
    });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('gives up on a slow forward lookup, keeping the name', async () => {
    const result = await doubleReverseLookup('192.0.2.1', {
      timeoutMs: 30,
      lookupService: async () => ({ hostname: 'slow.example' }),
      lookup: () => new Promise(() => {}),
    });
    expect(result).toEqual({
      peerhost: 'slow.example',
      verified: false,
      addrs: [],
      reason: 'lookups of 192.0.2.1 timed out after 30 ms',
    });
  });

  it('never throws, even when a resolver throws synchronously', async () => {
    const result = await doubleReverseLookup('192.0.2.1', {
      lookupService: () => {
        throw new TypeError('boom');
      },
    });
    expect(result).toEqual({
      verified: false,
      addrs: [],
      reason: 'reverse lookup of 192.0.2.1 failed: boom',
    });
  });

  it('settles with the real resolvers', async () => {
    const result = await doubleReverseLookup('127.0.0.1', { timeoutMs: 3000 });
    expect(typeof result.verified).toBe('boolean');
    expect(result.reason).not.toBe('');
  });
});
