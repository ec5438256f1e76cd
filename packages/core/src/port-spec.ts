/**
 * port-spec — Net::Server::Proto's port syntax: parse (pure), pair with host/ipv/proto lists, and
 * resolve to the sockets to bind (the only step that does I/O).
 *
 * parsePortSpec follows Net::Server::Proto->parse_info regex for regex, so a port string that
 * works in a Net::Server conf file means the same here. Where Perl's code and its documentation
 * disagree, the documentation wins, and each such place says so:
 * - `path|SOCK_STREAM|unix` (doc example 8): Perl matches sock_stream only in lower case and so
 *   turns the path into a host; we match it in any case.
 * - ipv precedence is the doc's (address > port > host > proto > default > env IPV > *); Perl's
 *   code lets a host or proto suffix override the port's.
 * - a unix socket path is never split into host and port (Perl turns `/tmp/my sock|unix` into
 *   host `/tmp/my`, port `sock`), and `/tmp/mysock` with proto unix is a path, not port `/tmp`
 *   with the legacy proto `mysock`.
 * Name resolution (Perl's get_addr_info, called inside parse_info) is resolveBindTargets' job.
 *
 * When ipv asks for a family the host lacks, netplex binds what Net::Server binds, so that a conf
 * file that starts under Perl starts here (perldoc Net::Server's sample conf pairs
 * `host 127.0.0.1` with `ipv IPv6`):
 * - an address wins (the doc's rule 1): `127.0.0.1` with ipv 6 is one IPv4 socket, `[::1]` with
 *   ipv 4 one IPv6 socket. For the first the spec keeps ipv 6, as Perl does (it logs "with IPv6").
 * - a name with ipv 4 or 6 binds each of its addresses of that family (the doc's "addresses
 *   returned by localhost (IPv6)"; Perl binds only the first address it finds). A name with none
 *   binds its first address, of the other family, as Perl's IPv6 socket class (IO::Socket::IP)
 *   does: always for ipv 6, and for ipv 4 when some port makes Perl load that class (ipv 6, an
 *   IPv6 address, or IPv6 from ipv *). Otherwise Perl's IO::Socket::INET cannot bind that name,
 *   and netplex refuses it too.
 * - what Perl binds twice is one socket here, where Perl stops at "Address already in use": an
 *   IPv4 address with ipv "IPv4 IPv6", or ipv "IPv4 IPv6" on a name with a single address.
 */
import { promises as dnsPromises } from 'node:dns';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { inspect } from 'node:util';
import { PortSpecError } from './errors.js';
import { ipvEnv } from './ipc/globals.js';
import type { PortObject } from './options.js';

/** supportedProtos lists the protocols netplex binds; Net::Server's ssl and ssleay are not among them. */
export const supportedProtos = ['tcp', 'udp', 'unix', 'unixdgram'] as const;

/** Proto is one of supportedProtos. */
export type Proto = (typeof supportedProtos)[number];

/** InetPortSpec is a parsed tcp or udp port: host is `*`, an IP address or a name still to resolve. */
export interface InetPortSpec<P extends 'tcp' | 'udp' = 'tcp' | 'udp'> {
  readonly proto: P;
  readonly host: string;
  readonly port: number;
  /**
   * `*` lets resolution pick every family the host has; `4` or `6` was asked for (or implied by an
   * address). An address is bound in its own family whatever ipv says: `127.0.0.1` keeps ipv 6 when
   * 6 alone was asked for, as Net::Server records it.
   */
  readonly ipv: '4' | '6' | '*';
  /** The spec as written, for messages. */
  readonly spec: string;
}

/** UnixPortSpec is a parsed unix socket; host and ipv are irrelevant to it, as in Net::Server. */
export interface UnixPortSpec<P extends 'unix' | 'unixdgram' = 'unix' | 'unixdgram'> {
  readonly proto: P;
  readonly host: '*';
  /** The socket path. */
  readonly port: string;
  readonly ipv: '*';
  /** The spec as written, for messages. */
  readonly spec: string;
}

/**
 * PortSpec is one parsed port: parsePortSpec returns one per requested ipv. One member per proto,
 * so that `spec.proto !== 'unix'` narrows as well as `spec.proto === 'tcp'` does.
 */
export type PortSpec =
  | InetPortSpec<'tcp'>
  | InetPortSpec<'udp'>
  | UnixPortSpec<'unix'>
  | UnixPortSpec<'unixdgram'>;

/** PortSpecDefaults are the host, proto and ipv a port spec falls back to (Net::Server's host, proto and ipv). */
export interface PortSpecDefaults {
  /** Default host, which may carry ipv (`localhost/IPv4`); empty means `*`. */
  host: string;
  /** Default proto, which may carry ipv (`tcp/IPv6`); empty means `tcp`. */
  proto: string;
  /** Default ipv: 4, 6, `*`, `IPv4 IPv6`…; empty means unset. */
  ipv: string | number;
  /** The IPV environment variable, consulted after every other source (default: not consulted, to stay pure). */
  envIpv?: string | undefined;
  /**
   * Net::Server::Proto::UNIX's unix_type for unix ports that name no type: SOCK_DGRAM makes them
   * unixdgram (any case; default SOCK_STREAM). Ports of other protos ignore it.
   */
  unixType?: string | undefined;
}

/** ServiceLookup maps a service name such as `http` to its port number, or undefined when unknown. */
export type ServiceLookup = (name: string, proto: 'tcp' | 'udp') => number | undefined;

/** ParseOptions tune parsePortSpec and pairPortSpecs. */
export interface ParseOptions {
  /** Resolves service names (default: lookupService, i.e. /etc/services, then a built-in table). */
  services?: ServiceLookup;
}

type SpecInput = string | number | PortObject;

/** PortConfig is the port, host, ipv and proto lists of a configuration; each may also be a single value. */
export interface PortConfig {
  port: SpecInput | readonly SpecInput[];
  host: string | readonly string[];
  ipv: string | number | readonly (string | number)[];
  proto: string | readonly string[];
  /** The IPV environment variable's value; when the key is absent, process.env.IPV is read. */
  envIpv?: string | undefined;
  /** The socket type of unix ports that name none (see PortSpecDefaults.unixType). */
  unix_type?: string | undefined;
}

const supportedList = 'tcp, udp, unix and unixdgram';

// Far above any real host (253), socket path (108) or spec; it keeps Perl's backtracking
// regexes, which are quadratic on long runs of separators, fast on any input.
const maxLength = 1024;

/**
 * parsePortSpec parses one port — `20203`, `host:port/proto/IPv4/IPv6`, `[::1]:80`,
 * `host, port, proto, IPv*`, `/path|unix`, `{ host, port, ipv, proto }` — into one PortSpec per
 * requested ipv. It does no I/O apart from the service-name table, and throws PortSpecError.
 */
export function parsePortSpec(
  spec: SpecInput,
  defaults: PortSpecDefaults,
  options: ParseOptions = {},
): PortSpec[] {
  const services = options.services ?? lookupService;
  const raw = describeSpec(spec);
  const fail = (reason: string): never => {
    throw new PortSpecError(raw, reason);
  };
  const defaultHost = optionalString(defaults?.host, 'host', fail);
  const defaultProto = optionalString(defaults?.proto, 'proto', fail);
  const defaultIpv = defaults?.ipv;
  if (defaultIpv !== undefined && typeof defaultIpv !== 'string' && typeof defaultIpv !== 'number') {
    fail(`default ipv must be a string or a number, got ${typeof defaultIpv}`);
  }
  if (typeof defaultIpv === 'string' && defaultIpv.length > maxLength) {
    fail(`default ipv is longer than ${maxLength} characters`);
  }
  const envIpv = optionalString(defaults?.envIpv, 'IPV', fail);

  const parts = typeof spec === 'object' && spec !== null ? splitObject(spec, fail) : splitString(spec, fail);

  // Perl: `$info->{'proto'} ||= $proto || 'tcp'`; a proto in the port replaces the default outright.
  const protoIpv: string[] = [];
  const protoText = stripIpv(parts.proto || defaultProto || 'tcp', protoIpv, false);
  let proto = normalizeProto(protoText, fail);
  if (parts.unixType !== undefined) proto = applyUnixType(proto, parts.unixType, fail);
  // Perl's UNIX.pm: the port's own type, else the server's unix_type (a deprecated option).
  else if (proto === 'unix' && defaults?.unixType?.trim().toLowerCase() === 'sock_dgram') proto = 'unixdgram';

  if (proto === 'unix' || proto === 'unixdgram') {
    // Host and ipv are irrelevant to a unix socket (Net::Server returns ipv '*' for it unchecked).
    const path = parts.path;
    if (path === '') fail('empty socket path');
    if (path.includes('\0')) fail('socket path contains a NUL byte');
    return [Object.freeze({ proto, host: '*', port: path, ipv: '*', spec: raw })];
  }

  const hostIpv: string[] = [];
  const host = parseHost(stripIpv(parts.host || defaultHost || '*', hostIpv, false), fail);
  const port = parsePortNumber(parts.port, proto, services, fail);

  // The doc's IPV precedence; the explicit address (rule 1) is applied below.
  const chosen = [parts.ipv, hostIpv.join(' '), protoIpv.join(' '), defaultIpv, envIpv].find(isSetIpv) ?? '*';
  const wanted = parseIpv(chosen, fail);

  let ipvs: ('4' | '6' | '*')[];
  const family = isIP(host);
  if (family === 4) {
    // Perl binds an IPv4 address as IPv4 whatever ipv says, but ipv 6 alone still counts as IPv6
    // (it makes Perl bind names with its IPv6 socket class; see resolveBindTargets).
    ipvs = [wanted.has('4') || wanted.has('*') ? '4' : '6'];
  } else if (family === 6) {
    // Perl binds an IPv6 address as IPv6 whatever ipv says (`$info->{'host'} =~ /:/`).
    ipvs = ['6'];
  } else if (wanted.has('*')) {
    ipvs = ['*'];
  } else {
    ipvs = (['4', '6'] as const).filter((v) => wanted.has(v));
  }
  return ipvs.map((ipv) => Object.freeze({ proto, host, port, ipv, spec: raw }));
}

/**
 * pairPortSpecs applies Net::Server's positional pairing: port i takes host i, ipv i and proto i,
 * and a list shorter than the ports repeats its last entry. Identical specs (other than port 0)
 * are bound once, as Net::Server skips a "Duplicate configuration".
 */
export function pairPortSpecs(config: PortConfig, options: ParseOptions = {}): PortSpec[] {
  // Net::Server indexes by the number of entries bound so far, which skips hosts whenever one
  // port resolves to several addresses; pairing by port index is what its documentation says.
  const ports = toList(config?.port);
  const hosts = toList(config?.host);
  const ipvs = toList(config?.ipv);
  const protos = toList(config?.proto);
  const pick = <T>(list: readonly T[], i: number): T | undefined => list[Math.min(i, list.length - 1)];
  // As in Net::Server::Proto, $ENV{IPV} applies when no ipv is set anywhere else.
  const envIpv = config && 'envIpv' in config ? config.envIpv : process.env[ipvEnv];
  const seen = new Set<string>();
  const out: PortSpec[] = [];
  ports.forEach((port, i) => {
    const defaults: PortSpecDefaults = {
      host: pick(hosts, i) ?? '*',
      proto: pick(protos, i) ?? 'tcp',
      ipv: pick(ipvs, i) ?? '',
      envIpv,
      unixType: config?.unix_type,
    };
    for (const spec of parsePortSpec(port, defaults, options)) {
      const id = `${spec.proto}\0${spec.host}\0${spec.port}\0${spec.ipv}`;
      if (spec.port !== 0 && seen.has(id)) continue;
      seen.add(id);
      out.push(spec);
    }
  });
  return out;
}

/** InetBindTarget is one tcp or udp socket to bind. */
export interface InetBindTarget<P extends 'tcp' | 'udp' = 'tcp' | 'udp'> {
  readonly proto: P;
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
  /** true: IPV6_V6ONLY; false: dual-stack `::`; absent: the OS default (net.ipv6.bindv6only). */
  readonly ipv6Only?: boolean;
  /** Stable identity, e.g. `tcp:127.0.0.1:20203:4`; unchanged targets keep their socket across reloads. */
  readonly key: string;
  /** Human name, e.g. `127.0.0.1:20203/tcp` or `[::1]:20203/tcp`. */
  readonly label: string;
}

/** UnixBindTarget is one unix socket path to bind. */
export interface UnixBindTarget<P extends 'unix' | 'unixdgram' = 'unix' | 'unixdgram'> {
  readonly proto: P;
  readonly path: string;
  /** Stable identity, e.g. `unix:/tmp/x.sock`. */
  readonly key: string;
  /** Human name, e.g. `/tmp/x.sock|unix`. */
  readonly label: string;
}

/** BindTarget is one socket to bind, resolved from a PortSpec; one member per proto, as for PortSpec. */
export type BindTarget =
  | InetBindTarget<'tcp'>
  | InetBindTarget<'udp'>
  | UnixBindTarget<'unix'>
  | UnixBindTarget<'unixdgram'>;

/** BindAddress is a BindTarget without its key and label: what formatBindTarget and bindTargetKey need. */
export type BindAddress =
  | { proto: 'tcp' | 'udp'; address: string; port: number; family: 4 | 6 }
  | { proto: 'unix' | 'unixdgram'; path: string };

/** HostLookup resolves a host name to all its addresses, like `dns.promises.lookup(host, { all: true })`. */
export type HostLookup = (host: string) => Promise<readonly { address: string; family: number | string }[]>;

/** ResolveOptions are resolveBindTargets' seams; the defaults read the real system. */
export interface ResolveOptions {
  /** Resolves names (default: dns.promises.lookup with all: true). */
  lookup?: HostLookup;
  /** Whether `::` refuses IPv4 (default: /proc/sys/net/ipv6/bindv6only, false when unreadable, as in Net::Server). */
  bindv6only?: boolean;
  /** Whether the machine has IPv6 (default: some interface has an IPv6 address). */
  ipv6Available?: boolean;
}

interface Resolved {
  proto: 'tcp' | 'udp';
  address: string;
  port: number;
  family: 4 | 6;
  ipv6Only?: boolean;
}

type Pending = Resolved | { proto: 'unix' | 'unixdgram'; path: string };

/**
 * resolveBindTargets turns specs into the sockets to bind: names become each of their addresses
 * (filtered by ipv), `*` becomes a dual-stack `::` (or `0.0.0.0` and a v6-only `::` when
 * bindv6only is set, or `0.0.0.0` alone without IPv6), and duplicates collapse. A name with no
 * address of the family asked for binds its first address, as Net::Server does (see the module
 * comment), except for ipv 4 when no port uses IPv6; that is a PortSpecError, as is a name that
 * does not resolve.
 */
export async function resolveBindTargets(
  specs: readonly PortSpec[],
  opts: ResolveOptions = {},
): Promise<BindTarget[]> {
  const lookup = opts.lookup ?? defaultLookup;
  const lookups = new Map<string, Promise<readonly { address: string; family: number | string }[]>>();
  let stack: Promise<{ bindv6only: boolean; ipv6Available: boolean }> | undefined;
  const getStack = () => {
    stack ??= (async () => ({
      bindv6only: opts.bindv6only ?? (await readBindV6Only()),
      ipv6Available: opts.ipv6Available ?? hasIPv6Interface(),
    }))();
    return stack;
  };

  const resolveOne = async (spec: PortSpec): Promise<Outcome> => {
    if (spec.proto === 'unix' || spec.proto === 'unixdgram') {
      return { targets: [{ proto: spec.proto, path: spec.port }] };
    }
    const { proto, host, port, ipv } = spec;
    const family = isIP(host);
    if (family === 4 || family === 6) return { targets: [{ proto, address: host, port, family }] };
    if (host === '*') return { targets: anyAddress(proto, port, ipv, await getStack()) };

    let pending = lookups.get(host);
    if (!pending) {
      pending = Promise.resolve().then(() => lookup(host));
      lookups.set(host, pending);
    }
    let found: readonly { address: string; family: number | string }[];
    try {
      found = await pending;
    } catch (err) {
      throw new PortSpecError(spec.spec, `cannot resolve host "${host}": ${errorMessage(err)}`, {
        cause: err,
      });
    }
    const valid: Resolved[] = [];
    for (const a of Array.isArray(found) ? found : []) {
      const fam =
        a?.family === 6 || a?.family === 'IPv6' ? 6 : a?.family === 4 || a?.family === 'IPv4' ? 4 : 0;
      if (fam === 0 || typeof a.address !== 'string' || isIP(a.address) !== fam) continue;
      valid.push({ proto, address: a.address, port, family: fam });
    }
    let addrs = valid.filter((a) => ipv === '*' || ipv === String(a.family));
    if (ipv === '*') {
      if (addrs.length === 0) {
        throw new PortSpecError(spec.spec, `host "${host}" resolved to no IPv4 or IPv6 address`);
      }
      if (!(await getStack()).bindv6only) addrs = dropMappedIPv4(addrs);
    } else if (addrs.length === 0) {
      const missing = new PortSpecError(
        spec.spec,
        `host "${host}" has no IPv${ipv} address, and ipv ${ipv} was asked for`,
      );
      if (!valid[0]) throw missing;
      return { targets: [], otherFamily: { first: valid[0], missing } };
    }
    return { targets: addrs };
  };

  const settled = await Promise.allSettled(specs.map(resolveOne));
  // Perl binds every name with its IPv6 socket class once one port asks for IPv6 (ipv 6 or an
  // IPv6 address) or ipv * resolves one to IPv6; that class binds a name's first address whatever
  // ipv says, where its IPv4 class cannot bind a name that has only IPv6.
  const ipv6Class = specs.some(
    (spec, i) =>
      spec.proto !== 'unix' &&
      spec.proto !== 'unixdgram' &&
      (spec.ipv === '6' ||
        (spec.ipv === '*' &&
          settled[i]?.status === 'fulfilled' &&
          settled[i].value.targets.some((t) => 'family' in t && t.family === 6))),
  );
  const all: Pending[] = [];
  // Report the first failing spec in configuration order, not whichever lookup failed first.
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    const other = s.value.otherFamily;
    if (!other) all.push(...s.value.targets);
    else if (other.first.family === 4 || ipv6Class) all.push(other.first);
    else throw other.missing;
  }
  return finishTargets(all);
}

/** Outcome is what one spec resolves to. */
interface Outcome {
  targets: Pending[];
  /** A name without an address of the one family ipv asked for: its first address, or this error. */
  otherFamily?: { first: Resolved; missing: PortSpecError };
}

/** formatBindTarget names a target in logs: `127.0.0.1:20203/tcp`, `[::1]:20203/tcp`, `/tmp/x.sock|unix`. */
export function formatBindTarget(target: BindAddress): string {
  if ('path' in target) return `${target.path}|${target.proto}`;
  const host = target.family === 6 ? `[${target.address}]` : target.address;
  return `${host}:${target.port}/${target.proto}`;
}

/** bindTargetKey is a target's identity, like Node's handle key: `tcp:127.0.0.1:20203:4` or `unix:/tmp/x.sock`. */
export function bindTargetKey(target: BindAddress): string {
  if ('path' in target) return `${target.proto}:${target.path}`;
  return `${target.proto}:${target.address}:${target.port}:${target.family}`;
}

/**
 * lookupService finds a service's port in /etc/services (read once, on first use), as Perl's
 * getservbyname does, or in a built-in table of common services where that file is missing.
 */
export function lookupService(name: string, proto: 'tcp' | 'udp'): number | undefined {
  const etc = readEtcServices();
  return etc.size > 0 ? etc.get(`${name}/${proto}`) : builtinServices.get(name);
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface SplitSpec {
  /** The port text: a number or service name for tcp/udp. */
  port: string;
  /** The port text before a host was split off: the path for unix sockets. */
  path: string;
  host: string | undefined;
  proto: string | undefined;
  /** ipv from the port itself (IPv tokens, or the object's ipv). */
  ipv: string | number | undefined;
  unixType: string | undefined;
}

// Perl's separators: a run of commas, pipes, white space, colons or slashes after a word, `*` or `]`.
const ipvToken = /(?<=[\w*\]])[,|\s:/]+IPv([*\d]+)/i;
const ipvTokenInPath = /(?<=[\w*\]])[,|\s]+IPv([*\d]+)/i;
const unixTypeToken = /(?<=[\w*\]])[,|\s:/]+(sock_stream|sock_dgram)\b/i;
const unixTypeTokenInPath = /(?<=[\w*\]])[,|\s]+(sock_stream|sock_dgram)\b/i;
const protoToken = /(?<=[\w*\]])[,|\s:/]+(tcp|udp|ssl|ssleay|unix|unixdgram|\w+(?:::\w+)+)$/i;
const protoTokenInPath = /(?<=[\w*\]])[,|\s]+(tcp|udp|ssl|ssleay|unix|unixdgram|\w+(?:::\w+)+)$/i;
// Legacy `80/MyTcp`; the part before the slash may not hold a slash, so a path keeps its last part.
const legacyProto = /^([^/]*)\/(\w+)$/;
const hostPrefix = /^(.*?)[,|\s:]+(?=\w+$)/;

function splitString(spec: string | number, fail: (reason: string) => never): SplitSpec {
  let s: string;
  if (typeof spec === 'number') {
    if (!Number.isInteger(spec) || spec < 0 || spec > 65535) fail('expected an integer port 0-65535');
    s = String(spec);
  } else if (typeof spec === 'string') {
    s = spec.trim();
  } else {
    return fail('expected a port number, a port string or { host, port, ipv, proto }');
  }
  if (s === '') fail('empty port spec; expected PORT, HOST:PORT, HOST:PORT/PROTO/IPV or PATH|unix');
  if (s.length > maxLength) fail(`port spec is longer than ${maxLength} characters`);

  // In a path, `/` and `:` are part of the name, not separators.
  const isPath = s.startsWith('/') || s.startsWith('./') || s.startsWith('../');
  let unixType: string | undefined;
  const ut = (isPath ? unixTypeTokenInPath : unixTypeToken).exec(s);
  if (ut) {
    unixType = ut[1]!.toLowerCase();
    s = cut(s, ut);
  }
  const ipvs: string[] = [];
  s = stripIpv(s, ipvs, isPath);
  let proto: string | undefined;
  const pt = (isPath ? protoTokenInPath : protoToken).exec(s);
  if (pt) {
    proto = pt[1];
    s = cut(s, pt);
  } else if (!isPath) {
    const legacy = legacyProto.exec(s);
    if (legacy) {
      proto = legacy[2];
      s = legacy[1]!;
    }
  }
  const path = s;
  let host: string | undefined;
  const hp = hostPrefix.exec(s);
  if (hp) {
    host = hp[1];
    s = s.slice(hp[0].length);
  }
  return { port: s, path, host, proto, ipv: ipvs.length > 0 ? ipvs.join(' ') : undefined, unixType };
}

const portObjectKeys = new Set(['host', 'port', 'ipv', 'proto']);

function splitObject(spec: object, fail: (reason: string) => never): SplitSpec {
  if (Array.isArray(spec)) return fail('expected a port number, a port string or { host, port, ipv, proto }');
  const o = spec as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!portObjectKeys.has(key))
      fail(`unknown key "${key}" in a port object; expected host, port, ipv, proto`);
  }
  const { port, host, ipv, proto } = o;
  let portText: string;
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      fail(`port number ${port} is out of range 0-65535`);
    portText = String(port);
  } else if (typeof port === 'string' && port.trim() !== '') {
    portText = port.trim();
  } else {
    return fail('a port object needs a port: a number, a service name or a socket path');
  }
  if (host !== undefined && typeof host !== 'string') fail('host in a port object must be a string');
  if (proto !== undefined && typeof proto !== 'string') fail('proto in a port object must be a string');
  if (ipv !== undefined && typeof ipv !== 'string' && typeof ipv !== 'number') {
    fail('ipv in a port object must be a string or a number');
  }
  for (const [key, v] of Object.entries({ port: portText, host, proto, ipv })) {
    if (typeof v === 'string' && v.length > maxLength) fail(`${key} is longer than ${maxLength} characters`);
  }
  // Net::Server takes a hashref's port as is: no host:port splitting inside it.
  return {
    port: portText,
    path: portText,
    host: host as string | undefined,
    proto: proto as string | undefined,
    ipv: ipv as string | number | undefined,
    unixType: undefined,
  };
}

function cut(s: string, m: RegExpExecArray): string {
  return s.slice(0, m.index) + s.slice(m.index + m[0].length);
}

/** Removes every IPv token from s (Perl takes two; stacking more does no harm), collecting them into into. */
function stripIpv(s: string, into: string[], isPath: boolean): string {
  const re = isPath ? ipvTokenInPath : ipvToken;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    into.push(`IPv${m[1]}`);
    s = cut(s, m);
  }
  return s;
}

const hostName = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const dottedQuad = /^\d+(?:\.\d+){3}$/;

function parseHost(text: string, fail: (reason: string) => never): string {
  let host = text;
  const bracketed = /^\[(.*)\]$/.exec(host);
  if (bracketed) host = bracketed[1]!;
  if (host === '' || host === '*') return '*';
  if (dottedQuad.test(host) && !isIPv4(host)) fail(`"${host}" is not a valid IPv4 address`);
  if (isIP(host) !== 0 || (hostName.test(host) && !dottedQuad.test(host))) return host;
  return fail(`cannot determine host from "${text}"; expected *, an IP address or a host name`);
}

const protoClasses: Record<string, Proto> = {
  'Net::Server::Proto::TCP': 'tcp',
  'Net::Server::Proto::UDP': 'udp',
  'Net::Server::Proto::UNIX': 'unix',
  'Net::Server::Proto::UNIXDGRAM': 'unixdgram',
};

function normalizeProto(text: string, fail: (reason: string) => never): Proto {
  const t = text.trim();
  if (!/^\w+(?:::\w+)*$/.test(t))
    fail(`cannot determine proto from "${text}"; netplex supports ${supportedList}`);
  if (t.includes('::')) {
    // Net::Server loads a class name as is; only its own four built-ins have a netplex equivalent.
    const mapped = protoClasses[t];
    if (mapped) return mapped;
    return fail(`proto class "${t}" is not supported; netplex supports ${supportedList}`);
  }
  const lower = t.toLowerCase();
  if ((supportedProtos as readonly string[]).includes(lower)) return lower as Proto;
  if (lower === 'ssl' || lower === 'ssleay') {
    return fail(
      `proto "${t}" is not supported (terminate TLS in front of netplex); netplex supports ${supportedList}`,
    );
  }
  return fail(`proto "${t}" is not supported; netplex supports ${supportedList}`);
}

function applyUnixType(proto: Proto, unixType: string, fail: (reason: string) => never): Proto {
  const shown = unixType.toUpperCase();
  if (proto === 'unix') return unixType === 'sock_dgram' ? 'unixdgram' : 'unix';
  if (proto === 'unixdgram' && unixType === 'sock_dgram') return 'unixdgram';
  return fail(`${shown} does not go with proto ${proto}; it only selects the type of a unix socket`);
}

const serviceName = /^[A-Za-z][A-Za-z0-9_.+-]*$/;

function parsePortNumber(
  text: string,
  proto: 'tcp' | 'udp',
  services: ServiceLookup,
  fail: (reason: string) => never,
): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 65535) fail(`port number ${text} is out of range 0-65535`);
    return n;
  }
  if (serviceName.test(text)) {
    const n = services(text, proto);
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > 65535) {
      fail(`unknown service name "${text}" for ${proto}`);
    }
    return n as number;
  }
  if (text.includes('/')) {
    fail(`"${text}" looks like a socket path, but proto is ${proto}; add |unix or |unixdgram`);
  }
  return fail(`expected a port number 0-65535 or a service name, got "${text}"`);
}

function isSetIpv(v: unknown): v is string | number {
  if (typeof v === 'number') return v !== 0;
  return typeof v === 'string' && v.trim() !== '';
}

/** Parses 4, 6, `*`, `IPv4 IPv6`, `46`, `IPv*`… into the set of families asked for. */
function parseIpv(value: string | number, fail: (reason: string) => never): Set<'4' | '6' | '*'> {
  const text = String(value).trim();
  const wanted = new Set<'4' | '6' | '*'>();
  for (const token of text.split(/[\s,|/:]+/)) {
    const digits = token.replace(/^ipv/i, '');
    if (digits === '' || !/^[46*]+$/.test(digits)) {
      fail(`invalid ipv "${text}"; expected 4, 6 or * (also IPv4, IPv6, IPv*, "IPv4 IPv6")`);
    }
    for (const c of digits) wanted.add(c as '4' | '6' | '*');
  }
  return wanted;
}

function optionalString(v: unknown, what: string, fail: (reason: string) => never): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') return fail(`default ${what} must be a string, got ${typeof v}`);
  if (v.length > maxLength) fail(`default ${what} is longer than ${maxLength} characters`);
  return v.trim();
}

function describeSpec(spec: unknown): string {
  if (typeof spec === 'string') return spec;
  if (typeof spec === 'number') return String(spec);
  return inspect(spec, { breakLength: Number.POSITIVE_INFINITY, depth: 2 });
}

function toList<T>(v: T | readonly T[] | undefined): readonly T[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v as T];
}

// ---------------------------------------------------------------------------------------------
// Services

// The services worth knowing without /etc/services, which slim containers often lack.
const builtinServices = new Map<string, number>([
  ['echo', 7],
  ['discard', 9],
  ['daytime', 13],
  ['chargen', 19],
  ['ftp', 21],
  ['ssh', 22],
  ['telnet', 23],
  ['smtp', 25],
  ['domain', 53],
  ['gopher', 70],
  ['finger', 79],
  ['http', 80],
  ['www', 80],
  ['pop3', 110],
  ['ntp', 123],
  ['imap', 143],
  ['imap2', 143],
  ['snmp', 161],
  ['ldap', 389],
  ['https', 443],
  ['submission', 587],
  ['ldaps', 636],
  ['imaps', 993],
  ['pop3s', 995],
  ['mysql', 3306],
  ['postgresql', 5432],
  ['http-alt', 8080],
]);

let etcServices: Map<string, number> | undefined;

function readEtcServices(): Map<string, number> {
  if (etcServices) return etcServices;
  const map = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync('/etc/services', 'utf8');
  } catch {
    // No /etc/services: the built-in table still answers.
  }
  for (const line of text.split('\n')) {
    const fields = line.replace(/#.*/, '').trim().split(/\s+/);
    const m = /^(\d+)\/(\w+)$/.exec(fields[1] ?? '');
    if (!m) continue;
    const port = Number(m[1]);
    for (const name of [fields[0]!, ...fields.slice(2)]) {
      const key = `${name}/${m[2]}`;
      if (!map.has(key)) map.set(key, port);
    }
  }
  etcServices = map;
  return map;
}

// ---------------------------------------------------------------------------------------------
// Resolution

async function defaultLookup(host: string) {
  return dnsPromises.lookup(host, { all: true });
}

/** Net::Server's _bindv6only: Linux's sysctl, and false when it cannot be read. */
async function readBindV6Only(): Promise<boolean> {
  try {
    return (await readFile('/proc/sys/net/ipv6/bindv6only', 'utf8')).trim() === '1';
  } catch {
    return false;
  }
}

function hasIPv6Interface(): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6'));
}

function anyAddress(
  proto: 'tcp' | 'udp',
  port: number,
  ipv: '4' | '6' | '*',
  stack: { bindv6only: boolean; ipv6Available: boolean },
): Resolved[] {
  const v4: Resolved = { proto, address: '0.0.0.0', port, family: 4 };
  if (ipv === '4') return [v4];
  // ipv 6 asked for on `*` is one `::`, which takes IPv4 too unless bindv6only is set: Net::Server
  // binds it so (IO::Socket::IP leaves IPV6_V6ONLY to the sysctl).
  if (ipv === '6') return [{ proto, address: '::', port, family: 6, ipv6Only: stack.bindv6only }];
  if (!stack.ipv6Available) return [v4];
  // With bindv6only set, `::` does not take IPv4, so Net::Server binds both (0.0.0.0 first).
  if (stack.bindv6only) return [v4, { proto, address: '::', port, family: 6, ipv6Only: true }];
  // Otherwise one dual-stack `::` takes both; a second 0.0.0.0 socket would be EADDRINUSE.
  return [{ proto, address: '::', port, family: 6, ipv6Only: false }];
}

/** Net::Server's ipv6mapped step: drop an IPv4 address that a dual-stack IPv6 one already takes. */
function dropMappedIPv4(addrs: Resolved[]): Resolved[] {
  const covered = new Set<string>();
  for (const a of addrs) {
    if (a.family !== 6) continue;
    if (a.address === '::') covered.add('0.0.0.0');
    const mapped = /^::ffff:(\d+(?:\.\d+){3})$/i.exec(a.address);
    if (mapped) covered.add(mapped[1]!);
  }
  return addrs.filter((a) => a.family === 6 || !covered.has(a.address));
}

function finishTargets(all: Pending[]): BindTarget[] {
  const byKey = new Map<string, Pending>();
  const keyed: { key: string; target: Pending }[] = [];
  const uses = new Map<string, number>();
  for (const target of all) {
    let key = bindTargetKey(target);
    if ('port' in target && target.port === 0) {
      // Every port 0 is its own socket on its own port, so its key must stay unique.
      const n = (uses.get(key) ?? 0) + 1;
      uses.set(key, n);
      if (n > 1) key = `${key}#${n}`;
    } else if (byKey.has(key)) {
      continue;
    }
    byKey.set(key, target);
    keyed.push({ key, target });
  }
  // `::` and `0.0.0.0` on one port can only coexist when `::` is IPv6 only.
  const anyV4 = new Set(
    keyed.flatMap(({ target: t }) =>
      'address' in t && t.address === '0.0.0.0' && t.port !== 0 ? [`${t.proto}:${t.port}`] : [],
    ),
  );
  return keyed.map(({ key, target }) => {
    let t = target;
    if ('address' in t && t.address === '::' && t.ipv6Only !== true && anyV4.has(`${t.proto}:${t.port}`)) {
      t = { ...t, ipv6Only: true };
    }
    return Object.freeze({ ...t, key, label: formatBindTarget(t) }) as BindTarget;
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
