/**
 * The runtime loader (src/runtime-loader.ts) on small bundles of its own in temporary directories,
 * each start a real Node process as in use: the first start compiles and leaves a code cache, the
 * next loads from it; a worker's noteServing writes the served cache, preferred next; a cache V8
 * rejects is replaced, and one made from another build of the same length is never used; a cache
 * that cannot be written costs nothing but the cache; NETPLEX_CODE_CACHE=0 and --enable-source-maps
 * require the bundle through Node's loader; the bundle's require, import() and stack frames work.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheFilesOf } from '../../src/runtime-loader.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const loaderUrl = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'runtime-loader.ts')).href;

/** A bundle in the shape scripts/bundle.mjs writes: one namespace per entry, CommonJS. */
const bundle = (answer: number) => `"use strict";
const dep = require('./dep.cjs');
exports.index = {
  answer: () => ${answer},
  twice: (n) => dep.double(n),
  load: (specifier) => globalThis[Symbol.for('netplex.bundle-host')].importModule(specifier),
  fail: () => { throw new Error('from the bundle'); },
};
`;

/** bundleDir writes a bundle, its dependency and an ES module beside it; returns the bundle's path. */
function bundleDir(answer = 1): string {
  const dir = mkdtempSync(join(tmpdir(), 'netplex-bundle-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'runtime.cjs'), bundle(answer));
  writeFileSync(join(dir, 'dep.cjs'), 'exports.double = (n) => n * 2;\n');
  writeFileSync(join(dir, 'esm.mjs'), 'export const answer = 42;\n');
  return join(dir, 'runtime.cjs');
}

interface Start {
  how: string;
  answer: number;
  twice: number;
  esm: number;
  stack: string;
}

/**
 * start loads `file` in a new Node process (with `flags` and `env`), as a package's runtime.js
 * does, calls into it, and, when `serve`, calls noteServing as a worker does once it served.
 */
function start(
  file: string,
  opts: { serve?: boolean; flags?: string[]; env?: NodeJS.ProcessEnv } = {},
): Start {
  const code = `
    import { loadBundle, bundleLoads, noteServing } from ${JSON.stringify(loaderUrl)};
    const file = ${JSON.stringify(file)};
    const { index } = loadBundle(new URL('file://' + file), { importModule: (s) => import(s) });
    let stack = '';
    try { index.fail(); } catch (err) { stack = err.stack; }
    const esm = (await index.load(new URL('./esm.mjs', 'file://' + file).href)).answer;
    if (${opts.serve === true}) noteServing();
    console.log(JSON.stringify({ how: bundleLoads()[file], answer: index.answer(), twice: index.twice(21), esm, stack }));
  `;
  const out = execFileSync(
    process.execPath,
    [...(opts.flags ?? []), '--import', 'tsx', '--input-type=module', '-e', code],
    { env: { ...process.env, ...opts.env }, encoding: 'utf8' },
  );
  return JSON.parse(out) as Start;
}

describe('loadBundle', () => {
  it('compiles a bundle without a cache and leaves one; the next start loads from it', () => {
    const file = bundleDir();
    const first = start(file);
    expect(first).toMatchObject({ how: 'compiled', answer: 1, twice: 42, esm: 42 });
    expect(existsSync(cacheFilesOf(file).load)).toBe(true);
    expect(existsSync(cacheFilesOf(file).served)).toBe(false);
    expect(start(file)).toMatchObject({ how: 'cache', answer: 1, twice: 42, esm: 42 });
  });

  it('writes the served cache when a worker served, and prefers it next', () => {
    const file = bundleDir();
    start(file, { serve: true });
    expect(existsSync(cacheFilesOf(file).served)).toBe(true);
    expect(start(file, { serve: true })).toMatchObject({ how: 'served-cache', answer: 1 });
    expect(readdirSync(join(file, '..')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('compiles when V8 rejects the cache, and replaces it', () => {
    const file = bundleDir();
    start(file);
    const { load } = cacheFilesOf(file);
    const stamp = readStamp(load);
    writeFileSync(load, Buffer.concat([Buffer.from(stamp, 'latin1'), Buffer.alloc(4096, 7)]));
    expect(start(file).how).toBe('compiled');
    expect(start(file).how).toBe('cache');
  });

  it('never runs the cache of another build of the same length', () => {
    const file = bundleDir(1);
    start(file, { serve: true });
    writeFileSync(file, bundle(2));
    expect(start(file)).toMatchObject({ how: 'compiled', answer: 2 });
    expect(start(file)).toMatchObject({ how: 'cache', answer: 2 });
  });

  it('starts when the cache cannot be written, and leaves nothing of its own behind', () => {
    const file = bundleDir();
    // The temporary files' names taken by directories: each write fails, as in a read-only install.
    const { load, served } = cacheFilesOf(file);
    const code = `for (const p of ${JSON.stringify([load, served])}) require('node:fs').mkdirSync(p + '.' + process.pid + '.tmp', { recursive: true });`;
    const preload = join(file, '..', 'block.cjs');
    writeFileSync(preload, code);
    const got = start(file, { serve: true, flags: ['--require', preload] });
    expect(got).toMatchObject({ how: 'compiled', answer: 1, twice: 42 });
    expect(existsSync(load)).toBe(false);
    expect(existsSync(served)).toBe(false);
  });

  it('requires the bundle through Node with NETPLEX_CODE_CACHE=0 or --enable-source-maps', () => {
    const file = bundleDir();
    expect(start(file, { env: { NETPLEX_CODE_CACHE: '0' } })).toMatchObject({ how: 'required', esm: 42 });
    expect(start(file, { flags: ['--enable-source-maps'] })).toMatchObject({ how: 'required', esm: 42 });
    expect(existsSync(cacheFilesOf(file).load)).toBe(false);
  });

  it("puts the bundle's own file and line in stack traces", () => {
    const file = bundleDir();
    expect(start(file).stack, 'compiled').toContain(`${file}:7:`);
    expect(start(file).stack, 'from the cache').toContain(`${file}:7:`);
  });
});

/** readStamp reads the first line of a cache file: the bundle it was made from. */
function readStamp(path: string): string {
  const data = readFileSync(path, 'latin1');
  return data.slice(0, data.indexOf('\n') + 1);
}
