/**
 * syslog-format — the bytes of one syslog message, as Net::Server's log module has Sys::Syslog
 * write them (`log_file Sys::Syslog`), or in RFC 5424 with `syslog_format rfc5424`.
 *
 * Net::Server::Log::Sys::Syslog calls `syslog($level, '%s', $msg)` with its levels mapped to syslog
 * severities (0 err, 1 warning, 2 notice, 3 info, 4 debug). Sys::Syslog 0.36 then sends, over unix,
 * udp and tcp alike, `<PRI>Mmm dd hh:mm:ss ident[pid]: message\n\0`: no hostname, a newline always
 * added to the '%s' format (unless `noeol`), a NUL at the end (unless `nonul`), and the time in the
 * C locale. Its `native` mechanism hands the message, newline included, to the C library's
 * syslog(3), and glibc sends the same header without the NUL. netplex sends the same bytes, but
 * for one: over tcp it leaves the NUL out. A receiver splits a tcp stream at each newline (RFC 6587's
 * non-transparent framing), so Sys::Syslog's NUL starts the next message there, and rsyslog then
 * reads every message after the first without its priority or tag (user.notice, tag `#000<29>Mmm`).
 * Pure functions: the sockets are in syslog.ts. */
/** SyslogLevel is a Net::Server log level (logger.ts's LogLevel): 0 err … 4 debug. */
export type SyslogLevel = 0 | 1 | 2 | 3 | 4;

/** syslogSockets are the syslog_logsock values netplex takes. */
export const syslogSockets = ['native', 'unix', 'inet', 'udp', 'tcp'] as const;

/** SyslogSocket is one syslog_logsock value. */
export type SyslogSocket = (typeof syslogSockets)[number];

/** syslogRefusals say why two of Sys::Syslog's mechanisms are no syslog_logsock here. */
export const syslogRefusals = {
  stream: 'a STREAMS device (Solaris); Linux has none, and Sys::Syslog fails with it there too',
  console:
    'Sys::Syslog writes to /dev/console from a forked child, so that a console that blocks stalls only the child; Node cannot fork(2)',
} as const;

/** syslogFacilities are the facility names Sys::Syslog knows on Linux, with their codes (facility = code << 3). */
export const syslogFacilities = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

/** SyslogFacility is a facility name, as syslog_facility takes it (without LOG_, lower case). */
export type SyslogFacility = keyof typeof syslogFacilities;

/** parseFacility reads `daemon`, `LOG_DAEMON` or `Local0` as Sys::Syslog's xlate() does; undefined for no facility. */
export function parseFacility(text: string): SyslogFacility | undefined {
  const name = text.trim().toLowerCase().replace(/^log_/, '');
  return Object.hasOwn(syslogFacilities, name) ? (name as SyslogFacility) : undefined;
}

/**
 * severityOf is the syslog severity of a Net::Server level, as Net::Server::Log::Sys::Syslog's
 * %syslog_map gives it: 0 err (3), 1 warning (4), 2 notice (5), 3 info (6), 4 debug (7).
 */
export function severityOf(level: SyslogLevel): number {
  return level + 3;
}

/**
 * syslogLogoptWords are the words syslog_logopt takes: Net::Server's five (cons, ndelay, nowait,
 * pid, nofatal) and the three more Sys::Syslog reads (noeol, nonul, perror).
 */
export const syslogLogoptWords = [
  'cons',
  'ndelay',
  'nowait',
  'pid',
  'nofatal',
  'noeol',
  'nonul',
  'perror',
] as const;

/** SyslogLogopt is syslog_logopt read: the words it names. */
export type SyslogLogopt = ReadonlySet<(typeof syslogLogoptWords)[number]>;

/** splitLogopt splits syslog_logopt at commas, bars and spaces (`pid,nofatal`, `pid|cons`). */
export function splitLogopt(text: string): string[] {
  return text.split(/[,|\s]+/).filter((word) => word !== '');
}

/** SyslogFormat is the message format: RFC 3164 as Sys::Syslog writes it, or RFC 5424. */
export type SyslogFormat = 'rfc3164' | 'rfc5424';

/** SyslogSocketKind is the transport one message is framed for. */
export type SyslogSocketKind = 'native' | 'unix' | 'udp' | 'tcp';

/** SyslogMessage is what one log line becomes before it is framed. */
export interface SyslogMessage {
  readonly level: SyslogLevel;
  readonly message: string;
  /** The line's time (ms since the epoch). */
  readonly time: number;
}

/** SyslogHeader is what every message of one process carries. */
export interface SyslogHeader {
  readonly format: SyslogFormat;
  readonly facility: SyslogFacility;
  readonly ident: string;
  readonly logopt: SyslogLogopt;
  /** The process id shown with logopt pid (and as RFC 5424's PROCID). */
  readonly pid: number;
  /** RFC 5424's HOSTNAME; RFC 3164 as Sys::Syslog writes it has none. */
  readonly hostname: string;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** rfc3164Time is strftime("%b %e %H:%M:%S") in the C locale, local time, as Sys::Syslog stamps messages. */
export function rfc3164Time(ms: number): string {
  const d = new Date(ms);
  const day = String(d.getDate()).padStart(2, ' ');
  return `${months[d.getMonth()]} ${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** rfc5424Time is an RFC 3339 time with milliseconds and the local offset, e.g. 2026-12-03T07:22:21.123+01:00. */
export function rfc5424Time(ms: number): string {
  const d = new Date(ms);
  const offset = -d.getTimezoneOffset();
  const zone =
    offset === 0
      ? 'Z'
      : `${offset > 0 ? '+' : '-'}${two(Math.floor(Math.abs(offset) / 60))}:${two(Math.abs(offset) % 60)}`;
  return (
    `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:` +
    `${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}${zone}`
  );
}

/** priorityOf is PRI: facility code * 8 + severity. */
export function priorityOf(header: SyslogHeader, level: SyslogLevel): number {
  return syslogFacilities[header.facility] * 8 + severityOf(level);
}

/** rfc5424Name makes text an RFC 5424 header field: printable ASCII without spaces, at most `most` characters, or '-'. */
function rfc5424Name(text: string, most: number): string {
  const name = text.replace(/[^!-~]/g, '_').slice(0, most);
  return name === '' ? '-' : name;
}

/**
 * formatSyslog gives the bytes of one message for one transport.
 * - rfc3164, unix/udp: Sys::Syslog's `<PRI>Mmm dd hh:mm:ss ident[pid]: message\n\0`;
 * - rfc3164, tcp: the same without the NUL, which would start the next frame (see above);
 * - rfc3164, native: what glibc's syslog(3) sends for Sys::Syslog's native mechanism, the same without the NUL;
 * - rfc5424: `<PRI>1 TIME HOSTNAME APP-NAME PROCID - - message`, with RFC 6587's octet counting
 *   (`LENGTH SP` before it) over tcp, and nothing after it.
 * The message goes as it is, as Sys::Syslog sends it: no escaping.
 */
export function formatSyslog(header: SyslogHeader, kind: SyslogSocketKind, line: SyslogMessage): Buffer {
  const pri = priorityOf(header, line.level);
  if (header.format === 'rfc5424') {
    const procid = header.logopt.has('pid') ? String(header.pid) : '-';
    const text =
      `<${pri}>1 ${rfc5424Time(line.time)} ${rfc5424Name(header.hostname, 255)} ` +
      `${rfc5424Name(header.ident, 48)} ${procid} - - ${line.message}`;
    const body = Buffer.from(text);
    return kind === 'tcp' ? Buffer.concat([Buffer.from(`${body.length} `), body]) : body;
  }
  const whoami = header.logopt.has('pid') ? `${header.ident}[${header.pid}]` : header.ident;
  const eol = header.logopt.has('noeol') ? '' : '\n';
  const nul = kind === 'native' || kind === 'tcp' || header.logopt.has('nonul') ? '' : '\0';
  return Buffer.from(`<${pri}>${rfc3164Time(line.time)} ${whoami}: ${line.message}${eol}${nul}`);
}
