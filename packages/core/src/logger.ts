/**
 * logger — Net::Server's `log(level, message)` on top of pino.
 *
 * Net::Server numbers its levels 0 (err) to 4 (debug) after syslog, and `log_level N` writes
 * levels 0..N. pino has no syslog "notice", so netplex adds it as a custom level between info and
 * warn. Lines are JSON (one per line) on stderr, in `log_file`, in a caller's stream (the
 * supervisor passes a pino-pretty stream for `netplex dev`) or, with `logFunction`, handed to the
 * user's function as Net::Server's `log_function` is. `log_file Sys::Syslog` makes each line one
 * syslog message instead (syslog.ts).
 */
import { hostname } from 'node:os';
import pino, { type DestinationStream, type Logger } from 'pino';
import { LogFileError } from './errors.js';
import { createSyslogTarget, isSyslogLogFile, type SyslogOptions } from './syslog.js';

/**
 * logLevels maps each Net::Server log level to its syslog name (Net::Server's documentation), its
 * pino level name and that level's pino value.
 */
export const logLevels = {
  0: { syslog: 'err', pino: 'error', value: 50 },
  1: { syslog: 'warning', pino: 'warn', value: 40 },
  2: { syslog: 'notice', pino: 'notice', value: 35 },
  3: { syslog: 'info', pino: 'info', value: 30 },
  4: { syslog: 'debug', pino: 'debug', value: 20 },
} as const;

/** LogLevel is a Net::Server log level: 0 err, 1 warning, 2 notice, 3 info, 4 debug. */
export type LogLevel = keyof typeof logLevels;

/** PinoLevelName is the pino level a Net::Server level is written at. */
export type PinoLevelName = (typeof logLevels)[LogLevel]['pino'];

/**
 * customLevels is the one level netplex adds to pino. A pino-pretty stream needs it as its
 * `customLevels` option to print NOTICE: only worker-thread transports learn it from pino itself.
 */
export const customLevels = { notice: logLevels[2].value } as const;

/** levelName gives the pino level name of a Net::Server level; anything but 0..4 is a RangeError. */
export function levelName(level: number): PinoLevelName {
  const entry = logLevels[level as LogLevel];
  if (entry === undefined) throw new RangeError(`log level: expected 0, 1, 2, 3 or 4, got ${String(level)}`);
  return entry.pino;
}

/**
 * levelFromPino maps a pino level value back to the nearest Net::Server level, so that lines
 * written through `logger.pino` directly (fatal, trace, child loggers) still get one.
 */
export function levelFromPino(value: number): LogLevel {
  if (value >= logLevels[0].value) return 0;
  if (value >= logLevels[1].value) return 1;
  if (value >= logLevels[2].value) return 2;
  if (value >= logLevels[3].value) return 3;
  return 4;
}

/**
 * LogFunction receives every log line instead of the destination (Net::Server's `log_function`):
 * the Net::Server level, the message and the whole record pino built (time, pid, fields).
 */
export type LogFunction = (level: LogLevel, message: string, record: Record<string, unknown>) => void;

/** CreateLoggerOptions configures {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Writes levels 0..log_level (Net::Server's `log_level`); 0..4, default 2 in the option schema. */
  log_level: number;
  /**
   * File the lines are appended to, created when missing; its directory must exist. `Sys::Syslog`
   * sends them to syslog instead, as `syslog` says. Default: stderr.
   */
  log_file?: string | undefined;
  /** With log_file Sys::Syslog: the syslog_* options (syslogOptionsOf). Default: Net::Server's. */
  syslog?: SyslogOptions | undefined;
  /** pino's `name` field on every line. Default: none. */
  name?: string | undefined;
  /**
   * Stream to write to when `log_file` is unset, e.g. a synchronous pino-pretty stream or a test
   * sink. netplex never ends it. Default: stderr.
   */
  destination?: NodeJS.WritableStream | DestinationStream | undefined;
  /** Takes every line instead of any file or stream (Net::Server's `log_function`). Default: none. */
  logFunction?: LogFunction | undefined;
  /** Fields added to every line, next to pino's `pid` and `hostname`. Default: none. */
  bindings?: Record<string, unknown> | undefined;
}

/** NetplexLogger is a process's root logger: Net::Server's `log` plus the pino logger under it. */
export interface NetplexLogger {
  /**
   * pino is the underlying logger, for child loggers (`{ conn, peer }`) and pino's own API. It is
   * typed as a plain pino Logger so that it fits every API taking one; at run time it also has
   * `notice()`.
   */
  readonly pino: Logger;
  /** log writes `message` with `fields` at a Net::Server level, if `log_level` lets it through. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /**
   * reopen opens `log_file` again (after logrotate renamed it) and returns nothing; when the file
   * cannot be opened, the lines keep going to the old file and the LogFileError is logged and
   * returned. Without `log_file` it does nothing.
   */
  reopen(): LogFileError | undefined;
  /** flush pushes out anything buffered; netplex writes synchronously, so this is a safety net. */
  flush(): void;
  /** close flushes and closes `log_file`; later lines are dropped. Idempotent. */
  close(): void;
}

/** The part of a destination netplex uses: pino's SonicBoom, a Node stream or the logFunction adapter. */
interface Target {
  write(line: string): unknown;
  flushSync?(): void;
}

/**
 * createLogger builds the root logger for one process (the supervisor or a worker). A `log_file`
 * that cannot be opened throws LogFileError at once, naming the reason, so a typo in the path
 * stops the server at start-up rather than losing its log.
 */
export function createLogger(opts: CreateLoggerOptions): NetplexLogger {
  const level = levelName(opts.log_level);
  const toSyslog = opts.logFunction === undefined && isSyslogLogFile(opts.log_file);
  const file = opts.logFunction === undefined && !toSyslog ? opts.log_file : undefined;
  const fileStream = file === undefined ? undefined : openLogFile(file);
  const syslog = toSyslog
    ? createSyslogTarget(opts.syslog ?? netServerSyslog, (line) => process.stderr.write(`${line}\n`))
    : undefined;
  const target: Target =
    opts.logFunction !== undefined
      ? logFunctionTarget(opts.logFunction)
      : syslog !== undefined
        ? syslogLineTarget(syslog)
        : (fileStream ?? (toSyslog ? undefined : opts.destination) ?? stderrStream());
  let closed = false;

  // pino writes to this indirection, never to the target itself, so that child loggers created
  // before close() drop their lines instead of writing to a destroyed stream.
  const sink = {
    write(line: string): void {
      if (!closed) target.write(line);
    },
    flushSync(): void {
      if (!closed) flushTarget(target);
    },
  };

  const logger = pino<'notice'>(
    {
      level,
      customLevels,
      ...(opts.name === undefined ? {} : { name: opts.name }),
      // `base` replaces pino's default { pid, hostname }, so the bindings are added to it.
      ...(opts.bindings === undefined
        ? {}
        : { base: { pid: process.pid, hostname: hostname(), ...opts.bindings } }),
    },
    sink,
  );

  // Errors already reported: a failed reopen() returns its own, and SonicBoom's 'error' reaches
  // this listener twice when pino's EPIPE filter re-emits it.
  const handled = new WeakSet<object>();
  if (fileStream !== undefined) {
    // SonicBoom re-emits write and reopen failures as 'error'; without a listener that would be an
    // uncaught exception taking the server down over its log file. Say it once on stderr instead.
    let reported = false;
    fileStream.on('error', (err: NodeJS.ErrnoException) => {
      if (handled.has(err)) return;
      handled.add(err);
      if (reported) return;
      reported = true;
      process.stderr.write(`netplex: log_file ${file}: ${err.message}\n`);
    });
  }

  return {
    // Logger<'notice'> is not assignable to Logger (onChild's parameter is contravariant), and the
    // extra level is all that differs.
    pino: logger as unknown as Logger,
    log(lvl, message, fields) {
      const name = levelName(lvl);
      if (fields === undefined) logger[name](message);
      else logger[name](fields, message);
    },
    reopen() {
      if (fileStream === undefined || file === undefined || closed) return undefined;
      try {
        fileStream.reopen();
        return undefined;
      } catch (err) {
        if (typeof err === 'object' && err !== null) handled.add(err);
        // reopen() left a 'ready' listener that closes the descriptor it saw; the next successful
        // reopen adds its own, and two would close the old descriptor twice, the second time
        // perhaps after its number was reused. In sync mode nothing else listens for 'ready'.
        fileStream.removeAllListeners('ready');
        // The old descriptor stays open (SonicBoom only swaps it once the new open succeeds), so
        // the line about the failure still lands in the renamed file.
        const error = new LogFileError(file, describeOpenError(err, file), { cause: err });
        logger.error({ err: error }, `cannot reopen log_file: ${error.message}`);
        return error;
      }
    },
    flush() {
      sink.flushSync();
    },
    close() {
      if (closed) return;
      flushTarget(target);
      closed = true;
      fileStream?.end();
      syslog?.close();
    },
  };
}

/** The open file, as pino's SonicBoom: the part of its API createLogger uses. */
type FileStream = ReturnType<typeof pino.destination>;

/**
 * openLogFile opens `file` for appending. `sync: true` makes the open synchronous, so its failure
 * can be thrown right here, and makes every line reach the file before `log()` returns, as
 * Net::Server's autoflushed handle does: nothing is lost when a worker crashes.
 */
function openLogFile(file: string): FileStream {
  try {
    return pino.destination({ dest: file, append: true, mkdir: false, sync: true });
  } catch (err) {
    throw new LogFileError(file, describeOpenError(err, file), { cause: err });
  }
}

function stderrStream(): FileStream {
  // fd 2 written synchronously, as Node's own process.stderr is for files, pipes and TTYs on Linux.
  const stream = pino.destination({ dest: 2, sync: true });
  // A stderr that fails (closed, EPIPE) has nowhere to report to, and logging must not take the
  // server down: the lines are dropped.
  stream.on('error', () => {});
  return stream;
}

/** describeOpenError turns an open(2) failure into the reason a person can act on. */
function describeOpenError(err: unknown, file: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) || '/' : '.';
  switch (code) {
    case 'ENOENT':
      return `cannot create it: directory ${dir} does not exist (ENOENT)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied: the file or directory ${dir} is not writable by this user (${code})`;
    case 'EISDIR':
      return 'it is a directory (EISDIR)';
    case 'ENOTDIR':
      return `a component of ${dir} is not a directory (ENOTDIR)`;
    case 'EROFS':
      return 'the file system is read-only (EROFS)';
    default:
      return (err as Error).message ?? String(err);
  }
}

/** logFunctionTarget hands each JSON line pino built to the user's function, as Net::Server does. */
function logFunctionTarget(fn: LogFunction): Target {
  return {
    write(line: string): void {
      const record = JSON.parse(line) as Record<string, unknown>;
      const message = typeof record.msg === 'string' ? record.msg : '';
      // An exception propagates to the caller of log(), as Net::Server's default
      // handle_log_error dies with it.
      fn(levelFromPino(Number(record.level)), message, record);
    },
  };
}

/** Net::Server's syslog defaults, for a logger made with log_file Sys::Syslog and no syslog options. */
const netServerSyslog: SyslogOptions = {
  logsock: 'native',
  ident: 'net_server',
  logopt: 'pid,nofatal',
  facility: 'daemon',
  format: 'rfc3164',
  host: '127.0.0.1',
  port: 514,
  path: '/dev/log',
};

/** syslogLineTarget sends each JSON line pino built as one syslog message: its level, message and time. */
function syslogLineTarget(syslog: NonNullable<ReturnType<typeof createSyslogTarget>>): Target {
  return {
    write(line: string): void {
      const record = JSON.parse(line) as Record<string, unknown>;
      const message = typeof record.msg === 'string' ? record.msg : '';
      const time = typeof record.time === 'number' ? record.time : Date.now();
      syslog.send(levelFromPino(Number(record.level)), message, time);
    },
  };
}

function flushTarget(target: Target): void {
  try {
    target.flushSync?.();
  } catch {
    // Flushing a stream that is still opening or already gone has nothing left to lose.
  }
}
