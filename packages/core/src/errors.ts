/**
 * errors — every error netplex's core throws, each with a stable literal `code`.
 *
 * Codes are never reused once retired. `test/unit/errors.test.ts` checks that each entry of
 * `errorCodes` matches its class and that docs/reference/errors.md lists every code.
 */

/** Where a configuration value came from, so that an error can point at it. */
export type ConfigSource =
  | { kind: 'constructor' }
  | { kind: 'command line'; arg?: string }
  | { kind: 'run()' }
  | { kind: 'conf_file'; file: string; line: number }
  | { kind: 'defaultValues()' }
  | { kind: 'code' };

/** describeSource renders a source the way error messages name it. */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case 'conf_file':
      return `${showInput(source.file)}:${source.line}`;
    case 'command line':
      return source.arg === undefined ? 'command line' : `command line (${showInput(source.arg)})`;
    case 'constructor':
      return 'constructor arguments';
    case 'run()':
      return 'run() arguments';
    case 'defaultValues()':
      return 'defaultValues()';
    case 'code':
      return 'code';
  }
}

/** MultiplexError is the base class of every error thrown by @netplex/core. */
export class MultiplexError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** ConfigError names the key, where its value came from, the value and what was expected. */
export class ConfigError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG';
  readonly key: string;
  readonly source: ConfigSource;
  readonly value: unknown;
  readonly expected: string;
  /** Validation issues from zod, when the value failed the schema. */
  readonly issues: readonly unknown[];
  constructor(
    details: {
      key: string;
      source: ConfigSource;
      value?: unknown;
      expected: string;
      issues?: readonly unknown[];
    },
    options?: { cause?: unknown },
  ) {
    const shown = details.value === undefined ? '' : `, got ${formatValue(details.value)}`;
    super(
      'MPX_ERR_CONFIG',
      `${describeSource(details.source)}: ${showInput(details.key)}: expected ${escapeControls(details.expected)}${shown}`,
      options,
    );
    this.key = details.key;
    this.source = details.source;
    this.value = details.value;
    this.expected = details.expected;
    this.issues = details.issues ?? [];
  }
}

/** UnknownOptionError is a key that no option schema declares; it names the closest known key. */
export class UnknownOptionError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG_UNKNOWN_OPTION';
  readonly key: string;
  readonly source: ConfigSource;
  /** The closest known key, when one is close enough to be the intended one. */
  readonly suggestion: string | undefined;
  constructor(details: {
    key: string;
    source: ConfigSource;
    suggestion?: string | undefined;
    shown?: string;
  }) {
    const hint = details.suggestion === undefined ? '' : `; did you mean ${showInput(details.suggestion)}?`;
    super(
      'MPX_ERR_CONFIG_UNKNOWN_OPTION',
      `${describeSource(details.source)}: unknown option ${showInput(details.shown ?? details.key)}${hint}`,
    );
    this.key = details.key;
    this.source = details.source;
    this.suggestion = details.suggestion;
  }
}

/** ConfigSyntaxError is a command-line argument or conf_file line that is not an option at all. */
export class ConfigSyntaxError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG_SYNTAX';
  readonly source: ConfigSource;
  readonly text: string;
  constructor(source: ConfigSource, text: string, expected: string) {
    super(
      'MPX_ERR_CONFIG_SYNTAX',
      `${describeSource(source)}: expected ${escapeControls(expected)}, got ${formatValue(text)}`,
    );
    this.source = source;
    this.text = text;
  }
}

/** MissingOptionError is a required option (no default) that no source set. */
export class MissingOptionError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG_MISSING';
  readonly key: string;
  readonly expected: string;
  constructor(key: string, expected: string) {
    super(
      'MPX_ERR_CONFIG_MISSING',
      `${key}: required option not set: expected ${expected}; set it in the constructor, with --${key}=VALUE, ` +
        'in run(), in a conf_file or in defaultValues()',
    );
    this.key = key;
    this.expected = expected;
  }
}

/** UnsupportedOptionError is a Net::Server option that netplex cannot honour; it says what to use instead. */
export class UnsupportedOptionError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG_UNSUPPORTED';
  readonly key: string;
  readonly source: ConfigSource;
  readonly value: unknown;
  constructor(details: { key: string; source: ConfigSource; value: unknown; advice: string }) {
    super(
      'MPX_ERR_CONFIG_UNSUPPORTED',
      `${describeSource(details.source)}: ${showInput(details.key)} ${formatValue(details.value)} is not supported: ${details.advice}`,
    );
    this.key = details.key;
    this.source = details.source;
    this.value = details.value;
  }
}

/** ConfigFileError is raised when a conf_file cannot be read at all. */
export class ConfigFileError extends MultiplexError {
  declare readonly code: 'MPX_ERR_CONFIG_FILE';
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('MPX_ERR_CONFIG_FILE', `conf_file ${showInput(file)}: ${escapeControls(reason)}`, options);
    this.file = file;
  }
}

/** PortSpecError is a port, host, proto or ipv value that Net::Server::Proto's syntax does not allow. */
export class PortSpecError extends MultiplexError {
  declare readonly code: 'MPX_ERR_PORT_SPEC';
  readonly spec: string;
  constructor(spec: string, reason: string, options?: { cause?: unknown }) {
    super('MPX_ERR_PORT_SPEC', `port ${quoteInput(spec)}: ${escapeControls(reason)}`, options);
    this.spec = spec;
  }
}

/** BindError is a listen target that could not be bound (address in use, permission, live unix socket). */
export class BindError extends MultiplexError {
  declare readonly code: 'MPX_ERR_BIND';
  readonly target: string;
  constructor(target: string, reason: string, options?: { cause?: unknown }) {
    super('MPX_ERR_BIND', `cannot bind ${showInput(target)}: ${escapeControls(reason)}`, options);
    this.target = target;
  }
}

/** LogFileError is a log_file that cannot be opened for appending. */
export class LogFileError extends MultiplexError {
  declare readonly code: 'MPX_ERR_LOG_FILE';
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('MPX_ERR_LOG_FILE', `log_file ${showInput(file)}: ${escapeControls(reason)}`, options);
    this.file = file;
  }
}

/** HookError wraps an exception thrown (or a promise rejected) by a user's hook. */
export class HookError extends MultiplexError {
  declare readonly code: 'MPX_ERR_HOOK';
  readonly hook: string;
  constructor(hook: string, cause: unknown) {
    const reason =
      cause === undefined || cause === null
        ? `rejected with ${String(cause)}`
        : cause instanceof Error
          ? cause.message
          : String(cause);
    super('MPX_ERR_HOOK', `hook ${hook} failed: ${reason}`, { cause });
    this.hook = hook;
  }
}

/** HookTimeoutError is a start-up hook that never settled. */
export class HookTimeoutError extends MultiplexError {
  declare readonly code: 'MPX_ERR_HOOK_TIMEOUT';
  readonly hook: string;
  constructor(hook: string, ms: number) {
    super(
      'MPX_ERR_HOOK_TIMEOUT',
      `hook ${hook} did not settle within ${ms} ms: did it return a promise that never resolves?`,
    );
    this.hook = hook;
  }
}

/** ServerClosedError is work refused because the server is closing or closed. */
export class ServerClosedError extends MultiplexError {
  declare readonly code: 'MPX_ERR_SERVER_CLOSED';
  constructor(what: string) {
    super('MPX_ERR_SERVER_CLOSED', `${what}: the server is closed`);
  }
}

/** LimitError is a client that went past one of the configured bounds. */
export class LimitError extends MultiplexError {
  declare readonly code: 'MPX_ERR_LIMIT';
  readonly limit: string;
  constructor(limit: string, detail: string) {
    super('MPX_ERR_LIMIT', `${limit} exceeded: ${detail}`);
    this.limit = limit;
  }
}

/**
 * OutputNotBufferedError is `mux.outbuffer` or `mux.killOutput` called for a client in the default
 * output mode, whose output is with its socket, where it can no longer be read back or withdrawn.
 */
export class OutputNotBufferedError extends MultiplexError {
  declare readonly code: 'MPX_ERR_NOT_BUFFERED';
  constructor(call: string, client: string) {
    super(
      'MPX_ERR_NOT_BUFFERED',
      `mux.${call}(): client ${client} is not in buffered mode (its output is with the socket); call mux.bufferOutput(client) first, in muxConnection`,
    );
  }
}

/**
 * MuxHandleError is a mux call given a handle it cannot take: `mux.add` of something that is no
 * stream socket, or of a closed one, or `mux.setCallbackObject` for a client not in the mux.
 */
export class MuxHandleError extends MultiplexError {
  declare readonly code: 'MPX_ERR_MUX_HANDLE';
  constructor(call: string, detail: string) {
    super('MPX_ERR_MUX_HANDLE', `mux.${call}(): ${detail}`);
  }
}

/** errorCodes maps each code to its class; the registry test checks it against docs/reference/errors.md. */
export const errorCodes = {
  MPX_ERR_CONFIG: ConfigError,
  MPX_ERR_CONFIG_FILE: ConfigFileError,
  MPX_ERR_CONFIG_UNKNOWN_OPTION: UnknownOptionError,
  MPX_ERR_CONFIG_SYNTAX: ConfigSyntaxError,
  MPX_ERR_CONFIG_MISSING: MissingOptionError,
  MPX_ERR_CONFIG_UNSUPPORTED: UnsupportedOptionError,
  MPX_ERR_PORT_SPEC: PortSpecError,
  MPX_ERR_BIND: BindError,
  MPX_ERR_LOG_FILE: LogFileError,
  MPX_ERR_HOOK: HookError,
  MPX_ERR_HOOK_TIMEOUT: HookTimeoutError,
  MPX_ERR_SERVER_CLOSED: ServerClosedError,
  MPX_ERR_LIMIT: LimitError,
  MPX_ERR_NOT_BUFFERED: OutputNotBufferedError,
  MPX_ERR_MUX_HANDLE: MuxHandleError,
} as const;

/** The escapes JSON.stringify uses for the C0 characters that have a short form. */
const shortEscapes: Readonly<Record<number, string>> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
};

/**
 * escapeControls replaces every character a terminal may act on instead of showing with its
 * escape, in JSON's spelling: C0 controls (`\n`, `\t`, `\u001b`), DEL and C1 controls
 * (`\u007f`, `\u0085`), U+2028 and U+2029, and lone surrogates (`\ud800`). Other text,
 * backslashes included, is left as it is.
 */
function escapeControls(text: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    } else if (
      !(c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 || (c >= 0xdc00 && c <= 0xdfff))
    ) {
      continue;
    }
    out += text.slice(start, i) + (shortEscapes[c] ?? `\\u${c.toString(16).padStart(4, '0')}`);
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

/** quoteInput renders text taken from input as a JSON string literal with every control character escaped. */
function quoteInput(text: string): string {
  return escapeControls(JSON.stringify(text));
}

/** showInput leaves text taken from input bare when it has nothing to escape, and quotes it otherwise. */
function showInput(text: string): string {
  return escapeControls(text) === text ? text : quoteInput(text);
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return quoteInput(value);
  try {
    return escapeControls(JSON.stringify(value) ?? String(value));
  } catch {
    // BigInts and cycles defeat JSON; an object without a prototype defeats String() too.
    try {
      return escapeControls(String(value));
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
}

/**
 * isConfigurationError tells a bad configuration (an option, a conf file, a port spec) from other
 * failures: commands exit 2 for it, as for any usage error.
 */
export function isConfigurationError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('MPX_ERR_CONFIG') || code === 'MPX_ERR_PORT_SPEC');
}
