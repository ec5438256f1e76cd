/**
 * access — Net::Server's allow_deny: which clients a server serves, by address and host name.
 *
 * The rules are the options `allow`, `deny` (regular expressions) and `cidr_allow`, `cidr_deny`
 * (CIDR blocks), checked in Net::Server's order: deny, cidr_deny, allow, cidr_allow. Once any rule
 * is set, a client must match an allow rule to be served, even when the only rules are denies.
 * `doubleReverseLookup` finds the host name the regexes also match (reverse_lookups) and checks
 * that it resolves back to the client (double_reverse_lookups).
 */
import { promises as dns } from 'node:dns';
import { BlockList, isIP, SocketAddress } from 'node:net';

/** AccessRules are the four rule lists, under their option names; each is checked in order. */
export interface AccessRules {
  allow: readonly string[];
  deny: readonly string[];
  cidr_allow: readonly string[];
  cidr_deny: readonly string[];
}

/** AccessClient is what allow_deny looks at: the address, and the host name once looked up. */
export interface AccessClient {
  /** The client's address as the socket reports it; `::ffff:`-mapped IPv4 is checked as IPv4. */
  peeraddr: string;
  /** The host name reverse_lookups found; regexes are matched against it too when it is set. */
  peerhost?: string | undefined;
  /** `'unix'` for a unix-socket client, which no rule applies to. */
  proto?: string | undefined;
}

/** AccessVerdict is the decision and, for the log, the rule (or the lack of one) that made it. */
export interface AccessVerdict {
  allowed: boolean;
  reason: string;
}

/** AccessControl checks clients against one set of rules. */
export interface AccessControl {
  /** check decides whether `client` is served, as Net::Server's allow_deny. */
  check(client: AccessClient): AccessVerdict;
  /** hasRules is false when no rule is set and every client is served. */
  readonly hasRules: boolean;
  /**
   * warnings name rule sets that probably do not do what was meant, for the server to log at
   * start-up: deny rules without any allow rule refuse every client, as in Net::Server.
   */
  readonly warnings: readonly string[];
}

interface RegexRule {
  kind: 'allow' | 'deny';
  source: string;
  regex: RegExp;
}

interface CidrRule {
  kind: 'cidr_allow' | 'cidr_deny';
  source: string;
  list: BlockList;
}

/**
 * createAccessControl compiles the rules once. Regexes are anchored exactly as Net::Server's
 * `/^$_$/` anchors them: the rule is pasted between `^` and `$` without a group, so `a|b` means
 * `^a` or `b$`, as it does in Perl. A rule that is not a valid regex or CIDR block throws; the
 * option schema has already rejected those.
 */
export function createAccessControl(rules: AccessRules): AccessControl {
  const deny = rules.deny.map((source) => regexRule('deny', source));
  const cidrDeny = rules.cidr_deny.map((source) => cidrRule('cidr_deny', source));
  const allow = rules.allow.map((source) => regexRule('allow', source));
  const cidrAllow = rules.cidr_allow.map((source) => cidrRule('cidr_allow', source));
  const hasRules = deny.length + cidrDeny.length + allow.length + cidrAllow.length > 0;
  const warnings =
    hasRules && allow.length + cidrAllow.length === 0
      ? [
          'deny/cidr_deny without any allow/cidr_allow refuses every client (as in Net::Server); add allow .* to serve the rest',
        ]
      : [];

  return {
    hasRules,
    warnings,
    check(client) {
      if (client.proto === 'unix' || client.peeraddr === '') {
        return { allowed: true, reason: 'unix socket clients are not subject to allow/deny' };
      }
      if (!hasRules) return { allowed: true, reason: 'no allow/deny rules' };
      const addr = unmapIPv4(client.peeraddr);
      const host = client.peerhost;

      for (const rule of deny) {
        const hit = matchRegex(rule, addr, host);
        if (hit !== undefined) return { allowed: false, reason: hit };
      }
      for (const rule of cidrDeny) {
        const hit = matchCidr(rule, addr);
        if (hit !== undefined) return { allowed: false, reason: hit };
      }
      for (const rule of allow) {
        const hit = matchRegex(rule, addr, host);
        if (hit !== undefined) return { allowed: true, reason: hit };
      }
      for (const rule of cidrAllow) {
        const hit = matchCidr(rule, addr);
        if (hit !== undefined) return { allowed: true, reason: hit };
      }
      return { allowed: false, reason: `no allow or cidr_allow rule matches ${describe(addr, host)}` };
    },
  };
}

/**
 * unmapIPv4 shows an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, an IPv4 client of a dual-stack
 * socket) as plain IPv4. Perl's pattern is case-sensitive; this one is not, since `::FFFF:` names the
 * same address. It runs for every accepted connection, so the common case returns at the first test.
 */
export function unmapIPv4(address: string): string {
  if (address.charCodeAt(0) !== 0x3a /* : */) return address;
  const m = /^::ffff:(\d+(?:\.\d+){3})$/i.exec(address);
  return m ? m[1]! : address;
}

function regexRule(kind: RegexRule['kind'], source: string): RegexRule {
  return { kind, source, regex: new RegExp(`^${source}$`) };
}

function cidrRule(kind: CidrRule['kind'], source: string): CidrRule {
  const text = source.trim();
  const slash = text.indexOf('/');
  const net = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(net);
  if (family === 0)
    throw new TypeError(`${kind}: expected a CIDR block such as 127.0.0.0/8, got ${JSON.stringify(source)}`);
  // A bare address is a block of one, as the option schema allows.
  const prefix = slash === -1 ? (family === 4 ? 32 : 128) : Number(text.slice(slash + 1));
  const list = new BlockList();
  list.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return { kind, source, list };
}

/** The peerhost is tried first, then the address, per rule, in Net::Server's order. */
function matchRegex(rule: RegexRule, addr: string, host: string | undefined): string | undefined {
  if (host !== undefined && rule.regex.test(host))
    return `${rule.kind} ${rule.source} matches peerhost ${host}`;
  if (rule.regex.test(addr)) return `${rule.kind} ${rule.source} matches ${addr}`;
  return undefined;
}

/**
 * BlockList, like Net::CIDR, treats IPv4 and its `::ffff:` form as one address, so an IPv4 client
 * matches `::ffff:127.0.0.0/104` and an IPv6 block never matches IPv4 otherwise.
 */
function matchCidr(rule: CidrRule, addr: string): string | undefined {
  const family = isIP(addr);
  // Net::CIDR dies on an address that is not one; here such a client simply matches no block.
  if (family === 0) return undefined;
  return rule.list.check(addr, family === 4 ? 'ipv4' : 'ipv6')
    ? `${rule.kind} ${rule.source} contains ${addr}`
    : undefined;
}

function describe(addr: string, host: string | undefined): string {
  return host === undefined ? addr : `${addr} (${host})`;
}

/** ReverseLookupResult is what reverse and double-reverse lookups learnt about one address. */
export interface ReverseLookupResult {
  /** The host name the address resolves to, when it has one. */
  peerhost?: string;
  /** True when `peerhost` resolves back to the address (Net::Server's double_reverse_lookup). */
  verified: boolean;
  /** The addresses `peerhost` resolves to (Net::Server's peerhost_rev). */
  addrs: string[];
  /** Why the lookup did not verify, or `'verified'`, for the log. */
  reason: string;
}

/** ReverseLookupOptions are the resolvers and the time limit of {@link doubleReverseLookup}. */
export interface ReverseLookupOptions {
  /** Longest the two lookups may take together before the result is "not verified". Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Reverse lookup, with the signature of `dns.promises.lookupService`, which it defaults to: it calls
   * getnameinfo(3), so /etc/hosts counts, as for Perl's peerhostname.
   */
  lookupService?: (address: string, port: number) => Promise<{ hostname: string }>;
  /**
   * Forward lookup, with the signature of `dns.promises.lookup`, which it defaults to: getaddrinfo(3)
   * for IPv4 and IPv6, as Net::Server::Proto's get_addr_info.
   */
  lookup?: (hostname: string, options: { all: true }) => Promise<readonly { address: string }[]>;
  /** False stops after the reverse lookup (reverse_lookups without double). Default true. */
  verify?: boolean;
}

/**
 * doubleReverseLookup finds the host name of `addr` and checks that the name resolves back to it
 * (either as given or, for `::ffff:`-mapped IPv4, as plain IPv4). It never throws and never takes
 * longer than `timeoutMs`: a failed or slow lookup is an unverified result with its reason. Both
 * default resolvers run on libuv's thread pool, so the timeout bounds the wait, not the lookup.
 */
export async function doubleReverseLookup(
  addr: string,
  opts: ReverseLookupOptions = {},
): Promise<ReverseLookupResult> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const lookupService = opts.lookupService ?? dns.lookupService;
  const lookup = opts.lookup ?? ((host: string, o: { all: true }) => dns.lookup(host, o));
  const plain = unmapIPv4(addr);
  const state: ReverseLookupResult = { verified: false, addrs: [], reason: '' };

  const work = async (): Promise<ReverseLookupResult> => {
    let host: string;
    try {
      host = (await lookupService(plain, 0)).hostname;
    } catch (err) {
      return { ...state, reason: `reverse lookup of ${plain} failed: ${errorText(err)}` };
    }
    if (!host) return { ...state, reason: `${plain} has no host name` };
    state.peerhost = host;
    if (opts.verify === false) return { ...state, reason: 'not verified: verify is false' };
    let addrs: string[];
    try {
      addrs = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (err) {
      return { ...state, reason: `forward lookup of ${host} failed: ${errorText(err)}` };
    }
    state.addrs = addrs;
    const canonical = new Set(addrs.map(canonicalAddress));
    if (canonical.has(canonicalAddress(plain)) || canonical.has(canonicalAddress(addr))) {
      return { ...state, verified: true, reason: 'verified' };
    }
    return { ...state, reason: `${host} resolves to ${addrs.join(' ') || 'nothing'}, not ${plain}` };
  };

  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReverseLookupResult>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({ ...state, verified: false, reason: `lookups of ${plain} timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    // A lookup still pending must not keep a closing process alive.
    timer.unref();
  });
  try {
    return await Promise.race([work().catch((err) => ({ ...state, reason: errorText(err) })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** IPv6 text has many spellings (case, zero compression); compare the form Node prints. */
function canonicalAddress(addr: string): string {
  const plain = unmapIPv4(addr);
  if (isIP(plain) !== 6) return plain;
  return new SocketAddress({ address: plain, family: 'ipv6' }).address;
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? (e instanceof Error ? e.message : String(err));
}
