import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type ConfigSources, loadConfig, optionKeysOf } from '../../src/config.js';
import {
  ConfigError,
  ConfigFileError,
  ConfigSyntaxError,
  MissingOptionError,
  UnknownOptionError,
  UnsupportedOptionError,
} from '../../src/errors.js';
import { serverOptions } from '../../src/options.js';

const dir = mkdtempSync(join(tmpdir(), 'netplex-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** confFile writes `text` to a fresh conf file and returns its absolute path. */
function confFile(text: string): string {
  const file = join(dir, `c${++files}.conf`);
  writeFileSync(file, text);
  return file;
}

/** caught runs `fn` and returns what it threw. */
function caught(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error, but none was thrown');
}

type Layer = 'constructor' | 'argv' | 'run' | 'conf_file' | 'defaults' | 'schema';
const layers: Layer[] = ['constructor', 'argv', 'run', 'conf_file', 'defaults', 'schema'];

/** A scalar and a list value for each source, all different, each as that source writes it. */
const scalarValues: Record<Layer, { code?: number; text?: string; expected: number }> = {
  constructor: { code: 10, expected: 10 },
  argv: { text: '11', expected: 11 },
  run: { code: 12, expected: 12 },
  conf_file: { text: '13', expected: 13 },
  defaults: { code: 14, expected: 14 },
  schema: { expected: 511 },
};
const listValues: Record<Layer, { values: (string | number)[]; expected: (string | number)[] }> = {
  constructor: { values: [1001], expected: [1001] },
  argv: { values: ['2001', '2002'], expected: ['2001', '2002'] },
  run: { values: [3001, 3002, 3003], expected: [3001, 3002, 3003] },
  conf_file: { values: ['4001', '4002'], expected: ['4001', '4002'] },
  defaults: { values: ['5001'], expected: ['5001'] },
  schema: { values: [], expected: [20203] },
};

/** sourcesWith sets `listen` and `port` in each of `which`; the conf_file is named by defaultValues(). */
function sourcesWith(which: Layer[]): ConfigSources {
  const ctor: Record<string, unknown> = {};
  const argv: string[] = [];
  const run: Record<string, unknown> = {};
  const defaults: Record<string, unknown> = {};
  const conf: string[] = [];
  for (const layer of which) {
    const scalar = scalarValues[layer];
    const list = listValues[layer].values;
    if (layer === 'constructor') Object.assign(ctor, { listen: scalar.code, port: list });
    if (layer === 'run') Object.assign(run, { listen: scalar.code, port: list });
    if (layer === 'defaults') Object.assign(defaults, { listen: scalar.code, port: list });
    if (layer === 'argv') argv.push(`--listen=${scalar.text}`, ...list.map((p) => `--port=${p}`));
    if (layer === 'conf_file') conf.push(`listen ${scalar.text}`, ...list.map((p) => `port ${p}`));
  }
  if (which.includes('conf_file')) defaults.conf_file = confFile(`${conf.join('\n')}\n`);
  return { constructor: ctor, argv, run, defaults };
}

const pairs = layers.flatMap((high, i) => layers.slice(i + 1).map((low) => [high, low] as const));

describe('loadConfig precedence: constructor > command line > run() > conf_file > defaultValues() > schema', () => {
  it.each(pairs)('%s wins over %s for a scalar key', (high, low) => {
    const { config } = loadConfig(serverOptions, sourcesWith([high, low]));
    expect(config.listen).toBe(scalarValues[high].expected);
  });

  it.each(pairs)('%s wins over %s for a list key, supplying the whole list', (high, low) => {
    const { config } = loadConfig(serverOptions, sourcesWith([high, low]));
    expect(config.port).toEqual(listValues[high].expected);
  });

  it.each(layers)('with every source from %s down, %s wins', (top) => {
    const { config } = loadConfig(serverOptions, sourcesWith(layers.slice(layers.indexOf(top))));
    expect(config.listen).toBe(scalarValues[top].expected);
    expect(config.port).toEqual(listValues[top].expected);
  });

  it('each key is decided on its own', () => {
    const { config } = loadConfig(serverOptions, {
      constructor: { user: 'ctor' },
      argv: ['--group=argv'],
      run: { user: 'run', group: 'run', pid_file: '/run.pid' },
      defaults: { conf_file: confFile('user conf\ngroup conf\npid_file /conf.pid\nlog_file /conf.log\n') },
    });
    expect(config).toMatchObject({
      user: 'ctor',
      group: 'argv',
      pid_file: '/run.pid',
      log_file: '/conf.log',
    });
  });

  it.each<[string, ConfigSources]>([
    ['undefined', { constructor: { user: undefined, port: undefined }, run: { user: 'run', port: 1 } }],
    ['null', { constructor: { user: null, port: null }, run: { user: 'run', port: 1 } }],
    [
      'an empty list (as in Perl)',
      { constructor: { user: undefined, port: [] }, run: { user: 'run', port: [1] } },
    ],
  ])('a value that is %s counts as not set', (_name, sources) => {
    const { config } = loadConfig(serverOptions, sources);
    expect(config.user).toBe('run');
    expect(config.port).toEqual([1]);
  });

  it('an empty string is a value, and wins', () => {
    expect(
      loadConfig(serverOptions, { constructor: { chroot: '' }, run: { chroot: '/x' } }).config.chroot,
    ).toBe('');
  });
});

describe('loadConfig values', () => {
  it("reads Net::Server's documented sample test.conf", () => {
    const file = fileURLToPath(new URL('../fixtures/test.conf', import.meta.url));
    const { config } = loadConfig(serverOptions, { argv: [`--conf_file=${file}`] });
    expect(config).toMatchObject({
      conf_file: file,
      user: 'somebody',
      group: 'everybody',
      log_file: '/var/log/server.log',
      log_level: 3,
      pid_file: '/tmp/server.pid',
      allow: ['.+\\.(net|com)', 'domain\\.com'],
      deny: ['a.+'],
      cidr_allow: ['127.0.0.0/8', '192.0.2.0/24'],
      cidr_deny: ['192.0.2.4/30'],
      background: true,
      host: ['127.0.0.1'],
      ipv: ['IPv6'],
      port: ['localhost:20204/IPv4', '20205'],
      reverse_lookups: false,
    });
  });

  it('applies schema defaults when nothing is set', () => {
    const { config, rest } = loadConfig(serverOptions);
    expect(config).toMatchObject({ log_level: 2, port: [20203], host: ['*'], proto: ['tcp'], listen: 511 });
    expect(config.conf_file).toBeUndefined();
    expect(rest).toEqual([]);
  });

  it('accumulates a repeated list key on the command line', () => {
    expect(loadConfig(serverOptions, { argv: ['--port=2000', '--port=2001'] }).config.port).toEqual([
      '2000',
      '2001',
    ]);
  });

  it('keeps ports and hosts in order for the port-spec module to pair', () => {
    const { config } = loadConfig(serverOptions, {
      argv: ['--port=8080', '--host=127.0.0.1', '--port=8080', '--host=::1'],
    });
    expect(config.port).toEqual(['8080', '8080']);
    expect(config.host).toEqual(['127.0.0.1', '::1']);
  });

  it.each<[string[], Record<string, unknown>]>([
    [['--log-level=4'], { log_level: 4 }],
    [['--log-file', '/tmp/x.log'], { log_file: '/tmp/x.log' }],
    [['max-input-buffer=64'], { max_input_buffer: 64 }],
    [['--cidr-allow=10.0.0.0/8'], { cidr_allow: ['10.0.0.0/8'] }],
    [['--no-client-stdout'], { no_client_stdout: true }],
  ])('kebab-case %j', (argv, expected) => {
    expect(loadConfig(serverOptions, { argv }).config).toMatchObject(expected);
  });

  it.each<[string[], boolean]>([
    [['--background'], true],
    [['--background', '--setsid'], true],
    [['--background=0'], false],
    [['--background', 'off'], false],
    [['--background=yes'], true],
  ])('flag %j is %s', (argv, expected) => {
    expect(loadConfig(serverOptions, { argv }).config.background).toBe(expected);
  });

  it('turns a scalar given in code for a list key into a one-element list', () => {
    const { config } = loadConfig(serverOptions, { constructor: { port: 8080, host: '::1' } });
    expect(config.port).toEqual([8080]);
    expect(config.host).toEqual(['::1']);
  });

  it('accepts port objects from code', () => {
    const port = { port: 8080, host: '127.0.0.1', proto: 'tcp' };
    expect(loadConfig(serverOptions, { run: { port: [port, '8081'] } }).config.port).toEqual([port, '8081']);
  });

  it('returns the arguments that are not options', () => {
    const { rest } = loadConfig(serverOptions, { argv: ['start', '--port=1', 'now', '--', '--port=2'] });
    expect(rest).toEqual(['start', 'now', '--port=2']);
  });

  it('returns a deep-frozen config', () => {
    const { config } = loadConfig(serverOptions, { constructor: { port: [{ port: 1 }] } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.port)).toBe(true);
    expect(Object.isFrozen(config.port[0])).toBe(true);
    expect(Object.isFrozen(config.allow)).toBe(true);
    expect(() => {
      (config as { log_level: number }).log_level = 4;
    }).toThrow(TypeError);
  });

  it('does not freeze what the caller passed in', () => {
    const ports = [8080];
    loadConfig(serverOptions, { constructor: { port: ports } });
    expect(Object.isFrozen(ports)).toBe(false);
  });

  it('ignores the constructor every object inherits', () => {
    const sources: ConfigSources = {};
    expect(loadConfig(serverOptions, sources).config.log_level).toBe(2);
  });

  it('types the config from the shape', () => {
    const { config } = loadConfig(serverOptions);
    expectTypeOf(config.log_level).toEqualTypeOf<number>();
    expectTypeOf(config.background).toEqualTypeOf<boolean>();
    expectTypeOf(config.user).toEqualTypeOf<string | undefined>();
  });
});

describe('loadConfig conf_file', () => {
  it.each<[string, (file: string) => ConfigSources]>([
    ['the constructor', (file) => ({ constructor: { conf_file: file } })],
    ['the command line', (file) => ({ argv: ['--conf_file', file] })],
    ['run()', (file) => ({ run: { conf_file: file } })],
    ['defaultValues()', (file) => ({ defaults: { conf_file: file } })],
  ])('is named by %s', (_name, sources) => {
    expect(loadConfig(serverOptions, sources(confFile('user nobody\n'))).config.user).toBe('nobody');
  });

  it('is the one named by the highest source', () => {
    const { config } = loadConfig(serverOptions, {
      argv: [`--conf_file=${confFile('user argv\n')}`],
      run: { conf_file: confFile('user run\n') },
      defaults: { conf_file: confFile('user defaults\n') },
    });
    expect(config.user).toBe('argv');
  });

  it('is resolved against cwd', () => {
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(join(dir, 'etc', 'rel.conf'), 'user relative\n');
    const { config } = loadConfig(serverOptions, { argv: ['--conf_file=etc/rel.conf'], cwd: dir });
    expect(config.user).toBe('relative');
    expect(config.conf_file).toBe('etc/rel.conf');
  });

  it('does not follow a conf_file line inside a conf_file', () => {
    const inner = confFile('user inner\n');
    const outer = confFile(`conf_file ${inner}\ngroup outer\n`);
    const { config } = loadConfig(serverOptions, { defaults: { conf_file: outer } });
    expect(config.user).toBeUndefined();
    expect(config.group).toBe('outer');
  });

  it('is parsed from confText when given, and the text read is returned', () => {
    const file = confFile('user on-disk\n');
    const given = loadConfig(serverOptions, { argv: [`--conf_file=${file}`], confText: 'user given\n' });
    expect(given.config.user).toBe('given');
    expect(given.confText).toBe('user given\n');
    expect(loadConfig(serverOptions, { argv: [`--conf_file=${file}`] }).confText).toBe('user on-disk\n');
    expect(loadConfig(serverOptions, {}).confText).toBeUndefined();
  });

  it('throws ConfigFileError when missing', () => {
    const file = join(dir, 'missing.conf');
    const err = caught(() => loadConfig(serverOptions, { argv: [`--conf_file=${file}`] }));
    expect(err).toBeInstanceOf(ConfigFileError);
    expect(err.message).toBe(`conf_file ${file}: no such file`);
  });

  it('throws ConfigError when conf_file itself is not a file name', () => {
    const err = caught(() => loadConfig(serverOptions, { run: { conf_file: 42 } }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe('run() arguments: conf_file: expected string, got 42');
  });

  it('is not read when the shape has no conf_file option', () => {
    const shape = { name: z.string().default('x') };
    expect(() => loadConfig(shape, { argv: ['--conf_file=/nonexistent'] })).toThrow(UnknownOptionError);
  });
});

describe('loadConfig errors', () => {
  it.each<[string, () => ConfigSources, string]>([
    [
      'conf_file',
      () => ({ defaults: { conf_file: join(dir, 'bad.conf') } }),
      `${join(dir, 'bad.conf')}:2: log_level: expected 0-4, got "9"`,
    ],
    [
      'command line --key=value',
      () => ({ argv: ['--log_level=9'] }),
      'command line (--log_level=9): log_level: expected 0-4, got "9"',
    ],
    [
      'command line --key value',
      () => ({ argv: ['--log_level', '9'] }),
      'command line (--log_level 9): log_level: expected 0-4, got "9"',
    ],
    [
      'command line key=value',
      () => ({ argv: ['log_level=9'] }),
      'command line (log_level=9): log_level: expected 0-4, got "9"',
    ],
    [
      'constructor',
      () => ({ constructor: { log_level: 9 } }),
      'constructor arguments: log_level: expected 0-4, got 9',
    ],
    ['run()', () => ({ run: { log_level: '9' } }), 'run() arguments: log_level: expected 0-4, got "9"'],
    [
      'defaultValues()',
      () => ({ defaults: { log_level: 'debug' } }),
      'defaultValues(): log_level: expected 0-4, got "debug"',
    ],
  ])('a bad value from %s names the source, key, expectation and value', (_name, sources, message) => {
    writeFileSync(join(dir, 'bad.conf'), 'user nobody\nlog_level 9\n');
    const err = caught(() => loadConfig(serverOptions, sources()));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('MPX_ERR_CONFIG');
    expect(err.message).toBe(message);
    expect((err as ConfigError).issues.length).toBeGreaterThan(0);
  });

  it.each<[string, ConfigSources | (() => ConfigSources), string]>([
    [
      'a list element names its own conf_file line',
      () => ({ defaults: { conf_file: confFile('cidr_allow 10.0.0.0/8\n\ncidr_allow 10.0.0.0/33\n') } }),
      ':3: cidr_allow: expected a CIDR block such as 127.0.0.0/8 or ::1/128, got "10.0.0.0/33"',
    ],
    [
      'a list element names its own argument',
      { argv: ['--allow=^a', '--allow', '(b'] },
      'command line (--allow (b): allow: expected a regular expression (Invalid regular expression: /(b/: Unterminated group), got "(b"',
    ],
    [
      'a port object from code',
      { constructor: { port: [80, { port: 81, nope: 1 }] } },
      'constructor arguments: port: expected port spec (Unrecognized key: "nope"), got {"port":81,"nope":1}',
    ],
    [
      'an integer out of range',
      { argv: ['--listen=0'] },
      'command line (--listen=0): listen: expected integer 1-65535, got "0"',
    ],
    [
      'not a number',
      { argv: ['--listen=lots'] },
      'command line (--listen=lots): listen: expected integer 1-65535, got "lots"',
    ],
    [
      'a labelled range',
      { run: { max_input_buffer: 0 } },
      'run() arguments: max_input_buffer: expected bytes (at least 1), got 0',
    ],
    [
      'not a flag',
      { argv: ['--background', 'start'] },
      'command line (--background start): background: expected bool, got "start"',
    ],
    [
      'not one of a union',
      { argv: ['--reverse_lookups=triple'] },
      'command line (--reverse_lookups=triple): reverse_lookups: expected bool|double|double-detail|double-autofail|double-debug, got "triple"',
    ],
    [
      'an empty string',
      { argv: ['--user='] },
      'command line (--user=): user: expected string (not empty), got ""',
    ],
    [
      'an array for a scalar key',
      { constructor: { user: ['a', 'b'] } },
      'constructor arguments: user: expected string, got ["a","b"]',
    ],
  ])('%s', (_name, sources, message) => {
    const err = caught(() => loadConfig(serverOptions, typeof sources === 'function' ? sources() : sources));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message.slice(-message.length)).toBe(message);
  });

  it.each<[string, ConfigSources, string]>([
    [
      'constructor',
      { constructor: { log_lvel: 3 } },
      'constructor arguments: unknown option log_lvel; did you mean log_level?',
    ],
    ['run()', { run: { prot: 80 } }, 'run() arguments: unknown option prot; did you mean port?'],
    [
      'defaultValues()',
      { defaults: { 'log-file': '/x' } },
      'defaultValues(): unknown option log-file; did you mean log_file?',
    ],
    [
      'constructor, far from any key',
      { constructor: { verbose: true } },
      'constructor arguments: unknown option verbose',
    ],
    [
      'command line',
      { argv: ['--backgroud'] },
      'command line (--backgroud): unknown option --backgroud; did you mean background?',
    ],
    [
      'a losing source',
      { constructor: { user: 'a' }, defaults: { usr: 'b' } },
      'defaultValues(): unknown option usr; did you mean user?',
    ],
  ])('an unknown key in %s names the closest known key', (_name, sources, message) => {
    const err = caught(() => loadConfig(serverOptions, sources));
    expect(err).toBeInstanceOf(UnknownOptionError);
    expect(err.code).toBe('MPX_ERR_CONFIG_UNKNOWN_OPTION');
    expect(err.message).toBe(message);
  });

  it('an unknown key in a conf_file names file and line', () => {
    const file = confFile('user a\nlog_lvel 3\n');
    const err = caught(() => loadConfig(serverOptions, { defaults: { conf_file: file } }));
    expect(err).toBeInstanceOf(UnknownOptionError);
    expect(err.message).toBe(`${file}:2: unknown option log_lvel; did you mean log_level?`);
  });

  it('a conf_file line that is not "key value" is a syntax error', () => {
    const file = confFile('[server]\n');
    const err = caught(() => loadConfig(serverOptions, { defaults: { conf_file: file } }));
    expect(err).toBeInstanceOf(ConfigSyntaxError);
    expect(err.message).toBe(`${file}:1: expected "key value", got "[server]"`);
  });

  it.each<[string, () => ConfigSources, string]>([
    ['the constructor', () => ({ constructor: { chroot: '/var/empty' } }), 'constructor arguments'],
    ['the command line', () => ({ argv: ['--chroot=/var/empty'] }), 'command line (--chroot=/var/empty)'],
    ['run()', () => ({ run: { chroot: '/var/empty' } }), 'run() arguments'],
    ['a conf_file', () => ({ defaults: { conf_file: confFile('chroot /var/empty\n') } }), '.conf:1'],
    ['defaultValues()', () => ({ defaults: { chroot: '/var/empty' } }), 'defaultValues()'],
  ])('chroot from %s is refused with what to use instead', (_name, sources, where) => {
    const err = caught(() => loadConfig(serverOptions, sources()));
    expect(err).toBeInstanceOf(UnsupportedOptionError);
    expect(err.code).toBe('MPX_ERR_CONFIG_UNSUPPORTED');
    expect(err.message).toContain(
      `${where}: chroot "/var/empty" is not supported: netplex cannot chroot on Node.js`,
    );
    expect(err.message).toContain('RootDirectory=');
    expect(err.message).toContain('container');
  });
});

describe('loadConfig with a server class’s own options', () => {
  const shape = {
    ...serverOptions,
    greeting: z.string().default('hello').describe('what to say first'),
    room: z.array(z.string()).default([]).describe('rooms to open; repeatable'),
    'max-rooms': z.coerce.number().int().min(1).default(10),
    secret: z.string().min(1).describe('shared secret'),
  };

  it('treats them as every other option', () => {
    const { config } = loadConfig(shape, {
      argv: ['--greeting=hi', '--room=a', '--room', 'b', '--max-rooms=3'],
      defaults: { secret: 's', conf_file: confFile('room c\ngreeting conf\n') },
    });
    expect(config).toMatchObject({
      greeting: 'hi',
      room: ['a', 'b'],
      'max-rooms': 3,
      secret: 's',
      log_level: 2,
    });
    expectTypeOf(config.room).toEqualTypeOf<string[]>();
    expectTypeOf(config.greeting).toEqualTypeOf<string>();
  });

  it('finds list keys from the schema', () => {
    const { list } = optionKeysOf(shape);
    expect([...list].sort()).toEqual(
      [
        'allow',
        'cidr_allow',
        'cidr_deny',
        'deny',
        'host',
        'ipv',
        'port',
        'proto',
        'room',
        'sig_passthrough',
      ].sort(),
    );
  });

  it('suggests them for typos', () => {
    expect(() => loadConfig(shape, { argv: ['--greting=x'] })).toThrow(
      'command line (--greting=x): unknown option --greting; did you mean greeting?',
    );
  });

  it('throws MissingOptionError for a required option nobody set', () => {
    const err = caught(() => loadConfig(shape, {}));
    expect(err).toBeInstanceOf(MissingOptionError);
    expect(err.code).toBe('MPX_ERR_CONFIG_MISSING');
    expect(err.message).toBe(
      'secret: required option not set: expected string; set it in the constructor, with --secret=VALUE, ' +
        'in run(), in a conf_file or in defaultValues()',
    );
  });

  it('wraps a schema that throws instead of reporting an issue', () => {
    const boom = new Error('boom');
    const throwing = {
      odd: z.string().transform(() => {
        throw boom;
      }),
    };
    const err = caught(() => loadConfig(throwing, { run: { odd: 'x' } }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe('run() arguments: odd: expected string, got "x"');
    expect(err.cause).toBe(boom);
  });
});
