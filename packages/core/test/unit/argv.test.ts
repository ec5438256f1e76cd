import { describe, expect, it } from 'vitest';
import { type OptionValues, parseArgv, resolveKey } from '../../src/argv.js';
import { ConfigSyntaxError, UnknownOptionError } from '../../src/errors.js';
import { listKeys, serverOptions } from '../../src/options.js';

const known = new Set(Object.keys(serverOptions));

/** plain turns the values map into `{ key: value }` for comparison. */
function plain(values: OptionValues): Record<string, string | readonly string[]> {
  return Object.fromEntries([...values].map(([key, v]) => [key, v.value]));
}

function parse(argv: string[]) {
  const { values, rest } = parseArgv(argv, known, listKeys);
  return { values: plain(values), rest };
}

describe('parseArgv', () => {
  it.each<[string, string[], Record<string, string | string[]>, string[]]>([
    ['--key=value', ['--log_level=3'], { log_level: '3' }, []],
    ['--key value', ['--log_level', '3'], { log_level: '3' }, []],
    ['key=value', ['log_level=3'], { log_level: '3' }, []],
    ['"--key value" as one argument', ['--log_file /tmp/a b'], { log_file: '/tmp/a b' }, []],
    ['a value keeps its = and blanks', ['--allow=^a=b c$'], { allow: ['^a=b c$'] }, []],
    ['kebab-case --key=value', ['--log-file=/tmp/x'], { log_file: '/tmp/x' }, []],
    ['kebab-case --key value', ['--max-input-buffer', '10'], { max_input_buffer: '10' }, []],
    ['kebab-case key=value', ['cidr-allow=10.0.0.0/8'], { cidr_allow: ['10.0.0.0/8'] }, []],
    ['--flag at the end is 1', ['--background'], { background: '1' }, []],
    ['--flag before --option is 1', ['--setsid', '--background'], { setsid: '1', background: '1' }, []],
    [
      '--flag before --unknown-looking option',
      ['--setsid', '--log-level=2'],
      { setsid: '1', log_level: '2' },
      [],
    ],
    ['--flag before -- is 1', ['--setsid', '--', 'x'], { setsid: '1' }, ['x']],
    ['a single-dash value is taken', ['--log_level', '-1'], { log_level: '-1' }, []],
    ['an empty value after =', ['--user='], { user: '' }, []],
    ['--key takes the next argument whatever it is', ['--user', 'port=1'], { user: 'port=1' }, []],
    ['a list key accumulates', ['--port=2000', '--port=2001'], { port: ['2000', '2001'] }, []],
    [
      'a list key accumulates across forms',
      ['--port', '1', 'port=2', '--port=3'],
      { port: ['1', '2', '3'] },
      [],
    ],
    ['a scalar key given twice keeps the last', ['--log_level=1', '--log_level=3'], { log_level: '3' }, []],
    [
      'ports and hosts pair up in order',
      ['--port=8080', '--host=127.0.0.1', '--port=8080', '--host=::1'],
      { port: ['8080', '8080'], host: ['127.0.0.1', '::1'] },
      [],
    ],
    ['positionals stay in rest', ['start', '--log_level=1', 'now'], { log_level: '1' }, ['start', 'now']],
    ['a bare known key is a positional', ['port', '80'], {}, ['port', '80']],
    ['single-dash arguments stay in rest', ['-v', '-port'], {}, ['-v', '-port']],
    ['unknown key=value far from any key stays', ['name=value', 'a b=c'], {}, ['name=value', 'a b=c']],
    ['=value with no key stays', ['=x'], {}, ['=x']],
    [
      '-- ends the options',
      ['--log_level=1', '--', '--log_level=2', '--bogus'],
      { log_level: '1' },
      ['--log_level=2', '--bogus'],
    ],
    ['empty argv', [], {}, []],
    ['an empty argument stays', [''], {}, ['']],
  ])('%s', (_name, argv, values, rest) => {
    expect(parse(argv)).toEqual({ values, rest });
  });

  it('records the command-line source of each value', () => {
    const { values } = parseArgv(['--log_level', '3', '--port=1', 'port=2', '--setsid'], known, listKeys);
    expect(values.get('log_level')).toEqual({
      value: '3',
      source: { kind: 'command line', arg: '--log_level 3' },
      sources: [{ kind: 'command line', arg: '--log_level 3' }],
    });
    expect(values.get('port')?.sources).toEqual([
      { kind: 'command line', arg: '--port=1' },
      { kind: 'command line', arg: 'port=2' },
    ]);
    expect(values.get('setsid')?.source).toEqual({ kind: 'command line', arg: '--setsid' });
  });

  it('does not modify its argument', () => {
    const argv = ['--port=1', 'x'];
    parseArgv(argv, known, listKeys);
    expect(argv).toEqual(['--port=1', 'x']);
  });

  it.each<[string[], typeof UnknownOptionError | typeof ConfigSyntaxError, string, string]>([
    [
      ['--log_lvel=3'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (--log_lvel=3): unknown option --log_lvel; did you mean log_level?',
    ],
    [
      ['--log-lvel', '3'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (--log-lvel): unknown option --log-lvel; did you mean log_level?',
    ],
    [
      ['--prot', '80'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (--prot): unknown option --prot; did you mean port?',
    ],
    [
      ['--frobnicate'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (--frobnicate): unknown option --frobnicate',
    ],
    [
      ['log_lvel=3'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (log_lvel=3): unknown option log_lvel; did you mean log_level?',
    ],
    [
      ['--=3'],
      ConfigSyntaxError,
      'MPX_ERR_CONFIG_SYNTAX',
      'command line (--=3): expected --key=value, --key value or --key, got "--=3"',
    ],
    [
      ['x', '---port=1'],
      UnknownOptionError,
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      'command line (---port=1): unknown option ---port; did you mean port?',
    ],
  ])('%j throws %s', (argv, type, code, message) => {
    let caught: unknown;
    try {
      parseArgv(argv, known, listKeys);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(type);
    expect(caught).toMatchObject({ code, message });
  });

  it('names the suggestion and the key on the error', () => {
    expect(() => parseArgv(['--log_lvel=3'], known, listKeys)).toThrow(
      expect.objectContaining({ key: 'log_lvel', suggestion: 'log_level' }),
    );
  });
});

describe('resolveKey', () => {
  const keys = new Set(['log_file', 'my-opt']);
  it.each([
    ['log_file', 'log_file'],
    ['log-file', 'log_file'],
    ['my-opt', 'my-opt'],
    ['my_opt', undefined],
    ['logfile', undefined],
  ])('%j is %j', (name, key) => {
    expect(resolveKey(name, keys)).toBe(key);
  });
});
