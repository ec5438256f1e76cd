/**
 * syslog — the log destination of `log_file Sys::Syslog`: each log line becomes one syslog message
 * (syslog-format.ts), sent over the transport syslog_logsock names.
 *
 * - native, unix: a datagram to syslog_path (/dev/log) through the native module (@netplex/unix),
 *   as glibc's syslog(3) and Sys::Syslog's unix mechanism send it; a path that is a stream socket
 *   gets a stream connection instead, as both fall back to. Without the native module the lines go
 *   to stderr, and one warning says why.
 * - udp: a connected datagram socket to syslog_host:syslog_port, so that a port nobody listens on
 *   comes back as ECONNREFUSED (Sys::Syslog probes for it with an empty datagram).
 * - tcp: one connection, reconnected with a growing delay when it drops.
 * - inet: tcp, and udp for the rest of the run if the first connection fails (Sys::Syslog's order).
 *
 * A daemon that is down, or slow, never costs the server: nothing blocks the event loop, what waits
 * is bounded (lines past it are dropped and counted), and stderr gets one warning when the daemon
 * stops answering (again at most once a minute), and one line when it answers again.
 */
import { hostname } from 'node:os';
import { loadUnix, unixUnavailable } from '@netplex/unix';
import {
  formatSyslog,
  type SyslogFacility,
  type SyslogFormat,
  type SyslogHeader,
  type SyslogLevel,
  type SyslogLogopt,
  type SyslogSocket,
  splitLogopt,
} from './syslog-format.js';
import {
  Health,
  InetTransport,
  StreamTransport,
  type Transport,
  UdpTransport,
  UnixDatagramTransport,
} from './syslog-transports.js';

/** SyslogOptions are the syslog_* options, as createSyslogTarget takes them. */
export interface SyslogOptions {
  readonly logsock: SyslogSocket;
  readonly ident: string;
  /** syslog_logopt, as given (`pid,nofatal`). */
  readonly logopt: string;
  readonly facility: SyslogFacility;
  readonly format: SyslogFormat;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/** The options syslogOptionsOf reads. */
interface SyslogConfig {
  log_file?: string | undefined;
  syslog_logsock: SyslogSocket;
  syslog_ident: string;
  syslog_logopt: string;
  syslog_facility: SyslogFacility;
  syslog_format: SyslogFormat;
  syslog_host: string;
  syslog_port: number;
  syslog_path: string;
}

/** SYSLOG_LOG_FILE is the log_file value that sends the lines to syslog, as Net::Server's. */
export const SYSLOG_LOG_FILE = 'Sys::Syslog';

/** isSyslogLogFile tells the log_file that means syslog from a file name. */
export function isSyslogLogFile(logFile: string | undefined): boolean {
  return logFile === SYSLOG_LOG_FILE;
}

/** syslogOptionsOf gives the syslog options of a configuration whose log_file is Sys::Syslog, else undefined. */
export function syslogOptionsOf(config: SyslogConfig): SyslogOptions | undefined {
  if (!isSyslogLogFile(config.log_file)) return undefined;
  return {
    logsock: config.syslog_logsock,
    ident: config.syslog_ident,
    logopt: config.syslog_logopt,
    facility: config.syslog_facility,
    format: config.syslog_format,
    host: config.syslog_host,
    port: config.syslog_port,
    path: config.syslog_path,
  };
}

/** SyslogTarget takes the lines of one process. */
export interface SyslogTarget {
  send(level: SyslogLevel, message: string, time: number): void;
  /** close sends what a stream still holds and closes the socket. Idempotent. */
  close(): void;
}

/**
 * createSyslogTarget opens the transport syslog_logsock names; `warn` takes the warnings (stderr
 * in production). Undefined, after a warning, when the native module a unix transport needs is
 * missing: the caller logs elsewhere.
 */
export function createSyslogTarget(
  opts: SyslogOptions,
  warn: (line: string) => void,
): SyslogTarget | undefined {
  const logopt = new Set(splitLogopt(opts.logopt)) as SyslogLogopt;
  const header: SyslogHeader = {
    format: opts.format,
    facility: opts.facility,
    ident: opts.ident,
    logopt,
    pid: process.pid,
    hostname: hostname(),
  };
  const perror = logopt.has('perror');
  const whoami = logopt.has('pid') ? `${opts.ident}[${process.pid}]` : opts.ident;
  const transport = openTransport(opts, warn);
  if (transport === undefined) return undefined;
  return {
    send(level, message, time) {
      // perror: Sys::Syslog also prints "ident[pid]: message" on stderr.
      if (perror) process.stderr.write(`${whoami}: ${message}${message.includes('\n') ? '' : '\n'}`);
      transport.send((kind) => formatSyslog(header, kind, { level, message, time }));
    },
    close: () => transport.close(),
  };
}

function openTransport(opts: SyslogOptions, warn: (line: string) => void): Transport | undefined {
  const inet = { host: opts.host, port: opts.port };
  switch (opts.logsock) {
    case 'udp':
      return new UdpTransport(inet, new Health(`udp ${opts.host}:${opts.port}`, warn));
    case 'tcp':
      return new StreamTransport(inet, 'tcp', new Health(`tcp ${opts.host}:${opts.port}`, warn));
    case 'inet':
      return new InetTransport(inet, warn);
    default: {
      const label = `${opts.logsock} ${opts.path}`;
      const unix = loadUnix();
      if (unix === undefined) {
        warn(
          `netplex: syslog ${label}: needs the native module, which is not available (${unixUnavailable()}): logging to stderr instead`,
        );
        return undefined;
      }
      return new UnixDatagramTransport(
        unix,
        opts.path,
        opts.logsock === 'native' ? 'native' : 'unix',
        label,
        warn,
      );
    }
  }
}
