/**
 * help — `--help` text generated from the option schema, so the reference cannot drift. The
 * options page (options-reference.ts) is rendered from the same rows, describeOptions.
 *
 * Each option's type comes from `.meta({ type })` when the schema gives one, else from the zod
 * type itself; its description from `.describe()`; its default from `.default()`.
 */
import * as z from 'zod';

type AnySchema = z.core.$ZodType;

/** Wrappers that change neither what a user types nor what the option means. */
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

function defOf(schema: AnySchema): Record<string, unknown> & { type: string } {
  return schema._zod.def as unknown as Record<string, unknown> & { type: string };
}

// The global registry holds `.describe()` and `.meta()` data, inherited along clones.
function metaType(schema: AnySchema): string | undefined {
  const type = z.globalRegistry.get(schema)?.type;
  return typeof type === 'string' ? type : undefined;
}

/**
 * typedSideOf picks the side of a pipe that says what the option takes: what comes out of it
 * (z.preprocess(fn, s) is pipe(transform, s), and a.pipe(b) checks b last), except for
 * s.transform(fn), which is pipe(s, transform) and takes what s takes.
 */
function typedSideOf(def: Record<string, unknown>): AnySchema {
  const output = def.out as AnySchema;
  return defOf(output).type === 'transform' ? (def.in as AnySchema) : output;
}

/**
 * innerSchema strips defaults, optionals and preprocessing to the schema a value is checked
 * against: the element of interest for help and error messages.
 */
export function innerSchema(schema: AnySchema): AnySchema {
  let current = schema;
  for (let next = unwrapOnce(current); next !== undefined; next = unwrapOnce(current)) current = next;
  return current;
}

/** unwrapOnce takes one wrapper (default, optional, pipe…) off a schema, or says there is none. */
function unwrapOnce(schema: AnySchema): AnySchema | undefined {
  const def = defOf(schema);
  if (WRAPPERS.has(def.type)) return def.innerType as AnySchema;
  if (def.type === 'pipe') return typedSideOf(def);
  return undefined;
}

/** isListSchema tells whether an option takes a list (one value per occurrence). */
export function isListSchema(schema: AnySchema): boolean {
  return defOf(innerSchema(schema)).type === 'array';
}

function describeNumber(schema: AnySchema): string {
  const n = schema as unknown as { isInt?: boolean; minValue?: number | null; maxValue?: number | null };
  const name = n.isInt === true ? 'integer' : 'number';
  const min =
    typeof n.minValue === 'number' && n.minValue > -Number.MAX_SAFE_INTEGER ? n.minValue : undefined;
  const max = typeof n.maxValue === 'number' && n.maxValue < Number.MAX_SAFE_INTEGER ? n.maxValue : undefined;
  if (min !== undefined && max !== undefined) return `${name} ${min}-${max}`;
  if (min !== undefined) return `${name} >= ${min}`;
  if (max !== undefined) return `${name} <= ${max}`;
  return name;
}

/** Unwraps `schema` to its inner type, stopping early at the outermost `.meta({ type })` label. */
function labelOrInner(schema: AnySchema): { label?: string; inner: AnySchema } {
  for (let current: AnySchema | undefined = schema; current !== undefined; current = unwrapOnce(current)) {
    const label = metaType(current);
    if (label !== undefined) return { label, inner: innerSchema(current) };
  }
  return { inner: innerSchema(schema) };
}

/**
 * describeType names what an option takes: the `.meta({ type })` label of the outermost schema
 * that has one, else `number`, `integer 1-65535`, `bool`, `string`, `list of …`, or the allowed
 * values joined by `|`.
 */
export function describeType(schema: AnySchema): string {
  const { label, inner } = labelOrInner(schema);
  if (label !== undefined) return label;
  const def = defOf(inner);
  switch (def.type) {
    case 'number':
      return describeNumber(inner);
    case 'boolean':
      return 'bool';
    case 'string':
      return 'string';
    case 'enum':
      return Object.values(def.entries as Record<string, string | number>).join('|');
    case 'literal':
      return (def.values as unknown[]).map((v) => String(v)).join('|');
    case 'union':
      return [...new Set((def.options as AnySchema[]).map(describeType))].join('|');
    case 'array':
      return `list of ${describeType(def.element as AnySchema)}`;
    case 'object':
      return 'object';
    default:
      return def.type;
  }
}

/**
 * describeElementType names what one element of a list option takes: the list's own
 * `.meta({ type })` label (`port spec`) when it has one, since that label describes the elements.
 */
export function describeElementType(schema: AnySchema): string {
  const { label, inner } = labelOrInner(schema);
  if (label !== undefined) return label;
  const def = defOf(inner);
  return def.type === 'array' ? describeType(def.element as AnySchema) : describeType(inner);
}

/** describeDefault renders an option's default value, or undefined when it has none. */
export function describeDefault(schema: AnySchema): string | undefined {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'default' || def.type === 'prefault') return formatDefault(def.defaultValue);
    if (!WRAPPERS.has(def.type)) return undefined;
    current = def.innerType as AnySchema;
  }
}

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.map(formatDefault).join(',');
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** describeOption is an option's `.describe()` text, or the empty string. */
export function describeOption(schema: AnySchema): string {
  return z.globalRegistry.get(schema)?.description ?? '';
}

/** OptionReference is what `--help` and the options page show of one option. */
export interface OptionReference {
  /** The key: `--name` on the command line, `name` in a conf_file. */
  readonly name: string;
  /** What the option takes, as describeType names it. */
  readonly type: string;
  /** The default as describeDefault renders it, or undefined when there is none. */
  readonly default: string | undefined;
  /** The `.describe()` text, or the empty string. */
  readonly description: string;
}

/** describeOptions lists every option of a shape, in schema order: the rows of `--help`. */
export function describeOptions(shape: Readonly<Record<string, AnySchema>>): OptionReference[] {
  return Object.entries(shape).map(([name, schema]) => ({
    name,
    type: describeType(schema),
    default: describeDefault(schema),
    description: describeOption(schema),
  }));
}

const COLUMN_CAP = 26;

/** HelpOptions configures formatHelp. */
export interface HelpOptions {
  /** The usage line, e.g. `netplex run server.ts [--key=value ...]`; omitted when unset. */
  usage?: string;
}

/**
 * formatHelp renders one aligned line per option: `--key`, its type, its default and its
 * description, in schema order.
 */
export function formatHelp(shape: Readonly<Record<string, AnySchema>>, options: HelpOptions = {}): string {
  const rows = describeOptions(shape).map((option) => [
    `--${option.name}`,
    option.type,
    option.default ?? '-',
    option.description,
  ]);
  const header = ['OPTION', 'TYPE', 'DEFAULT', 'DESCRIPTION'];
  // A column is as wide as its widest cell, up to a cap: one long union type should push only its
  // own line's description to the right, not every line's.
  const widths = [0, 1, 2].map((c) =>
    Math.min(COLUMN_CAP, Math.max(header[c]!.length, ...rows.map((r) => r[c]!.length))),
  );
  const line = (cells: string[]) => {
    let text = '  ';
    let column = 2;
    for (const [c, cell] of cells.entries()) {
      if (c > 0) text = text.length > column - 2 ? `${text}  ` : text.padEnd(column);
      text += cell;
      column += (widths[c] ?? 0) + 2;
    }
    return text.trimEnd();
  };
  const out: string[] = [];
  if (options.usage !== undefined) out.push(`Usage: ${options.usage}`, '');
  out.push(
    'Options: --key=VALUE or --key VALUE on the command line, "key VALUE" lines in a conf_file;',
    'a list option repeats, once per value.',
    '',
    line(header),
    ...rows.map(line),
  );
  return `${out.join('\n')}\n`;
}
