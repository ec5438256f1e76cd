/**
 * net-server-options — every option Net::Server documents for what netplex is modelled on, with what
 * netplex does for each: the base class (`perldoc Net::Server`, DEFAULT ARGUMENTS), the Multiplex
 * personality, Net::Server::Proto and its TCP, UDP, UNIX, UNIXDGRAM, SSL and SSLEAY pages, and the
 * two log modules, Net::Server::Log::Sys::Syslog and Net::Server::Log::Log::Log4perl.
 *
 * None of them stops a start as unknown, so that a Net::Server conf file starts here. Each is
 * - implemented: an option of the schema (options.ts) that does what Net::Server's does;
 * - mapped: read here and set as the netplex option it stands for, in the same source (so that any
 *   source above it that sets that option still wins);
 * - notice: accepted, and one notice-level line at start says what netplex does instead;
 * - refused: chroot, which stays an error (UnsupportedOptionError) for the reason its row gives.
 * A key that only this table knows (mapped or notice) never reaches the config object.
 *
 * The options of the forking personalities stay unknown on purpose (see forkingOnlyOptions).
 * docs/guides/from-perl.md shows this table, rendered by options-reference.ts (`pnpm docs`).
 */
import type { KnownKeys } from './argv.js';
import { ConfigError, type ConfigSource, describeSource } from './errors.js';

/** NetServerTreatment is what netplex does with one Net::Server option. */
export type NetServerTreatment = 'implemented' | 'mapped' | 'notice' | 'refused';

/** NetServerOption is one row of the table: one option, or a family treated alike. */
export interface NetServerOption {
  /** The keys, spelled as the pods spell them. */
  readonly keys: readonly string[];
  /** Every key that starts with this is one of the family too (`SSL_` for any IO::Socket::SSL argument). */
  readonly prefix?: string;
  /** The perldoc pages that document it. */
  readonly pods: readonly string[];
  readonly treatment: NetServerTreatment;
  /** What netplex does, and for a notice or a refusal, why: the docs show it, and a notice says it. */
  readonly does: string;
  /** For a notice: whether a value asks for nothing netplex does not do already (no line then). */
  readonly quiet?: (value: unknown) => boolean;
  /** For a mapped option: the netplex options a value stands for, or undefined for none. */
  readonly maps?: (
    value: unknown,
    key: string,
    source: ConfigSource,
  ) => Readonly<Record<string, unknown>> | undefined;
  /**
   * For an implemented option: the value netplex uses instead of one it cannot honour as given, with
   * the notice saying so (log_file naming a Perl module); undefined for a value it takes as it is.
   */
  readonly adjust?: (value: unknown) => { value: unknown; notice: string } | undefined;
}

const BASE = 'Net::Server';
const MULTIPLEX = 'Net::Server::Multiplex';
const PROTO = 'Net::Server::Proto';
const UDP = 'Net::Server::Proto::UDP';
const UNIX = 'Net::Server::Proto::UNIX';
const UNIXDGRAM = 'Net::Server::Proto::UNIXDGRAM';
const SSL = 'Net::Server::Proto::SSL';
const SSLEAY = 'Net::Server::Proto::SSLEAY';
const SYSLOG = 'Net::Server::Log::Sys::Syslog';
const LOG4PERL = 'Net::Server::Log::Log::Log4perl';

/** parseFlag reads a Net::Server boolean as options.ts's flag() does; undefined when it is none. */
function parseFlag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value !== 'string') return undefined;
  const s = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  return undefined;
}

/** A flag that is off asks for nothing: Net::Server's default is what netplex does. */
const quietWhenOff = (value: unknown) => parseFlag(value) === false;

/**
 * chrootAdvice is why chroot is refused, and what to do instead (UnsupportedOptionError says it).
 */
export const chrootAdvice =
  'netplex cannot chroot on Node.js (there is no chroot(2) binding, and a chroot after start-up ' +
  'would strand the modules it loads later); confine the process from outside instead, with ' +
  "systemd's RootDirectory= or a container";

/**
 * The arguments Net::Server::Proto::SSL passes to IO::Socket::SSL by name (its @ssl_args; SSLEAY
 * has the same list): with the SSL_ prefix rule, every SSL_ key either page documents.
 */
const sslArgs = [
  'SSL_use_cert',
  'SSL_verify_mode',
  'SSL_key_file',
  'SSL_cert_file',
  'SSL_ca_path',
  'SSL_ca_file',
  'SSL_cipher_list',
  'SSL_passwd_cb',
  'SSL_max_getline_length',
  'SSL_error_callback',
  'SSL_verify_callback',
  'SSL_version',
];

/** The signals the supervisor acts on itself, and so does not pass on (see sig_passthrough). */
export const ownSignals: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1'];

/** isPerlModuleName tells a log_file that names a Perl logging module (`Sys::Syslog`) from a path. */
export function isPerlModuleName(text: string): boolean {
  // Net::Server loads a log_file of this form as Net::Server::Log::<name> and fails when it cannot;
  // a one-word name is a module only if one is installed, and is otherwise a file: here, a file.
  return /^[A-Za-z]\w*(?:::[A-Za-z]\w*)+$/.test(text);
}

/** netServerOptions is the table: every documented option, in the order of the pods. */
export const netServerOptions: readonly NetServerOption[] = [
  {
    keys: ['conf_file'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'read as Net::Server reads it; a conf_file named inside a conf_file is not followed',
  },
  { keys: ['log_level'], pods: [BASE], treatment: 'implemented', does: 'levels 0-4, as in Net::Server' },
  {
    keys: ['log_file'],
    pods: [BASE, SYSLOG, LOG4PERL],
    treatment: 'implemented',
    does:
      'a file the lines are appended to. Sys::Syslog sends them to syslog as Net::Server::Log::Sys::Syslog does (see syslog_*). ' +
      'Another Perl module name (Log::Log4perl) is no file: netplex cannot load Perl modules, logs to stderr instead ' +
      '(under systemd the journal takes it), and says so in a notice',
    adjust: (value) =>
      typeof value === 'string' && isPerlModuleName(value) && value !== 'Sys::Syslog'
        ? {
            value: undefined,
            notice: `log_file ${value} names a Perl logging module, which netplex cannot load: logging to stderr instead (under systemd the journal takes it; log_file Sys::Syslog, log_function or writeToLogHook take every line)`,
          }
        : undefined,
  },
  {
    keys: ['log_function'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'a function given in code, or the name of a method of the server, takes every line of the server (as writeToLogHook does, which it wins over)',
  },
  {
    keys: ['port', 'host', 'ipv', 'proto'],
    pods: [BASE, PROTO],
    treatment: 'implemented',
    does: "Net::Server::Proto's syntax; protos tcp, udp, unix and unixdgram (through the native module; ssl and ssleay are refused, see SSL_*)",
  },
  { keys: ['listen'], pods: [BASE], treatment: 'implemented', does: 'the listen backlog' },
  {
    keys: ['ipv6_package'],
    pods: [BASE, PROTO],
    treatment: 'notice',
    does: "ignored: netplex binds IPv6 with Node's own sockets, so there is no socket package to choose",
  },
  {
    keys: ['syslog_logsock', 'syslog_ident', 'syslog_logopt', 'syslog_facility'],
    pods: [BASE, SYSLOG],
    treatment: 'implemented',
    does:
      'with log_file Sys::Syslog, each line is one message in the RFC 3164 form Sys::Syslog sends (<PRI>Mmm dd hh:mm:ss ident[pid]: message; over tcp without its NUL after the newline, which rsyslog reads as the start of the next message), ' +
      "with Net::Server's defaults (native, net_server, pid,nofatal, daemon). native and unix send to /dev/log through the native module " +
      '(without it, the lines go to stderr, with a warning); udp, tcp and inet to 127.0.0.1 port 514 (syslog_host, syslog_port and syslog_path, ' +
      'netplex extensions, say where; syslog_format rfc5424 writes RFC 5424). stream and console are refused: stream needs a STREAMS device, which ' +
      'Linux lacks (Sys::Syslog fails there too); console writes from a forked child, and Node cannot fork(2). A daemon that is down costs one warning on stderr, not the server',
  },
  {
    keys: ['log4perl_conf', 'log4perl_poll', 'log4perl_logger'],
    prefix: 'log4perl_',
    pods: [LOG4PERL],
    treatment: 'notice',
    does: 'ignored: netplex logs with pino, not Log::Log4perl; its lines go to log_file, stderr, log_function or writeToLogHook',
  },
  {
    keys: ['reverse_lookups', 'double_reverse_lookups'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'peerhost is looked up before postAcceptHook; the double forms also check that the name resolves back',
  },
  {
    keys: ['allow', 'deny', 'cidr_allow', 'cidr_deny'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'the same rules, in the same order',
  },
  { keys: ['pid_file'], pods: [BASE], treatment: 'implemented', does: "the supervisor's pid file" },
  {
    keys: ['chroot'],
    pods: [BASE],
    treatment: 'refused',
    does: `refused (MPX_ERR_CONFIG_UNSUPPORTED): ${chrootAdvice}`,
  },
  {
    keys: ['user', 'group'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'the worker runs as them when started as root',
  },
  {
    keys: ['background', 'setsid'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'the supervisor detaches once bound (Node cannot fork: the command runs again, detached)',
  },
  {
    keys: ['no_close_by_child'],
    pods: [BASE],
    treatment: 'notice',
    quiet: quietWhenOff,
    does: 'ignored: netplex forks no child per connection, so no child can stop the server; the server stops itself only with mux.endloop()',
  },
  {
    keys: ['no_client_stdout'],
    pods: [BASE],
    treatment: 'implemented',
    does: 'what netplex always does: it never opens STDIN or STDOUT on a client',
  },
  {
    keys: ['leave_children_open_on_hup'],
    pods: [BASE],
    treatment: 'mapped',
    does: 'on, it stands for reload_mode drain: after SIGHUP the old worker finishes its connections while the new one takes new ones (off, netplex keeps its default, migrate, which does not cut connections either). A reload_mode set anywhere wins',
    maps: (value, key, source) => {
      const on = parseFlag(value);
      if (on === undefined)
        throw new ConfigError({ key, source, value, expected: 'bool (1/0, yes/no, on/off, true/false)' });
      return on ? { reload_mode: 'drain' } : undefined;
    },
  },
  {
    keys: ['sig_passthrough'],
    pods: [BASE],
    treatment: 'implemented',
    does: "the supervisor passes the signals named at its start on to its workers (a worker that does not handle one gets Node's default for it); the supervisor's own, HUP, INT, QUIT, TERM and USR1, it acts on itself and does not pass on, with a notice. A server run in one process, without the supervisor, gets them itself",
    adjust: (value) => {
      const signals = Array.isArray(value) ? (value as NodeJS.Signals[]) : [];
      const own = signals.filter((s) => ownSignals.includes(s));
      if (own.length === 0) return undefined;
      return {
        value: signals.filter((s) => !own.includes(s)),
        notice: `sig_passthrough ${own.join(', ')}: not passed on: the supervisor acts on its own signals itself (HUP reloads; INT and TERM stop; QUIT stops gracefully; USR1 reopens the logs), for its workers too`,
      };
    },
  },
  {
    keys: ['tie_client_stdout', 'tied_stdin_callback', 'tied_stdout_callback'],
    pods: [BASE],
    treatment: 'notice',
    quiet: (value) => typeof value !== 'function' && quietWhenOff(value),
    does: 'ignored: netplex never ties STDIN or STDOUT to a client, so there is nothing to intercept; input comes to muxInput, and client.write() or client.print() answer',
  },
  {
    keys: ['check_for_dequeue'],
    pods: [MULTIPLEX],
    treatment: 'implemented',
    does: 'runDequeue() every that many seconds',
  },
  {
    keys: ['udp_recv_len'],
    pods: [UDP, UNIXDGRAM],
    treatment: 'implemented',
    does: "each datagram is cut to that many bytes before muxInput; unset, muxInput gets all of it (Perl's default is 4096)",
  },
  {
    keys: ['udp_recv_flags'],
    pods: [UDP, UNIXDGRAM],
    treatment: 'notice',
    quiet: (value) => /^\s*0*\s*$/.test(String(value)),
    does: "ignored: Node's datagram sockets take no recv(2) flags; datagrams are read with none (0, the default, is quiet)",
  },
  {
    keys: ['udp_broadcast'],
    pods: [UDP],
    treatment: 'implemented',
    does: 'SO_BROADCAST on every udp socket (Net::Server 2.013 reads it only from a port hash: its server-wide key is misspelt upd_broadcast)',
  },
  {
    keys: ['unix_type'],
    pods: [UNIX],
    treatment: 'implemented',
    does: "the type of unix ports that name none: SOCK_STREAM is proto unix; SOCK_DGRAM makes them unixdgram, bound through netplex's native module (Node's net and dgram modules have no unix datagram sockets); where the module is not built, they fail to bind (MPX_ERR_BIND) saying so",
  },
  {
    keys: sslArgs,
    prefix: 'SSL_',
    pods: [SSL, SSLEAY],
    treatment: 'notice',
    does: 'ignored: TLS is not supported yet; terminate it in front of netplex. A port with proto ssl or ssleay is refused (MPX_ERR_PORT_SPEC), so that no port meant for TLS serves clear text',
  },
];

/**
 * forkingOnlyOptions are the options that only Net::Server's forking personalities document (the
 * ARGUMENTS of Net::Server::Fork, Net::Server::PreForkSimple and Net::Server::PreFork). They stay
 * unknown options, with the closest known key as the suggestion: each sizes, paces or serializes a
 * pool of forked children, and netplex serves every connection in one worker process, so a conf
 * file that sets them was written for another personality and deserves a look rather than a
 * notice. Two keys those pods document are not here: check_for_dequeue (Multiplex documents it
 * too) and sig_passthrough (the base class documents it), both implemented.
 */
export const forkingOnlyOptions: readonly string[] = [
  'max_servers',
  'max_dequeue',
  'check_for_dead',
  'max_requests',
  'serialize',
  'lock_file',
  'min_servers',
  'min_spare_servers',
  'max_spare_servers',
  'check_for_waiting',
  'check_for_spawn',
  'min_child_ttl',
  'child_communication',
];

/** The rows of keys outside the schema (mapped and notice), by key and by prefix. */
const byKey = new Map<string, NetServerOption>();
const byPrefix: NetServerOption[] = [];
for (const option of netServerOptions) {
  if (option.treatment !== 'mapped' && option.treatment !== 'notice') continue;
  for (const key of option.keys) byKey.set(key, option);
  if (option.prefix !== undefined) byPrefix.push(option);
}

/**
 * netServerOptionOf is the row of a key outside the schema that netplex accepts (mapped or notice),
 * or undefined.
 */
export function netServerOptionOf(key: string): NetServerOption | undefined {
  return byKey.get(key) ?? byPrefix.find((option) => key.startsWith(option.prefix!));
}

/**
 * acceptedKeys is `known` (the schema's keys) widened by the keys of this table outside the schema:
 * `has` is also true for them and for any key of a prefix family (SSL_…), and iterating gives the
 * schema's keys, then the named ones of this table, the candidates a suggestion is chosen from.
 */
export function acceptedKeys(known: ReadonlySet<string>): KnownKeys {
  const named = [...byKey.keys()].filter((key) => !known.has(key));
  return {
    has: (key) => known.has(key) || netServerOptionOf(key) !== undefined,
    [Symbol.iterator]: () => [...known, ...named][Symbol.iterator](),
  };
}

/** One key's setting as loadConfig merged it: the value, its source, and the key it was mapped from. */
export interface NetServerSetting {
  readonly value: unknown;
  readonly source: ConfigSource;
  readonly mappedFrom?: string | undefined;
}

/**
 * mapNetServerOptions sets the netplex options that the mapped Net::Server options stand for: each
 * in the source that has the mapped option's winning value (`layers` are highest first), unless
 * that source sets them itself. Throws ConfigError for a value a mapped option cannot take.
 */
export function mapNetServerOptions(
  layers: readonly Map<string, NetServerSetting>[],
  known: ReadonlySet<string>,
): void {
  for (const [key, option] of byKey) {
    if (option.maps === undefined || known.has(key)) continue;
    const layer = layers.find((l) => l.has(key));
    if (layer === undefined) continue;
    const setting = layer.get(key)!;
    for (const [target, value] of Object.entries(option.maps(setting.value, key, setting.source) ?? {}))
      if (known.has(target) && !layer.has(target))
        layer.set(target, { value, source: setting.source, mappedFrom: key });
  }
}

/** ConfigNotice is one line loadConfig has for the log: what netplex does with Net::Server options it was given. */
export interface ConfigNotice {
  /** 2 (notice) for what netplex does instead; 3 (info) for what a mapped option was set as. */
  readonly level: 2 | 3;
  /** The options it is about, as given. */
  readonly keys: readonly string[];
  readonly message: string;
}

/** NetServerOutcome is what the table made of the options given: lines for the log, and values changed. */
export interface NetServerOutcome {
  readonly notices: ConfigNotice[];
  /** Schema keys whose value the table replaced (log_file naming a Perl module, sig_passthrough's own signals). */
  readonly replaced: Map<string, unknown>;
}

/** showValue renders a value in a notice: text as it is, a function as one, anything else as JSON. */
function showValue(value: unknown): string {
  if (typeof value === 'function') return '(a function)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? String(value);
}

/**
 * netServerNotices makes the lines for the options of this table given outside the schema
 * (`given`: each key's winning setting), checks what the mapped ones became (`settled`: the
 * schema's winning settings), and adjusts the schema values netplex cannot honour as given
 * (`config`: a log_file that names a Perl module, sig_passthrough's own signals).
 */
export function netServerNotices(
  given: ReadonlyMap<string, NetServerSetting>,
  settled: ReadonlyMap<string, NetServerSetting>,
  config: Readonly<Record<string, unknown>>,
): NetServerOutcome {
  const notices: ConfigNotice[] = [];
  const replaced = new Map<string, unknown>();
  // The keys given of each row outside the schema, but for values that ask for nothing.
  const rows = new Map<NetServerOption, string[]>();
  for (const [key, setting] of given) {
    const option = netServerOptionOf(key);
    if (option !== undefined && !option.quiet?.(setting.value))
      rows.set(option, [...(rows.get(option) ?? []), key]);
  }
  // One line per row, in the table's order.
  for (const option of netServerOptions) {
    const keys = rows.get(option) ?? [];
    if (option.treatment === 'mapped')
      notices.push(...keys.flatMap((key) => mappedNotices(option, key, given.get(key)!, settled)));
    else if (keys.length > 0) notices.push({ level: 2, keys, message: `${keys.join(', ')}: ${option.does}` });
    for (const key of option.adjust ? option.keys : []) {
      const adjusted = option.adjust!(config[key]);
      if (adjusted === undefined) continue;
      replaced.set(key, adjusted.value);
      notices.push({ level: 2, keys: [key], message: adjusted.notice });
    }
  }
  return { notices, replaced };
}

/** mappedNotices says what a mapped option was set as, or that a netplex option set elsewhere won. */
function mappedNotices(
  option: NetServerOption,
  key: string,
  setting: NetServerSetting,
  settled: ReadonlyMap<string, NetServerSetting>,
): ConfigNotice[] {
  const shown = `${key} ${showValue(setting.value)}`;
  return Object.entries(option.maps?.(setting.value, key, setting.source) ?? {}).flatMap(
    ([target, value]): ConfigNotice[] => {
      const final = settled.get(target);
      if (final === undefined) return [];
      if (final.mappedFrom === key)
        return [{ level: 3, keys: [key], message: `${shown}: set as ${target} ${showValue(value)}` }];
      if (final.value === value) return [];
      return [
        {
          level: 2,
          keys: [key],
          message: `${shown} (${describeSource(setting.source)}) would be ${target} ${showValue(value)}, but ${target} ${showValue(final.value)} is set (${describeSource(final.source)}) and wins`,
        },
      ];
    },
  );
}
