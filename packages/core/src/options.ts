/**
 * options — the one zod schema of every server option, under Net::Server's names.
 *
 * The schema is the option reference: `--help` is generated from it, and its inferred type is the
 * only config type. Every value may arrive as a string (command line, conf file), so scalar
 * schemas coerce; list keys take one value per occurrence.
 *
 * zod is imported as a namespace (`* as z`), here and in the rest of core: the bundled runtime
 * (scripts/bundle.mjs) then keeps only the parts of zod that core uses. `import { z }` is one
 * object holding all of zod, every locale included, and would triple the bundle.
 */
import { BlockList, isIP } from 'node:net';
import { constants } from 'node:os';
import * as z from 'zod';
import type { LogFunction } from './logger.js';
import {
  parseFacility,
  type SyslogSocket,
  splitLogopt,
  syslogFacilities,
  syslogLogoptWords,
  syslogRefusals,
  syslogSockets,
} from './syslog-format.js';

/** flag parses Net::Server-style booleans: 1/0, true/false, yes/no, on/off. */
export const flag = () =>
  z.preprocess((v) => {
    if (typeof v === 'number') return v !== 0;
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
    return v;
  }, z.boolean());

/**
 * number coerces text to a number, except that empty text is not 0 (`--log_level=` is a mistake,
 * not a request for level 0).
 */
export const number = () =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? Number.NaN : v), z.coerce.number());

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  number().pipe(z.number().int().min(min).max(max));

/** A port given in code as an object, as Net::Server accepts a hashref. */
export const portObjectSchema = z.strictObject({
  port: z.union([z.string(), z.number().int().min(0).max(65535)]),
  host: z.string().optional(),
  ipv: z.union([z.string(), z.number()]).optional(),
  proto: z.string().optional(),
});
export type PortObject = z.infer<typeof portObjectSchema>;

const regexString = z.string().superRefine((s, ctx) => {
  try {
    new RegExp(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `a regular expression (${(err as Error).message})` });
  }
});

/** isCidr tells whether a string is an IPv4 or IPv6 address, with an optional /prefix. */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefixText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return false;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return false;
  try {
    new BlockList().addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}

const cidrString = z
  .string()
  .transform((s) => s.trim())
  .refine(isCidr, { message: 'a CIDR block such as 127.0.0.0/8 or ::1/128' });

/**
 * signalName reads one signal name as Net::Server's sig_passthrough takes it (`USR2`, `SIGUSR2`,
 * any case) and gives Node's name (`SIGUSR2`), or undefined when the system has no such signal.
 */
function signalName(text: string): NodeJS.Signals | undefined {
  const upper = text.trim().toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return Object.hasOwn(constants.signals, name) ? (name as NodeJS.Signals) : undefined;
}

/** signalParts splits one sig_passthrough value at its commas, leaving out empty parts. */
function signalParts(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

/** Signals no process can catch, and so cannot pass on. */
const uncatchable = new Set(['SIGKILL', 'SIGSTOP']);

/** One sig_passthrough value: a signal name or a comma-separated list of them (Net::Server's forms). */
const signalList = z.string().superRefine((text, ctx) => {
  for (const part of signalParts(text)) {
    const name = signalName(part);
    if (name === undefined || uncatchable.has(name))
      ctx.addIssue({
        code: 'custom',
        message:
          name === undefined
            ? `signal names such as USR2 or TTIN, comma-separated (${JSON.stringify(part)} is no signal here)`
            : `signal names such as USR2 or TTIN (${name} cannot be caught, so it cannot be passed on)`,
      });
  }
});

/** Keys whose value is a list; each occurrence on the command line or in a conf file adds one. */
export const listKeys = new Set([
  'port',
  'host',
  'ipv',
  'proto',
  'allow',
  'deny',
  'cidr_allow',
  'cidr_deny',
  'sig_passthrough',
]);

/**
 * serverOptions is the zod shape of every built-in option. A server class adds its own with
 * `static options = { ... }`; those get the same sources, precedence, help and errors.
 */
export const serverOptions = {
  conf_file: z.string().min(1).optional().describe('file of "key value" lines read for further options'),
  log_level: integer(0, 4)
    .default(2)
    .describe('0 err, 1 warning, 2 notice, 3 info, 4 debug')
    .meta({ type: '0-4' }),
  log_file: z
    .string()
    .min(1)
    .optional()
    .describe(
      'file to append log lines to; Sys::Syslog sends them to syslog (see syslog_*); stderr when unset, or when it names another Perl module',
    ),
  log_function: z
    .union([
      z.custom<LogFunction>((v) => typeof v === 'function'),
      z
        .string()
        .refine((s) => /^[A-Za-z_$][\w$]*$/.test(s), { message: 'a function, or the name of a method' }),
    ])
    .optional()
    .describe(
      'function (in code) or name of a server method that takes every log line of the server instead of log_file or stderr',
    )
    .meta({ type: 'function|method name' }),
  syslog_logsock: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.trim().toLowerCase() || 'native' : v),
      z.string().superRefine((s, ctx) => {
        if (!(syslogSockets as readonly string[]).includes(s))
          ctx.addIssue({
            code: 'custom',
            message:
              s === 'stream' || s === 'console'
                ? `native, unix, inet, udp or tcp (${s}: ${syslogRefusals[s]})`
                : 'native, unix, inet, udp or tcp',
          });
      }),
    )
    .transform((s) => s as SyslogSocket)
    .default('native')
    .describe(
      'with log_file Sys::Syslog: native or unix (a datagram to syslog_path), udp or tcp (to syslog_host:syslog_port), inet (tcp, else udp)',
    )
    .meta({ type: 'native|unix|inet|udp|tcp' }),
  syslog_ident: z
    .string()
    .regex(/^[ -~]+$/, { message: 'printable ASCII text' })
    .default('net_server')
    .describe('with log_file Sys::Syslog: the name each message is tagged with'),
  syslog_logopt: z
    .string()
    .superRefine((s, ctx) => {
      const bad = splitLogopt(s).filter((w) => !(syslogLogoptWords as readonly string[]).includes(w));
      if (bad.length > 0)
        ctx.addIssue({
          code: 'custom',
          message: `words of ${syslogLogoptWords.join(', ')} (${bad.join(', ')} is none of them)`,
        });
    })
    .default('pid,nofatal')
    .describe(
      'with log_file Sys::Syslog: pid tags messages ident[pid]; noeol, nonul and perror as in Sys::Syslog',
    )
    .meta({ type: 'words' }),
  syslog_facility: z
    .string()
    .refine((s) => parseFacility(s) !== undefined, {
      message: `a facility: ${Object.keys(syslogFacilities).join(', ')}`,
    })
    .transform((s) => parseFacility(s)!)
    .default('daemon')
    .describe('with log_file Sys::Syslog: the facility of every message (daemon, user, local0 … local7 …)')
    .meta({ type: 'facility' }),
  syslog_format: z
    .enum(['rfc3164', 'rfc5424'])
    .default('rfc3164')
    .describe(
      "netplex extension: rfc3164 is Sys::Syslog's format, byte for byte; rfc5424 has a full time, the hostname and, over tcp, octet counting",
    ),
  syslog_host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe(
      'netplex extension: where syslog_logsock udp, tcp and inet send (Sys::Syslog: the loopback address)',
    ),
  syslog_port: integer(1, 65535)
    .default(514)
    .describe('netplex extension: the port syslog_logsock udp, tcp and inet send to'),
  syslog_path: z
    .string()
    .min(1)
    .default('/dev/log')
    .describe('netplex extension: the socket syslog_logsock native and unix send to'),
  port: z
    .array(z.union([z.string().min(1), z.number().int().min(0).max(65535), portObjectSchema]))
    .default([20203])
    .describe('port spec to bind: PORT, HOST:PORT, HOST:PORT/PROTO/IPV, [::1]:PORT, PATH|unix; repeatable')
    .meta({ type: 'port spec' }),
  host: z
    .array(z.string().min(1))
    .default(['*'])
    .describe('default host for ports that name none; * binds every interface'),
  ipv: z
    .array(z.union([z.string().min(1), z.number()]))
    .default([])
    .describe(
      'IP version for hosts that are names: 4, 6, * or "4 6"; unset: the IPV environment variable, else *',
    ),
  proto: z.array(z.string().min(1)).default(['tcp']).describe('default protocol: tcp, udp or unix'),
  listen: integer(1, 65535).default(511).describe('listen backlog for TCP and unix sockets'),
  unix_type: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.trim().toUpperCase() : v),
      z.enum(['SOCK_STREAM', 'SOCK_DGRAM']),
    )
    .default('SOCK_STREAM')
    .describe(
      'socket type of unix ports that name none; SOCK_DGRAM makes them unixdgram (bound through the native module)',
    ),
  udp_recv_len: integer(0)
    .optional()
    .describe(
      "bytes of each datagram muxInput receives; the rest is cut off (unset: all of it; Perl's default is 4096)",
    )
    .meta({ type: 'bytes' }),
  udp_broadcast: flag().default(false).describe('let udp sockets send to broadcast addresses (SO_BROADCAST)'),
  reverse_lookups: z
    .union([flag(), z.enum(['double', 'double-detail', 'double-autofail', 'double-debug'])])
    .default(false)
    .describe('look up the host name of each client (peerhost); "double" also checks it resolves back'),
  double_reverse_lookups: z
    .union([flag(), z.enum(['detail', 'autofail', 'debug'])])
    .default(false)
    .describe('check that the reverse name of each client resolves back to its address'),
  allow: z.array(regexString).default([]).describe('regex a client address (or host name) must match'),
  deny: z
    .array(regexString)
    .default([])
    .describe('regex that refuses a matching client address or host name'),
  cidr_allow: z.array(cidrString).default([]).describe('CIDR block a client address must be in'),
  cidr_deny: z.array(cidrString).default([]).describe('CIDR block whose clients are refused'),
  pid_file: z
    .string()
    .min(1)
    .optional()
    .describe('file to write the supervisor pid to (the control socket is <pid_file>.sock)'),
  chroot: z
    .string()
    .optional()
    .describe('not supported by netplex: use systemd RootDirectory= or a container instead'),
  user: z.string().min(1).optional().describe('user (name or uid) the worker runs as when started as root'),
  group: z.string().min(1).optional().describe('group (name or gid) the worker runs as when started as root'),
  background: flag().default(false).describe('detach from the terminal once bound'),
  setsid: flag().default(false).describe('detach and start a new session once bound'),
  check_for_dequeue: number()
    .pipe(z.number().positive())
    .optional()
    .describe('seconds between runDequeue() calls')
    .meta({ type: 'seconds' }),
  no_client_stdout: flag().default(false).describe('accepted for compatibility: netplex never ties STDOUT'),
  sig_passthrough: z
    .array(signalList)
    .transform((list) => [...new Set(list.flatMap(signalParts).map((part) => signalName(part)!))])
    .default([])
    .describe(
      'signals the supervisor passes on to its workers (USR2, TTIN …); its own (HUP, INT, QUIT, TERM, USR1) it acts on itself',
    )
    .meta({ type: 'signal names' }),
  idle_timeout: number()
    .pipe(z.number().min(0))
    .default(0)
    .describe('seconds without input before a connection is closed through muxTimeout (0: never)')
    .meta({ type: 'seconds' }),
  max_input_buffer: integer(1)
    .default(1024 * 1024)
    .describe('bytes of unconsumed input a client may hold before it is disconnected')
    .meta({ type: 'bytes' }),
  max_output_buffer: integer(1)
    .default(8 * 1024 * 1024)
    .describe('bytes of unsent output a client may hold before it is disconnected')
    .meta({ type: 'bytes' }),
  drain_timeout: number()
    .pipe(z.number().min(0))
    .default(30)
    .describe('seconds a retired worker serves its live connections before closing them')
    .meta({ type: 'seconds' }),
  max_draining: integer(0)
    .default(2)
    .describe(
      "retired workers that may drain at once; a reload past it closes the oldest one's connections (0: none drains)",
    ),
  reload_mode: z
    .enum(['migrate', 'drain'])
    .default('migrate')
    .describe(
      'on reload, move live connections to the new worker (migrate) or let the old one finish them (drain)',
    ),
  migration_transport: z
    .enum(['auto', 'direct', 'relay'])
    .default('auto')
    .describe(
      'how migrating connections travel: straight from the old worker to the new over a unix socket pair (direct, needs the native module), through the supervisor over IPC (relay), or direct when it can (auto)',
    ),
  ready_timeout: number()
    .pipe(z.number().positive())
    .default(30)
    .describe('seconds a new worker has to load and start listening before it is killed')
    .meta({ type: 'seconds' }),
  restart_backoff: number()
    .pipe(z.number().positive())
    .default(0.1)
    .describe('seconds before a crashed worker is restarted; doubles with each crash in a row')
    .meta({ type: 'seconds' }),
  restart_backoff_max: number()
    .pipe(z.number().positive())
    .default(30)
    .describe('longest wait before a crashed worker is restarted (never below restart_backoff)')
    .meta({ type: 'seconds' }),
  restart_backoff_reset: number()
    .pipe(z.number().min(0))
    .default(10)
    .describe('seconds a worker must run for its crash to count as the first again')
    .meta({ type: 'seconds' }),
  max_connections: integer(0)
    .default(0)
    .describe('most clients connected at once; 0 is unlimited (more are refused)'),
} satisfies z.ZodRawShape;

/** The schema of the built-in options. */
export const serverOptionsSchema = z.object(serverOptions);

/** ServerConfig is the resolved, validated configuration of the built-in options. */
export type ServerConfig = z.infer<typeof serverOptionsSchema>;

/** OptionsShape is what a server class may declare as `static options`. */
export type OptionsShape = z.ZodRawShape;
