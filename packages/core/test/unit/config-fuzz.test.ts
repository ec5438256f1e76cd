/**
 * Fuzzing the option parsers: random and malformed input either parses or throws a coded
 * MPX_ERR_* error, never anything else. NETPLEX_FUZZ_RUNS sets the number of cases per target
 * (default 5000); NETPLEX_FUZZ_SEED replays a run (the failure message prints the seed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgv } from '../../src/argv.js';
import { parseConfFile } from '../../src/conf-file.js';
import { type ConfigSources, loadConfig } from '../../src/config.js';
import { listKeys, serverOptions } from '../../src/options.js';
import { mulberry32, fuzzRuns as runs, fuzzSeed as seed } from '../helpers/fuzz.js';

const known = new Set(Object.keys(serverOptions));

/** A generator of random inputs over one PRNG. */
class Gen {
  /** When set, keys are known and lines well formed, so that cases reach the schemas. */
  wellFormed = false;
  constructor(readonly next: () => number) {}
  key(): string {
    return this.wellFormed ? this.pick(KNOWN) : this.pick(KEYS);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(): string {
    const buf = Buffer.alloc(this.int(64));
    for (let i = 0; i < buf.length; i++) buf[i] = this.int(256);
    return buf.toString(this.pick(['utf8', 'latin1'] as const));
  }
  unicode(): string {
    let s = '';
    const n = this.int(24);
    for (let i = 0; i < n; i++) {
      const kind = this.int(4);
      // ASCII, the BMP (lone surrogates included), astral planes, and a few awkward ones.
      if (kind === 0) s += String.fromCharCode(this.int(128));
      else if (kind === 1) s += String.fromCharCode(this.int(0x10000));
      else if (kind === 2) s += String.fromCodePoint(0x10000 + this.int(0x100000));
      else s += this.pick(['\0', '\u202e', '\u0301', '\uFEFF', '\u2028', '\r', '\t', 'ß', 'İ']);
    }
    return s;
  }
  fragment(): string {
    return this.pick(FRAGMENTS);
  }
  /** text is one of the kinds of string the fuzzers combine. */
  text(): string {
    if (this.wellFormed && this.int(4) !== 0) return this.pick(PLAUSIBLE);
    const kind = this.int(10);
    if (kind === 0) return this.bytes();
    if (kind === 1) return this.unicode();
    let s = '';
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) s += this.fragment();
    return s;
  }
  argv(): string[] {
    if (!this.wellFormed) return Array.from({ length: this.int(10) }, () => this.text());
    const argv: string[] = [];
    const n = this.int(6);
    for (let i = 0; i < n; i++) {
      const key = this.key();
      const form = this.int(4);
      if (form === 0) argv.push(`--${key}=${this.text()}`);
      else if (form === 1) argv.push(`--${key.replaceAll('_', '-')}`, this.text());
      else if (form === 2) argv.push(`${key}=${this.text()}`);
      else argv.push(`--${key}`);
    }
    return argv;
  }
  confText(): string {
    const lines: string[] = [];
    const n = this.int(12);
    for (let i = 0; i < n; i++) {
      const kind = this.int(6);
      if (kind === 0 && !this.wellFormed) lines.push(this.text());
      else if (kind === 1) lines.push(`# ${this.text()}`);
      else
        lines.push(
          `${this.key()}${this.pick(this.wellFormed ? SEPARATORS.slice(0, 5) : SEPARATORS)}${this.text()}${this.pick(['', ' # c', '\r', '  '])}`,
        );
    }
    return (this.int(8) === 0 ? '\uFEFF' : '') + lines.join(this.pick(['\n', '\r\n', '\n\n']));
  }
  value(depth = 0): unknown {
    if (this.wellFormed && this.int(4) !== 0)
      return this.pick([...PLAUSIBLE, 1, 2, 80, ['1', 2], { port: 80 }]);
    const kind = this.int(depth > 2 ? 12 : 16);
    switch (kind) {
      case 0:
        return undefined;
      case 1:
        return null;
      case 2:
        return this.pick([
          0,
          -1,
          1,
          2,
          4,
          5,
          511,
          65535,
          65536,
          1.5,
          Number.NaN,
          Number.POSITIVE_INFINITY,
          -0,
        ]);
      case 3:
        return this.next() < 0.5;
      case 4:
        return BigInt(this.int(100));
      case 5:
        return Symbol(this.fragment());
      case 6:
        return () => 1;
      case 7:
        return new Date(0);
      case 8:
      case 9:
      case 10:
      case 11:
        return this.text();
      case 12:
      case 13:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
      case 14: {
        const o: Record<string, unknown> = this.next() < 0.2 ? Object.create(null) : {};
        const n = this.int(4);
        for (let i = 0; i < n; i++)
          o[this.pick(['port', 'host', 'ipv', 'proto', this.fragment()])] = this.value(depth + 1);
        return o;
      }
      default: {
        const cyclic: unknown[] = [];
        cyclic.push(cyclic);
        return cyclic;
      }
    }
  }
  record(): Record<string, unknown> | undefined {
    if (this.int(3) === 0) return undefined;
    const o: Record<string, unknown> = {};
    const n = this.int(5);
    for (let i = 0; i < n; i++) {
      const key = this.int(8) === 0 && !this.wellFormed ? this.text() : this.key();
      o[key] = this.value();
    }
    return o;
  }
}

const KNOWN = [...known].filter((key) => key !== 'conf_file' && key !== 'chroot');
const PLAUSIBLE = [
  '0',
  '1',
  '2',
  '3',
  '80',
  '8080',
  '127.0.0.1',
  '::1',
  '10.0.0.0/8',
  'a.+',
  'tcp',
  '*',
  'on',
  'double',
];
const KEYS = [
  ...known,
  'log-level',
  'log_lvel',
  'prot',
  'chroot',
  'conf_file',
  '--port',
  'PORT',
  '__proto__',
  'constructor',
];
const SEPARATORS = [' ', '\t', '=', ' = ', ': ', ':', '', '  '];
const FRAGMENTS = [
  '--',
  '-',
  '=',
  ' ',
  ':',
  '#',
  '\\#',
  '\\',
  '"',
  "'",
  '\n',
  '\r\n',
  '\t',
  'port',
  '--port',
  '--port=',
  'port=',
  '--log-level',
  '--log_level=',
  'log_level',
  '--background',
  '--setsid',
  '--conf_file=',
  '--chroot=',
  '--allow=',
  '--cidr_allow=',
  'host',
  '--host',
  '--frobnicate',
  'x',
  '0',
  '1',
  '3',
  '9',
  '-1',
  '65536',
  '20203',
  '127.0.0.1',
  '::1',
  '[::1]:80',
  '10.0.0.0/8',
  '/33',
  '*',
  '(',
  '.+',
  'true',
  'off',
  'double',
  'nope.conf',
  '.',
  '..',
  'ü',
  '\u0000',
  '😀',
];

/** isCoded tells whether a thrown value is one of netplex's coded errors. */
function isCoded(err: unknown): boolean {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('MPX_ERR_');
}

function show(input: unknown): string {
  return JSON.stringify(input, (_k, v) =>
    typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function' ? String(v) : v,
  );
}

/** fuzz runs `body` for each case with its own PRNG, failing with the seed on an uncoded error. */
function fuzz(name: string, body: (gen: Gen) => { input: () => unknown; run: () => void }): void {
  it(`${name}: ${runs} cases (NETPLEX_FUZZ_SEED=${seed})`, () => {
    for (let i = 0; i < runs; i++) {
      const caseSeed = (seed + Math.imul(i, 0x9e3779b9)) | 0;
      const { input, run } = body(new Gen(mulberry32(caseSeed)));
      try {
        run();
      } catch (err) {
        if (isCoded(err)) continue;
        let shown: string;
        try {
          shown = show(input());
        } catch {
          shown = '(input not printable)';
        }
        expect.fail(
          `NETPLEX_FUZZ_SEED=${seed} case ${i}: ${name} threw an uncoded ${String(err)}\n` +
            `input: ${shown}\n${(err as Error)?.stack ?? ''}`,
        );
      }
    }
  });
}

describe('config fuzz', () => {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  fuzz('parseArgv', (gen) => {
    const argv = gen.argv();
    return {
      input: () => argv,
      run: () => {
        const { values, rest } = parseArgv(argv, known, listKeys);
        for (const key of values.keys()) expect(known.has(key)).toBe(true);
        for (const arg of rest) expect(argv).toContain(arg);
      },
    };
  });

  fuzz('parseConfFile', (gen) => {
    const text = gen.int(4) === 0 ? gen.bytes() + gen.unicode() : gen.confText();
    return {
      input: () => text,
      run: () => {
        for (const [key, v] of parseConfFile(text, 'fuzz.conf', known, listKeys)) {
          expect(known.has(key)).toBe(true);
          expect(v.sources.length).toBe(Array.isArray(v.value) ? v.value.length : 1);
        }
      },
    };
  });

  fuzz('loadConfig', (gen) => {
    gen.wellFormed = gen.int(4) !== 0;
    const conf = join(dir, 'fuzz.conf');
    const text = gen.confText();
    const sources: ConfigSources = {
      constructor: gen.record(),
      argv: gen.int(4) === 0 ? undefined : gen.argv(),
      run: gen.record(),
      defaults: gen.record(),
      cwd: dir,
    };
    if (gen.int(2) === 0) {
      const defaults = {
        ...sources.defaults,
        conf_file: gen.pick([conf, 'fuzz.conf', './fuzz.conf', 'missing.conf', dir]),
      };
      sources.defaults = defaults;
    }
    return {
      input: () => ({ sources, conf: text }),
      run: () => {
        writeFileSync(conf, text);
        const { config } = loadConfig(serverOptions, sources);
        expect(Object.isFrozen(config)).toBe(true);
      },
    };
  });
});
