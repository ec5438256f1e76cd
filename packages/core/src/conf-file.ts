/**
 * conf-file — Net::Server's conf_file format, so an existing Net::Server conf file works unchanged.
 *
 * Net::Server's `_read_conf` does, per line:
 *
 *     $line = $1 if $line =~ /(.*?)(?<!\\)#/;   # an unescaped # starts a comment, anywhere
 *     $line =~ s/\\#/#/g;                        # \# is a literal #
 *     push @args, $1, $2 if $line =~ m/^\s*((?:--)?\w+)(?:\s*[=:]\s*|\s+)(.+)/;
 *
 * and hands the pairs to `process_args`, where a list key accumulates and a repeated scalar key
 * keeps its last value. Differences, each on purpose:
 * - Perl silently skips a line it cannot read (junk, a key without a value); here it is an
 *   error naming file and line, and so is an unknown key (with the closest known one).
 * - The value is trimmed at both ends; Perl keeps trailing blanks, so `log_level 3 ` failed its
 *   `/^\d+$/` check and quietly fell back to 2.
 * - `key: value` needs the colon right after the key: Perl's `\s*[=:]` made `host ::1` mean ":1".
 * - `log-file` is accepted as an alias of `log_file`, as on the command line.
 */
import { readFileSync } from 'node:fs';
import { addOptionValue, type KnownKeys, type OptionValues, resolveKey } from './argv.js';
import { ConfigFileError, type ConfigSource, ConfigSyntaxError, UnknownOptionError } from './errors.js';
import { suggestKey } from './suggest.js';

/** A key, then `=` (spaces allowed around it), `:` right after the key, or blanks; then the value. */
const LINE = /^\s*(?:--)?([A-Za-z0-9_][A-Za-z0-9_-]*)(\s*=\s*|:\s*|\s+|$)(.*)$/s;

/** stripComment cuts a line at its first `#` not preceded by a backslash, then unescapes `\#`. */
function stripComment(line: string): string {
  const hash = line.search(/(?<!\\)#/);
  return (hash === -1 ? line : line.slice(0, hash)).replaceAll('\\#', '#');
}

/**
 * parseConfFile reads Net::Server conf_file text: `key value` lines (also `key=value`,
 * `key: value`), `#` comments, blank lines; a list key may repeat. Each value carries its
 * `{ kind: 'conf_file', file, line }` source. Throws UnknownOptionError for an unknown key (unless
 * `unknown` is 'skip': the line is then left for a reader that knows the key) and ConfigSyntaxError
 * for a line that is not `key value`.
 */
export function parseConfFile(
  text: string,
  file: string,
  knownKeys: KnownKeys,
  listKeys: ReadonlySet<string>,
  unknown: 'error' | 'skip' = 'error',
): OptionValues {
  const values: OptionValues = new Map();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const source: ConfigSource = { kind: 'conf_file', file, line: i + 1 };
    const line = stripComment(raw).trim();
    if (line === '') continue;
    const match = LINE.exec(line);
    if (match === null) throw new ConfigSyntaxError(source, raw.trim(), '"key value"');
    const [, name = '', separator = '', rawValue = ''] = match;
    const key = resolveKey(name, knownKeys);
    if (key === undefined) {
      if (unknown === 'skip') continue;
      throw new UnknownOptionError({ key: name, source, suggestion: suggestKey(name, knownKeys) });
    }
    const value = rawValue.trim();
    if (value === '') {
      // A bare `key` (Perl ignores the line) is most likely a flag meant to be on, or a value
      // that went missing; either way guessing would be wrong.
      const expected = separator === '' ? `"${name} value"` : `a value after ${name}`;
      throw new ConfigSyntaxError(source, raw.trim(), expected);
    }
    addOptionValue(values, listKeys, key, value, source);
  }
  return values;
}

/**
 * readConfFile reads a conf_file as UTF-8. Throws ConfigFileError when the file is missing,
 * unreadable or a directory; `path` is used as given (resolve it against the cwd first).
 */
export function readConfFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : `cannot be read (${(err as Error).message})`;
    throw new ConfigFileError(path, reason, { cause: err });
  }
}
