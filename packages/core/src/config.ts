/**
 * config — every source of options merged by Net::Server's precedence, validated once, frozen.
 *
 * Precedence, highest first, as Net::Server's `configure`: constructor arguments, the command
 * line, run() arguments, the conf_file, defaultValues(), then the schema's own defaults. A key
 * set by a higher source is never touched by a lower one, and a list key is one key: the highest
 * source that has it supplies the whole list (Net::Server's `%previously_set`). As in Perl, an
 * undefined value, or an empty list, counts as not set.
 *
 * The conf_file itself is named by the constructor, command line or run() arguments, else by
 * defaultValues() (Net::Server's `configure` looks in the same places), and is resolved against
 * `cwd`. A conf_file line naming another conf_file is not followed.
 *
 * Every source may also set the Net::Server options that netplex accepts outside the schema
 * (net-server-options.ts): a mapped one is set as the netplex option it stands for, in its own
 * source, before the merge; the others only give the notices loadConfig returns.
 */
import { resolve } from 'node:path';
import * as z from 'zod';
import { type KnownKeys, type OptionValues, parseArgv } from './argv.js';
import { parseConfFile, readConfFile } from './conf-file.js';
import {
  ConfigError,
  type ConfigSource,
  MissingOptionError,
  UnknownOptionError,
  UnsupportedOptionError,
} from './errors.js';
import { describeElementType, describeType, isListSchema } from './help.js';
import {
  acceptedKeys,
  type ConfigNotice,
  chrootAdvice,
  mapNetServerOptions,
  netServerNotices,
} from './net-server-options.js';
import { suggestKey } from './suggest.js';

/** ConfigSources are the places options come from, named as Net::Server names them. */
export interface ConfigSources {
  /**
   * Arguments to the server's constructor: they win over everything else. (Every object inherits
   * a `constructor` function, so the type admits Function and loadConfig reads only an own
   * property.)
   */
  constructor?: Readonly<Record<string, unknown>> | Function | undefined;
  /** The command line, without node and the script (`process.argv.slice(2)`). */
  argv?: readonly string[] | undefined;
  /** Arguments to run(). */
  run?: Readonly<Record<string, unknown>> | undefined;
  /** What the server's defaultValues() returns: below the conf_file, above schema defaults. */
  defaults?: Readonly<Record<string, unknown>> | undefined;
  /** Accepted so one sources object can travel; no option is read from the environment (Net::Server reads none). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Directory a relative conf_file is resolved against; `process.cwd()` when unset. */
  cwd?: string | undefined;
  /**
   * What a conf_file key that the shape does not know does: 'error' (the default) throws
   * UnknownOptionError; 'skip' leaves it to a reader that knows it. The supervisor skips when it
   * reloads: a key the new code adds is the new worker's to validate.
   */
  confUnknown?: 'error' | 'skip' | undefined;
  /**
   * The conf_file's text, read already: parsed instead of reading the file. A supervisor passes its
   * workers the text it validated, so that a worker restarted after a crash runs the configuration
   * in force, not one edited on disk since (which only a reload takes up).
   */
  confText?: string | undefined;
}

/** Config is the validated configuration of an options shape. */
export type Config<S extends z.ZodRawShape> = z.infer<z.ZodObject<S>>;

/** LoadedConfig is what loadConfig returns: the deep-frozen config and the unused arguments. */
export interface LoadedConfig<S extends z.ZodRawShape> {
  readonly config: Config<S>;
  /** Command-line arguments that are not options, in order, for the server to read. */
  readonly rest: string[];
  /**
   * What netplex does with the Net::Server options it was given that it does not do as Net::Server
   * does (net-server-options.ts), one line each: for the caller to log once per start.
   */
  readonly notices: readonly ConfigNotice[];
  /** Where each key's value came from; a key left at its schema default has none. */
  readonly sources: ReadonlyMap<string, ConfigSource>;
  /** The conf_file's text, when one was read (or given as `confText`). */
  readonly confText?: string;
}

/** OptionKeys are the keys of a shape, and which of them take lists. */
export interface OptionKeys {
  readonly known: ReadonlySet<string>;
  readonly list: ReadonlySet<string>;
}

/** optionKeysOf lists a shape's keys; a key whose schema is an array is a list key. */
export function optionKeysOf(shape: z.ZodRawShape): OptionKeys {
  const known = new Set(Object.keys(shape));
  const list = new Set([...known].filter((key) => isListSchema(shape[key]!)));
  return { known, list };
}

/**
 * Options Net::Server has and netplex refuses, each with what to do instead. They stay in the
 * schema so that an old conf file gets this advice rather than "unknown option".
 */
const unsupportedOptions: Readonly<Record<string, string>> = { chroot: chrootAdvice };

/**
 * One key's value from one source; `sources` holds per-element sources for a list from text, and
 * `mappedFrom` the Net::Server option a mapped value stands for.
 */
interface Setting {
  readonly value: unknown;
  readonly source: ConfigSource;
  readonly sources?: readonly ConfigSource[] | undefined;
  readonly mappedFrom?: string | undefined;
}

type Layer = Map<string, Setting>;

/** The keys a source may set: the schema's, widened by acceptedKeys; and which take lists. */
interface AcceptedKeys {
  readonly known: KnownKeys;
  readonly list: ReadonlySet<string>;
}

function layerFromCode(
  record: Readonly<Record<string, unknown>> | undefined,
  source: ConfigSource,
  keys: AcceptedKeys,
): Layer {
  const layer: Layer = new Map();
  if (record === undefined || record === null) return layer;
  for (const key of Object.keys(record)) {
    if (!keys.known.has(key)) {
      throw new UnknownOptionError({ key, source, suggestion: suggestKey(key, keys.known) });
    }
    const value = record[key];
    if (value === undefined || value === null) continue;
    if (keys.list.has(key)) {
      // Net::Server turns a scalar given for a list key into a one-element list.
      const list = Array.isArray(value) ? value : [value];
      if (list.length > 0) layer.set(key, { value: list, source });
    } else {
      layer.set(key, { value, source });
    }
  }
  return layer;
}

function layerFromText(values: OptionValues): Layer {
  const layer: Layer = new Map();
  for (const [key, v] of values) layer.set(key, { value: v.value, source: v.source, sources: v.sources });
  return layer;
}

/** What an issue says was expected, phrased to follow "expected". */
function describeExpected(schema: z.core.$ZodType, issue: z.core.$ZodIssue, element: boolean): string {
  const label = element ? describeElementType(schema) : describeType(schema);
  switch (issue.code) {
    case 'custom':
      // Refinements in options.ts phrase their message as what they expect.
      return issue.message;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      if (issue.origin === 'string' && issue.code === 'too_small' && Number(bound) === 1) {
        return `${label} (not empty)`;
      }
      if (label.includes(String(bound))) return label;
      const inclusive = issue.inclusive !== false;
      const word =
        issue.code === 'too_small'
          ? inclusive
            ? 'at least'
            : 'more than'
          : inclusive
            ? 'at most'
            : 'less than';
      return `${label} (${word} ${String(bound)})`;
    }
    case 'invalid_type':
    case 'invalid_union':
    case 'invalid_value':
      return label;
    default:
      return `${label} (${issue.message})`;
  }
}

function validate(key: string, schema: z.core.$ZodType, setting: Setting, isList: boolean): unknown {
  let result: ReturnType<typeof z.safeParse>;
  try {
    result = z.safeParse(schema, setting.value);
  } catch (err) {
    // A custom schema's transform threw instead of reporting an issue.
    throw new ConfigError(
      { key, source: setting.source, value: setting.value, expected: describeType(schema) },
      { cause: err },
    );
  }
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const first = issue.path[0];
  const index = isList && typeof first === 'number' && Array.isArray(setting.value) ? first : undefined;
  throw new ConfigError({
    key,
    source: (index === undefined ? undefined : setting.sources?.[index]) ?? setting.source,
    value: index === undefined ? setting.value : (setting.value as unknown[])[index],
    expected: describeExpected(schema, issue, index !== undefined),
    issues: result.error.issues,
  });
}

function isPlainContainer(value: unknown): value is object {
  if (Array.isArray(value)) return true;
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** deepFreeze freezes plain objects and arrays all the way down; class instances are left alone. */
function deepFreeze<T>(value: T): T {
  if (!isPlainContainer(value) || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}

/**
 * loadConfig merges every source of options by Net::Server's precedence (constructor > command
 * line > run() > conf_file > defaultValues() > schema defaults), validates each key with its own
 * schema, and returns the deep-frozen config with the command-line arguments left over.
 *
 * Throws UnknownOptionError (with the closest known key), ConfigError (naming key, source,
 * value and expectation), ConfigSyntaxError, ConfigFileError, MissingOptionError, or
 * UnsupportedOptionError (chroot). A Net::Server option outside the schema is no error: what
 * netplex does with it is in `notices`.
 */
export function loadConfig<S extends z.ZodRawShape>(shape: S, sources: ConfigSources = {}): LoadedConfig<S> {
  const keys = optionKeysOf(shape);
  const accepted: AcceptedKeys = { known: acceptedKeys(keys.known), list: keys.list };
  // Every object has an inherited `constructor`; only an own property is the constructor source.
  const fromConstructor = Object.hasOwn(sources, 'constructor') ? sources.constructor : undefined;
  const constructorLayer = layerFromCode(
    typeof fromConstructor === 'function' ? undefined : fromConstructor,
    { kind: 'constructor' },
    accepted,
  );
  const argv = sources.argv === undefined ? undefined : parseArgv(sources.argv, accepted.known, keys.list);
  const argvLayer = argv === undefined ? new Map() : layerFromText(argv.values);
  const runLayer = layerFromCode(sources.run, { kind: 'run()' }, accepted);
  const defaultsLayer = layerFromCode(sources.defaults, { kind: 'defaultValues()' }, accepted);

  let confLayer: Layer = new Map();
  let confText: string | undefined;
  const confSetting = [constructorLayer, argvLayer, runLayer, defaultsLayer]
    .map((layer) => layer.get('conf_file'))
    .find((setting) => setting !== undefined);
  if (confSetting !== undefined && shape.conf_file !== undefined) {
    const file = validate('conf_file', shape.conf_file, confSetting, false);
    if (typeof file === 'string' && file !== '') {
      const text = sources.confText ?? readConfFile(resolve(sources.cwd ?? process.cwd(), file));
      confText = text;
      confLayer = layerFromText(parseConfFile(text, file, accepted.known, keys.list, sources.confUnknown));
    }
  }

  const layers = [constructorLayer, argvLayer, runLayer, confLayer, defaultsLayer];
  mapNetServerOptions(layers, keys.known);
  const entries: [string, unknown][] = [];
  const settled = new Map<string, Setting>();
  for (const key of keys.known) {
    const schema = shape[key]!;
    const setting = layers.map((layer) => layer.get(key)).find((s) => s !== undefined);
    if (setting !== undefined) settled.set(key, setting);
    if (setting === undefined) {
      const result = z.safeParse(schema, undefined);
      if (!result.success) throw new MissingOptionError(key, describeType(schema));
      entries.push([key, result.data]);
      continue;
    }
    const advice = unsupportedOptions[key];
    if (advice !== undefined && setting.value !== '') {
      throw new UnsupportedOptionError({ key, source: setting.source, value: setting.value, advice });
    }
    entries.push([key, validate(key, schema, setting, keys.list.has(key))]);
  }
  // The Net::Server options outside the schema, each with its highest source's setting.
  const given = new Map<string, Setting>();
  for (const layer of [...layers].reverse())
    for (const [key, setting] of layer) if (!keys.known.has(key)) given.set(key, setting);
  const values: Record<string, unknown> = Object.fromEntries(entries);
  const { notices, replaced } = netServerNotices(given, settled, values);
  for (const [key, value] of replaced) values[key] = value;
  const config = deepFreeze(values) as Config<S>;
  const rest = argv === undefined ? [] : [...argv.rest];
  const found = new Map([...settled].map(([key, setting]) => [key, setting.source]));
  const loaded = { config, rest, notices, sources: found };
  return confText === undefined ? loaded : { ...loaded, confText };
}
