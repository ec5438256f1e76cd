/**
 * argv — Net::Server's command line: `--key=value`, `--key value`, `key=value`, and `--flag`.
 *
 * Pure: strings in, strings out; the schema validates later (config.ts). Net::Server's
 * `process_args` leaves anything it does not recognise in @ARGV for the server; netplex does the
 * same for positionals, but an unknown `--option` is an error, since every option a server takes
 * is declared in its schema and a silent typo (`--log_lvel=4`) is worse than a refusal.
 */
import { type ConfigSource, ConfigSyntaxError, UnknownOptionError } from './errors.js';
import { suggestKey } from './suggest.js';

/** OptionValue is one key's raw value from a text source, with where each part came from. */
export interface OptionValue {
  /** A string for a scalar key; one string per occurrence, in order, for a list key. */
  readonly value: string | readonly string[];
  /** Where the value came from: for a list, where its first element came from. */
  readonly source: ConfigSource;
  /** Where each element came from, index for index (one entry for a scalar). */
  readonly sources: readonly ConfigSource[];
}

/**
 * KnownKeys are the keys a source may set, as the parsers ask: a membership test, and the keys a
 * suggestion is chosen from. A Set is one; so is the schema's keys widened by the Net::Server
 * options netplex accepts outside it (net-server-options.ts), which also takes keys by prefix.
 */
export interface KnownKeys extends Iterable<string> {
  has(key: string): boolean;
}

/** OptionValues maps each key found in a text source to its raw value. */
export type OptionValues = Map<string, OptionValue>;

/** ArgvResult is what parseArgv found: the known options, and everything else in order. */
export interface ArgvResult {
  readonly values: OptionValues;
  /** Arguments that are not options, left for the server as Net::Server leaves them in @ARGV. */
  readonly rest: string[];
}

/** The characters of a key, as Perl's `\w+` (ASCII) plus `-` for kebab-case aliases. */
const KEY = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;

/** An argument that looks like an option, so `--key` before it takes no value (Net::Server's `/^--\w+/`). */
const OPTION_LIKE = /^--[A-Za-z0-9_]/;

/**
 * resolveKey maps a key as written to the declared key: exact first, then the kebab-case alias
 * (`log-file` for `log_file`). Returns undefined for an unknown key.
 */
export function resolveKey(name: string, knownKeys: KnownKeys): string | undefined {
  if (knownKeys.has(name)) return name;
  const snake = name.replaceAll('-', '_');
  return knownKeys.has(snake) ? snake : undefined;
}

/**
 * addOptionValue records one occurrence of a key the way Net::Server's `process_args` does within
 * one source: a list key accumulates, a scalar key given again takes the last value.
 */
export function addOptionValue(
  values: OptionValues,
  listKeys: ReadonlySet<string>,
  key: string,
  value: string,
  source: ConfigSource,
): void {
  const previous = values.get(key);
  if (listKeys.has(key) && previous !== undefined) {
    values.set(key, {
      value: [...(previous.value as readonly string[]), value],
      source: previous.source,
      sources: [...previous.sources, source],
    });
  } else {
    values.set(key, { value: listKeys.has(key) ? [value] : value, source, sources: [source] });
  }
}

/**
 * parseArgv takes Net::Server's options out of a command line.
 *
 * - `--key=value`, `--key value` (also as one argument with a space) and `key=value`;
 *   `--log-file` is an alias of `log_file`.
 * - `--key` with nothing after it, or followed by another `--option`, means `1` (a flag).
 * - A list key may repeat and accumulates; a scalar key given twice keeps the last value.
 * - `--` ends the options: everything after it goes to `rest` untouched.
 * - An unknown `--key` throws UnknownOptionError naming the closest known key; an unknown
 *   `key=value` throws only when it is close to a known key, and otherwise goes to `rest`, as do
 *   positionals and single-dash arguments.
 */
export function parseArgv(
  argv: readonly string[],
  knownKeys: KnownKeys,
  listKeys: ReadonlySet<string>,
): ArgvResult {
  const values: OptionValues = new Map();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const body = arg.slice(2);
      const split = body.search(/[= ]/);
      const name = split === -1 ? body : body.slice(0, split);
      if (name === '') {
        throw new ConfigSyntaxError({ kind: 'command line', arg }, arg, '--key=value, --key value or --key');
      }
      const key = resolveKey(name, knownKeys);
      if (key === undefined) {
        throw new UnknownOptionError({
          key: name,
          source: { kind: 'command line', arg },
          suggestion: suggestKey(name, knownKeys),
          shown: `--${name}`,
        });
      }
      if (split !== -1) {
        addOptionValue(values, listKeys, key, body.slice(split + 1), { kind: 'command line', arg });
        continue;
      }
      const next = argv[i + 1];
      if (next === undefined || next === '--' || OPTION_LIKE.test(next)) {
        addOptionValue(values, listKeys, key, '1', { kind: 'command line', arg });
      } else {
        addOptionValue(values, listKeys, key, next, { kind: 'command line', arg: `${arg} ${next}` });
        i++;
      }
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? '' : arg.slice(0, eq);
    if (!KEY.test(name)) {
      rest.push(arg);
      continue;
    }
    const key = resolveKey(name, knownKeys);
    if (key !== undefined) {
      addOptionValue(values, listKeys, key, arg.slice(eq + 1), { kind: 'command line', arg });
      continue;
    }
    const suggestion = suggestKey(name, knownKeys);
    if (suggestion !== undefined) {
      throw new UnknownOptionError({ key: name, source: { kind: 'command line', arg }, suggestion });
    }
    rest.push(arg);
  }
  return { values, rest };
}
