import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  describeDefault,
  describeElementType,
  describeOption,
  describeType,
  formatHelp,
  innerSchema,
  isListSchema,
} from '../../src/help.js';
import { flag, serverOptions } from '../../src/options.js';

describe('describeType', () => {
  it.each<[string, z.ZodType, string]>([
    ['a string', z.string(), 'string'],
    ['a number', z.number(), 'number'],
    ['a coerced integer', z.coerce.number().int(), 'integer'],
    ['an integer range', z.number().int().min(1).max(9), 'integer 1-9'],
    ['a lower bound', z.number().min(0), 'number >= 0'],
    ['an upper bound', z.number().max(5), 'number <= 5'],
    ['a boolean', z.boolean(), 'bool'],
    ['a Net::Server flag', flag(), 'bool'],
    ['an enum', z.enum(['tcp', 'udp', 'unix']), 'tcp|udp|unix'],
    ['literals', z.literal(['4', 6]), '4|6'],
    ['a union', z.union([z.string(), z.number()]), 'string|number'],
    ['a union repeating a type', z.union([z.string(), z.string().min(3)]), 'string'],
    ['a list', z.array(z.string()), 'list of string'],
    ['an object', z.object({ a: z.string() }), 'object'],
    ['a default', z.string().default('x'), 'string'],
    ['an optional', z.number().optional(), 'number'],
    ['a transform', z.string().transform((s) => s.length), 'string'],
    ['a meta label', z.number().meta({ type: 'seconds' }), 'seconds'],
    ['a meta label outside a default', z.number().default(1).meta({ type: 'bytes' }), 'bytes'],
    ['a meta label inside a default', z.number().meta({ type: 'bytes' }).default(1), 'bytes'],
    ['another type', z.date(), 'date'],
  ])('%s is %j', (_name, schema, expected) => {
    expect(describeType(schema)).toBe(expected);
  });

  it.each<[keyof typeof serverOptions, string]>([
    ['log_level', '0-4'],
    ['port', 'port spec'],
    ['host', 'list of string'],
    ['ipv', 'list of string|number'],
    ['listen', 'integer 1-65535'],
    ['background', 'bool'],
    ['reverse_lookups', 'bool|double|double-detail|double-autofail|double-debug'],
    ['max_connections', 'integer >= 0'],
    ['check_for_dequeue', 'seconds'],
  ])('serverOptions.%s is %j', (key, expected) => {
    expect(describeType(serverOptions[key])).toBe(expected);
  });

  it('describes list elements by the list’s label, or by the element type', () => {
    expect(describeElementType(serverOptions.port)).toBe('port spec');
    expect(describeElementType(serverOptions.host)).toBe('string');
    expect(describeElementType(serverOptions.log_level)).toBe('0-4');
  });
});

describe('isListSchema and innerSchema', () => {
  it.each<[string, z.ZodType, boolean]>([
    ['an array with a default', z.array(z.string()).default([]), true],
    ['a preprocessed array', z.preprocess((v) => v, z.array(z.string())), true],
    ['a string', z.string().optional(), false],
    ['a flag', flag().default(false), false],
  ])('%s is a list: %s', (_name, schema, expected) => {
    expect(isListSchema(schema)).toBe(expected);
  });

  it('unwraps defaults, optionals and pipes', () => {
    expect(innerSchema(serverOptions.background)._zod.def.type).toBe('boolean');
    expect(innerSchema(serverOptions.log_level)._zod.def.type).toBe('number');
  });
});

describe('describeDefault and describeOption', () => {
  it.each<[string, z.ZodType, string | undefined]>([
    ['a number', z.number().default(2), '2'],
    ['a list', z.array(z.number()).default([20203, 20204]), '20203,20204'],
    ['an empty list', z.array(z.string()).default([]), '(none)'],
    ['an empty string', z.string().default(''), '""'],
    ['a boolean', flag().default(false), 'false'],
    ['an object', z.object({ a: z.number() }).default({ a: 1 }), '{"a":1}'],
    ['an optional default', z.string().default('x').optional(), 'x'],
    ['no default', z.string().optional(), undefined],
    ['a required option', z.string(), undefined],
  ])('the default of %s is %j', (_name, schema, expected) => {
    expect(describeDefault(schema)).toBe(expected);
  });

  it('reads .describe() through .meta()', () => {
    expect(describeOption(serverOptions.log_level)).toBe('0 err, 1 warning, 2 notice, 3 info, 4 debug');
    expect(describeOption(z.string())).toBe('');
  });
});

describe('formatHelp', () => {
  const help = formatHelp(serverOptions, { usage: 'netplex run server.ts [--key=value ...]' });
  const lines = help.split('\n');
  const optionLines = lines.filter((line) => line.startsWith('  --'));

  it('opens with the usage line', () => {
    expect(lines[0]).toBe('Usage: netplex run server.ts [--key=value ...]');
  });

  it('leaves the usage line out when none is given', () => {
    expect(formatHelp(serverOptions).startsWith('Options:')).toBe(true);
  });

  it('lists every option, once, in schema order', () => {
    expect(optionLines.map((line) => line.trim().split(/\s+/)[0])).toEqual(
      Object.keys(serverOptions).map((key) => `--${key}`),
    );
  });

  it.each<[string, RegExp]>([
    ['log_level', /^ {2}--log_level +0-4 +2 +0 err, 1 warning, 2 notice, 3 info, 4 debug$/],
    ['port', /^ {2}--port +port spec +20203 +port spec to bind: .*repeatable$/],
    ['host', /^ {2}--host +list of string +\* +default host for ports/],
    ['allow', /^ {2}--allow +list of string +\(none\) +regex a client address/],
    ['background', /^ {2}--background +bool +false +detach from the terminal once bound$/],
    ['user', /^ {2}--user +string +- +user \(name or uid\)/],
  ])('shows %s with its type, default and description', (key, pattern) => {
    expect(optionLines.find((line) => line.startsWith(`  --${key} `))).toMatch(pattern);
  });

  it('aligns the columns', () => {
    const header = lines.find((line) => line.includes('DESCRIPTION'))!;
    const at = header.indexOf('DESCRIPTION');
    const aligned = optionLines.filter((line) => !line.includes('double-autofail|'));
    for (const line of aligned) {
      expect(line[at - 1], line).toBe(' ');
      expect(line[at], line).not.toBe(' ');
    }
    expect(aligned.length).toBe(optionLines.length - 1);
  });

  it('lets an overlong cell push only its own line', () => {
    const line = optionLines.find((l) => l.startsWith('  --reverse_lookups '))!;
    expect(line).toContain('double-debug  false  look up the host name');
  });

  it('covers a server class’s own options', () => {
    const text = formatHelp({
      greeting: z.string().default('hello').describe('what to say first'),
      room: z.array(z.string()).describe('rooms to open'),
    });
    expect(text).toContain('  --greeting  string          hello    what to say first\n');
    expect(text).toContain('  --room      list of string  -        rooms to open\n');
  });
});
