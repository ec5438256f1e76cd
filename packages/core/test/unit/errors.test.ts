/**
 * The error registry: every entry of `errorCodes` builds an error whose code is its key, every
 * exported MultiplexError subclass is in the registry, and the errors page (docs/reference/errors.md)
 * lists every code (and no code that does not exist).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.js';
import { errorCodes, MultiplexError } from '../../src/errors.js';

type Code = keyof typeof errorCodes;

/** One plausible construction per code; the Record type makes a new code fail to compile until added. */
const build: Record<Code, () => MultiplexError> = {
  MPX_ERR_CONFIG: () =>
    new errors.ConfigError({
      key: 'log_level',
      source: { kind: 'command line', arg: '--log_level=9' },
      value: '9',
      expected: '0-4',
    }),
  MPX_ERR_CONFIG_FILE: () => new errors.ConfigFileError('/etc/app.conf', 'no such file'),
  MPX_ERR_CONFIG_UNKNOWN_OPTION: () =>
    new errors.UnknownOptionError({
      key: 'log_lvel',
      source: { kind: 'conf_file', file: 'app.conf', line: 3 },
      suggestion: 'log_level',
    }),
  MPX_ERR_CONFIG_SYNTAX: () =>
    new errors.ConfigSyntaxError({ kind: 'conf_file', file: 'app.conf', line: 7 }, '=', '"key value"'),
  MPX_ERR_CONFIG_MISSING: () => new errors.MissingOptionError('db_url', 'string'),
  MPX_ERR_CONFIG_UNSUPPORTED: () =>
    new errors.UnsupportedOptionError({
      key: 'chroot',
      source: { kind: 'run()' },
      value: '/var/empty',
      advice: 'use systemd RootDirectory=',
    }),
  MPX_ERR_PORT_SPEC: () => new errors.PortSpecError('99999', 'port number 99999 is out of range 0-65535'),
  MPX_ERR_BIND: () => new errors.BindError('127.0.0.1:80/tcp', 'permission denied'),
  MPX_ERR_LOG_FILE: () => new errors.LogFileError('/nope/app.log', 'directory /nope does not exist'),
  MPX_ERR_HOOK: () => new errors.HookError('muxInput', new Error('kaboom')),
  MPX_ERR_HOOK_TIMEOUT: () => new errors.HookTimeoutError('preLoopHook', 30_000),
  MPX_ERR_SERVER_CLOSED: () => new errors.ServerClosedError('start() in state closed'),
  MPX_ERR_LIMIT: () => new errors.LimitError('max_input_buffer', '2000000 bytes of input not consumed'),
  MPX_ERR_NOT_BUFFERED: () => new errors.OutputNotBufferedError('killOutput', '#3 [127.0.0.1]:51234'),
  MPX_ERR_MUX_HANDLE: () =>
    new errors.MuxHandleError('add', 'takes a net.Socket (a TCP or unix stream), got Socket'),
};

const codes = Object.keys(errorCodes) as Code[];

describe('errorCodes', () => {
  it.each(codes)('%s builds an error with that code, of its registered class', (code) => {
    const err = build[code]();
    expect(err.code).toBe(code);
    expect(err).toBeInstanceOf(MultiplexError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(errorCodes[code]);
    expect(err.name).toBe(errorCodes[code].name);
    expect(err.message.length).toBeGreaterThan(0);
  });

  it('has one entry per exported class that extends MultiplexError', () => {
    const subclasses = Object.values(errors).filter(
      (value): value is typeof MultiplexError =>
        typeof value === 'function' && value.prototype instanceof MultiplexError,
    );
    expect(subclasses.length).toBe(codes.length);
    expect(new Set(Object.values(errorCodes))).toEqual(new Set(subclasses));
  });

  it('uses every code once', () => {
    const built = codes.map((code) => build[code]().code);
    expect(new Set(built).size).toBe(codes.length);
  });

  it('keeps the cause of a wrapped error', () => {
    const cause = new Error('kaboom');
    const err = new errors.HookError('muxInput', cause);
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('hook muxInput failed: kaboom');
  });
});

describe('the errors page, docs/reference/errors.md', () => {
  const page = readFileSync(
    join(import.meta.dirname, '..', '..', '..', '..', 'docs', 'reference', 'errors.md'),
    'utf8',
  );

  it.each(codes)('lists %s', (code) => {
    expect(page).toMatch(new RegExp(`\\b${code}\\b`));
  });

  it('lists no MPX_ERR_ code that does not exist', () => {
    const listed = new Set(page.match(/\bMPX_ERR_[A-Z_]+\b/g) ?? []);
    expect([...listed].filter((code) => !(code in errorCodes))).toEqual([]);
  });
});
