import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogFileError } from '../../src/errors.js';
import {
  createLogger,
  customLevels,
  type LogLevel,
  levelFromPino,
  levelName,
  logLevels,
  type NetplexLogger,
} from '../../src/logger.js';

/** A destination that keeps each line pino writes, parsed, as pino's own test helper does. */
function sink() {
  const lines: Record<string, unknown>[] = [];
  return { lines, write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
}

function readLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const levels: LogLevel[] = [0, 1, 2, 3, 4];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-logger-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function track(logger: NetplexLogger): NetplexLogger {
  cleanups.push(() => logger.close());
  return logger;
}

describe('level table', () => {
  it("maps Net::Server's syslog levels to pino", () => {
    expect(logLevels).toEqual({
      0: { syslog: 'err', pino: 'error', value: 50 },
      1: { syslog: 'warning', pino: 'warn', value: 40 },
      2: { syslog: 'notice', pino: 'notice', value: 35 },
      3: { syslog: 'info', pino: 'info', value: 30 },
      4: { syslog: 'debug', pino: 'debug', value: 20 },
    });
    expect(customLevels).toEqual({ notice: 35 });
  });

  it.each([
    [0, 'error'],
    [1, 'warn'],
    [2, 'notice'],
    [3, 'info'],
    [4, 'debug'],
  ] as const)('levelName(%i) is %s', (n, name) => {
    expect(levelName(n)).toBe(name);
  });

  it.each([-1, 5, 1.5, Number.NaN])('levelName(%d) is a RangeError', (n) => {
    expect(() => levelName(n)).toThrow(RangeError);
    expect(() => levelName(n)).toThrow(/expected 0, 1, 2, 3 or 4/);
  });

  it.each([
    [60, 0],
    [50, 0],
    [40, 1],
    [35, 2],
    [30, 3],
    [20, 4],
    [10, 4],
  ] as const)('levelFromPino(%i) is %i', (value, level) => {
    expect(levelFromPino(value)).toBe(level);
  });
});

describe('createLogger', () => {
  it.each(levels)('log_level %i writes the levels up to it and no more', (logLevel) => {
    const out = sink();
    const logger = track(createLogger({ log_level: logLevel, destination: out }));
    for (const level of levels) logger.log(level, `at ${level}`);
    expect(out.lines.map((l) => l.msg)).toEqual(levels.filter((l) => l <= logLevel).map((l) => `at ${l}`));
    expect(out.lines.map((l) => l.level)).toEqual(
      levels.filter((l) => l <= logLevel).map((l) => logLevels[l].value),
    );
  });

  it('writes fields as JSON, with pid, hostname and time', () => {
    const out = sink();
    const logger = track(createLogger({ log_level: 2, destination: out }));
    logger.log(2, 'Binding to 127.0.0.1:20203/tcp', { listener: '127.0.0.1:20203/tcp', port: 20203 });
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toEqual({
      level: 35,
      time: expect.any(Number),
      pid: process.pid,
      hostname: hostname(),
      listener: '127.0.0.1:20203/tcp',
      port: 20203,
      msg: 'Binding to 127.0.0.1:20203/tcp',
    });
  });

  it('serializes an err field', () => {
    const out = sink();
    const logger = track(createLogger({ log_level: 0, destination: out }));
    logger.log(0, 'fatal', { err: new TypeError('bad') });
    expect(out.lines[0]).toMatchObject({
      level: 50,
      msg: 'fatal',
      err: { type: 'TypeError', message: 'bad' },
    });
  });

  it('adds name and bindings to every line', () => {
    const out = sink();
    const logger = track(
      createLogger({ log_level: 2, destination: out, name: 'netplex', bindings: { role: 'supervisor' } }),
    );
    logger.log(1, 'hi');
    expect(out.lines[0]).toMatchObject({
      name: 'netplex',
      role: 'supervisor',
      pid: process.pid,
      hostname: hostname(),
    });
  });

  it('applies log_level to child loggers and offers notice on pino', () => {
    const out = sink();
    const logger = track(createLogger({ log_level: 2, destination: out }));
    const child = logger.pino.child({ conn: 7, peer: '192.0.2.1' });
    child.info('not at log_level 2');
    child.warn('written');
    (logger.pino as unknown as { notice(msg: string): void }).notice('notice');
    expect(out.lines).toEqual([
      expect.objectContaining({ level: 40, conn: 7, peer: '192.0.2.1', msg: 'written' }),
      expect.objectContaining({ level: 35, msg: 'notice' }),
    ]);
  });

  it('rejects a log level outside 0..4', () => {
    expect(() => createLogger({ log_level: 5, destination: sink() })).toThrow(RangeError);
    const logger = track(createLogger({ log_level: 4, destination: sink() }));
    expect(() => logger.log(7 as LogLevel, 'x')).toThrow(RangeError);
  });

  it('drops lines after close, and close is idempotent', () => {
    const out = sink();
    const logger = createLogger({ log_level: 2, destination: out });
    const child = logger.pino.child({ conn: 1 });
    logger.log(2, 'before');
    logger.close();
    logger.close();
    logger.log(2, 'after');
    child.error('after, from a child');
    expect(out.lines.map((l) => l.msg)).toEqual(['before']);
  });

  it('writes to stderr when neither log_file nor destination is set', () => {
    const loggerUrl = new URL('../../src/logger.ts', import.meta.url).href;
    const script = `
      const { createLogger } = await import(${JSON.stringify(loggerUrl)});
      const logger = createLogger({ log_level: 2 });
      logger.log(2, 'to stderr', { n: 1 });
      logger.log(3, 'filtered');
      process.stdout.write('stdout stays clean');
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      encoding: 'utf8',
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('stdout stays clean');
    const lines = result.stderr.split('\n').filter((l) => l !== '');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ level: 35, msg: 'to stderr', n: 1, pid: result.pid }),
    ]);
  });
});

describe('createLogger with log_file', () => {
  it('creates a missing file and appends to an existing one', () => {
    const dir = tempDir();
    const file = join(dir, 'server.log');
    const first = createLogger({ log_level: 2, log_file: file });
    first.log(2, 'one');
    first.close();
    const second = createLogger({ log_level: 2, log_file: file });
    second.log(1, 'two', { conn: 3 });
    second.close();
    expect(readLines(file)).toEqual([
      expect.objectContaining({ level: 35, msg: 'one', pid: process.pid }),
      expect.objectContaining({ level: 40, msg: 'two', conn: 3 }),
    ]);
  });

  it('writes each line before log() returns', () => {
    const file = join(tempDir(), 'sync.log');
    const logger = track(createLogger({ log_level: 2, log_file: file }));
    logger.log(0, 'now');
    expect(readLines(file)).toEqual([expect.objectContaining({ msg: 'now' })]);
  });

  it('keeps lines written before the file existed as they are', () => {
    const file = join(tempDir(), 'old.log');
    writeFileSync(file, 'not json, from before\n');
    const logger = track(createLogger({ log_level: 2, log_file: file }));
    logger.log(2, 'new');
    expect(readFileSync(file, 'utf8')).toMatch(/^not json, from before\n\{.*"msg":"new"\}\n$/);
  });

  it('prefers log_file over a destination stream', () => {
    const file = join(tempDir(), 'file.log');
    const out = sink();
    const logger = track(createLogger({ log_level: 2, log_file: file, destination: out }));
    logger.log(2, 'to the file');
    expect(out.lines).toEqual([]);
    expect(readLines(file)).toEqual([expect.objectContaining({ msg: 'to the file' })]);
  });

  it('throws LogFileError at once when the directory is missing', () => {
    const dir = tempDir();
    const file = join(dir, 'nope', 'server.log');
    let error: unknown;
    try {
      createLogger({ log_level: 2, log_file: file });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LogFileError);
    expect(error).toMatchObject({
      code: 'MPX_ERR_LOG_FILE',
      file,
      message: `log_file ${file}: cannot create it: directory ${join(dir, 'nope')} does not exist (ENOENT)`,
      cause: expect.objectContaining({ code: 'ENOENT' }),
    });
  });

  it('throws LogFileError when log_file is a directory', () => {
    const dir = tempDir();
    expect(() => createLogger({ log_level: 2, log_file: dir })).toThrow(
      new LogFileError(dir, 'it is a directory (EISDIR)'),
    );
  });

  if (process.getuid?.() === 0)
    console.warn('skipped: a non-writable log directory cannot be tested as root, who can write anywhere');
  it.skipIf(process.getuid?.() === 0)('throws LogFileError when the directory is not writable', () => {
    const dir = join(tempDir(), 'ro');
    mkdirSync(dir, { mode: 0o500 });
    cleanups.push(() => chmodSync(dir, 0o700));
    const file = join(dir, 'server.log');
    expect(() => createLogger({ log_level: 2, log_file: file })).toThrow(
      `log_file ${file}: permission denied: the file or directory ${dir} is not writable by this user (EACCES)`,
    );
  });

  it('reopens the path after logrotate renamed the file', () => {
    const dir = tempDir();
    const file = join(dir, 'server.log');
    const logger = track(createLogger({ log_level: 2, log_file: file }));
    logger.log(2, 'before rotation');
    renameSync(file, `${file}.1`);
    logger.log(2, 'after rename, before reopen');
    expect(logger.reopen()).toBeUndefined();
    logger.log(2, 'after reopen');
    expect(readLines(`${file}.1`).map((l) => l.msg)).toEqual([
      'before rotation',
      'after rename, before reopen',
    ]);
    expect(readLines(file).map((l) => l.msg)).toEqual(['after reopen']);
  });

  it('keeps writing to the old file when reopen fails, and says why', () => {
    const dir = tempDir();
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const file = join(logDir, 'server.log');
    const logger = track(createLogger({ log_level: 2, log_file: file }));
    logger.log(2, 'before');
    renameSync(logDir, join(dir, 'moved'));
    const error = logger.reopen();
    expect(error).toBeInstanceOf(LogFileError);
    expect(error?.message).toBe(
      `log_file ${file}: cannot create it: directory ${logDir} does not exist (ENOENT)`,
    );
    logger.log(2, 'still logging');
    expect(readLines(join(dir, 'moved', 'server.log'))).toEqual([
      expect.objectContaining({ msg: 'before' }),
      expect.objectContaining({ level: 50, msg: `cannot reopen log_file: ${error?.message}` }),
      expect.objectContaining({ msg: 'still logging' }),
    ]);
  });

  it('recovers on the next reopen once the directory is back', async () => {
    const dir = tempDir();
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const file = join(logDir, 'server.log');
    const stderr = vi.spyOn(process.stderr, 'write');
    cleanups.push(() => stderr.mockRestore());
    const logger = track(createLogger({ log_level: 2, log_file: file }));
    renameSync(logDir, join(dir, 'moved'));
    expect(logger.reopen()).toBeInstanceOf(LogFileError);
    mkdirSync(logDir);
    expect(logger.reopen()).toBeUndefined();
    logger.log(2, 'in the new file');
    // Let SonicBoom's deferred 'error' and 'ready' events (and the old descriptor's close) run.
    await new Promise((resolve) => setTimeout(resolve, 50));
    logger.log(2, 'still in the new file');
    expect(readLines(file).map((l) => l.msg)).toEqual(['in the new file', 'still in the new file']);
    expect(stderr).not.toHaveBeenCalled();
  });

  it('does nothing on reopen without a log_file', () => {
    const out = sink();
    const logger = track(createLogger({ log_level: 2, destination: out }));
    expect(logger.reopen()).toBeUndefined();
    logger.log(2, 'fine');
    expect(out.lines).toHaveLength(1);
  });
});

describe('createLogger with logFunction', () => {
  it('routes every line to the function instead of the destination', () => {
    const calls: [LogLevel, string, Record<string, unknown>][] = [];
    const out = sink();
    const logger = track(
      createLogger({
        log_level: 2,
        destination: out,
        logFunction: (level, message, record) => void calls.push([level, message, record]),
      }),
    );
    for (const level of levels) logger.log(level, `at ${level}`, { n: level });
    logger.pino.child({ conn: 2 }).warn('from a child');
    expect(calls.map(([level, message]) => [level, message])).toEqual([
      [0, 'at 0'],
      [1, 'at 1'],
      [2, 'at 2'],
      [1, 'from a child'],
    ]);
    expect(calls[0]?.[2]).toMatchObject({ n: 0, pid: process.pid, level: 50 });
    expect(calls[3]?.[2]).toMatchObject({ conn: 2 });
    expect(out.lines).toEqual([]);
  });

  it('takes precedence over log_file, which is then never opened', () => {
    const dir = tempDir();
    const file = join(dir, 'missing-dir', 'server.log');
    const fn = vi.fn();
    const logger = track(createLogger({ log_level: 4, log_file: file, logFunction: fn }));
    logger.log(4, 'debug');
    expect(fn).toHaveBeenCalledWith(4, 'debug', expect.objectContaining({ level: 20 }));
  });

  it("passes the function's exception to the caller, as Net::Server's handle_log_error dies", () => {
    const logger = track(
      createLogger({
        log_level: 2,
        logFunction: () => {
          throw new Error('syslog is down');
        },
      }),
    );
    expect(() => logger.log(0, 'x')).toThrow('syslog is down');
  });
});
