/**
 * Errors that quote input (conf file names, lines, keys and values, command-line arguments, port
 * specs) show its control characters escaped, never raw: a message must be safe to print to a
 * terminal. NETPLEX_FUZZ_SEED replays the random cases (a failure prints the seed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigFileError, PortSpecError } from '../../src/errors.js';
import { serverOptions } from '../../src/options.js';
import { parsePortSpec } from '../../src/port-spec.js';
import { mulberry32, fuzzSeed as seed } from '../helpers/fuzz.js';

/** C0 (tab and newline included: no configuration message spans lines), DEL, C1, U+2028/9. */
const RAW_CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
/** A surrogate not part of a pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const dir = mkdtempSync(join(tmpdir(), 'netplex-quoted-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** messageOf runs `fn` and returns the message of the error it throws, or undefined if it returns. */
function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

function expectSafe(message: string | undefined): asserts message is string {
  expect(message).toBeTypeOf('string');
  expect(message).not.toMatch(RAW_CONTROL);
  expect(message).not.toMatch(LONE_SURROGATE);
}

function loadConf(name: string, content: string | Buffer): string | undefined {
  writeFileSync(join(dir, name), content);
  return messageOf(() => loadConfig(serverOptions, { argv: [`--conf_file=${name}`], cwd: dir }));
}

describe('a conf file', () => {
  it('escapes a control character in its name, and in a value, in the error naming file:line', () => {
    const message = loadConf('bad\x1b[2J.conf', 'port 20203\nlog_level 3\x07\x7f\u0085x\n');
    expectSafe(message);
    expect(message).toBe('"bad\\u001b[2J.conf":2: log_level: expected 0-4, got "3\\u0007\\u007f\\u0085x"');
  });

  it('escapes a key with ESC in the quoted line', () => {
    const message = loadConf('key.conf', 'port 20203\nlo\x1bg_level 3\n');
    expectSafe(message);
    expect(message).toBe('key.conf:2: expected "key value", got "lo\\u001bg_level 3"');
  });

  it('escapes C1 and DEL in a line that is not `key value`', () => {
    const message = loadConf('line.conf', '\u009b31m\x7f\n');
    expectSafe(message);
    expect(message).toBe('line.conf:1: expected "key value", got "\\u009b31m\\u007f"');
  });

  it('escapes a control character in the name of a file it cannot read', () => {
    const message = messageOf(() =>
      loadConfig(serverOptions, { argv: ['--conf_file=missing\x1b.conf'], cwd: dir }),
    );
    expectSafe(message);
    expect(message).toBe(`conf_file ${JSON.stringify(join(dir, 'missing\u001b.conf'))}: no such file`);
  });

  it('of random bytes throws, if at all, a message naming file:line with no raw control character', () => {
    const next = mulberry32(seed);
    const int = (n: number) => Math.floor(next() * n);
    for (let run = 0; run < 300; run++) {
      const bytes = Buffer.alloc(1 + int(80));
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
      // Half the cases put the bytes after a known key, so that they reach the option schemas.
      const prefix = run % 2 === 0 ? '' : ['log_level ', 'port ', 'host ', 'allow ', 'chroot '][int(5)]!;
      const content = Buffer.concat([Buffer.from(prefix), bytes]);
      const message = loadConf('random.conf', content);
      if (message === undefined) continue;
      const context = `seed ${seed}, run ${run}: ${JSON.stringify(content.toString('latin1'))}`;
      expect(message, context).not.toMatch(RAW_CONTROL);
      expect(message, context).not.toMatch(LONE_SURROGATE);
      expect(message, context).toMatch(/^random\.conf:\d+: /);
    }
  });
});

describe('the command line', () => {
  it('escapes a value with ESC in the source and the value', () => {
    const message = messageOf(() => loadConfig(serverOptions, { argv: ['--log_level=\x1b[31m'] }));
    expectSafe(message);
    expect(message).toBe(
      'command line ("--log_level=\\u001b[31m"): log_level: expected 0-4, got "\\u001b[31m"',
    );
  });

  it('escapes a value given as the next argument, with C1 and DEL', () => {
    const message = messageOf(() => loadConfig(serverOptions, { argv: ['--log_level', '\u00853\x7f'] }));
    expectSafe(message);
    expect(message).toBe(
      'command line ("--log_level \\u00853\\u007f"): log_level: expected 0-4, got "\\u00853\\u007f"',
    );
  });

  it('escapes an unknown key with control characters', () => {
    const message = messageOf(() => loadConfig(serverOptions, { argv: ['--lo\x1bg\tx=1'] }));
    expectSafe(message);
    expect(message).toBe('command line ("--lo\\u001bg\\tx=1"): unknown option "--lo\\u001bg\\tx"');
  });

  it('escapes a lone surrogate', () => {
    const message = messageOf(() => loadConfig(serverOptions, { argv: ['--log_level=\ud800'] }));
    expectSafe(message);
    expect(message).toContain('got "\\ud800"');
  });

  it('leaves a clean argument bare', () => {
    const message = messageOf(() => loadConfig(serverOptions, { argv: ['--log_level=9'] }));
    expect(message).toBe('command line (--log_level=9): log_level: expected 0-4, got "9"');
  });
});

describe('other errors quoting input', () => {
  it('a port spec with C1 and DEL', () => {
    const message = messageOf(() => parsePortSpec('ho\u009bst:80/tc\x7fp', { host: '', proto: '', ipv: '' }));
    expectSafe(message);
    expect(message).toMatch(/^port "ho\\u009bst:80\/tc\\u007fp": /);
    expect(new PortSpecError('\x1b', 'bad "\x1b"').message).toBe('port "\\u001b": bad "\\u001b"');
  });

  it('a conf file that cannot be read', () => {
    expect(new ConfigFileError('a\nb', 'no such file').message).toBe('conf_file "a\\nb": no such file');
  });
});
