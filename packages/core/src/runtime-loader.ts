/**
 * runtime-loader — loads a package's bundled runtime (dist/bundle/runtime.cjs, built by
 * scripts/bundle.mjs) once per process, compiled with a V8 code cache kept beside it.
 *
 * Node 20 has no compile cache for modules, and compiling the runtime (core with the parts of zod
 * and pino it uses, about 500 KB) is a large part of a process's start-up. So the bundle is
 * compiled through vm.Script with the cached data of an earlier run. V8 checks that the data fits
 * this source, this V8 and its flags, and compiles from scratch when it does not
 * (`cachedDataRejected`).
 *
 * Two cache files, named after the Node version and the architecture:
 * - `runtime.<node>-<arch>.cache`, written at build and by any process that had to compile: the
 *   code the bundle runs as it loads;
 * - `runtime.<node>-<arch>.served.cache`, written once by a worker after it first served
 *   (`noteServing`): that code plus what starting a server compiled (configuration, listening,
 *   the first connection), so that the next start compiles almost nothing. Preferred when present.
 * V8 tells a cache from another source by the source's length only, so each cache file begins with
 * a line naming the bundle it was made from (its size and modification time): a rebuilt bundle,
 * even one of the same length, never runs another build's code. Writes go to a temporary file
 * renamed into place, so a reader never sees half a cache; where the package directory is
 * read-only they are skipped and each start compiles what the cache lacks.
 *
 * With --enable-source-maps, or NETPLEX_CODE_CACHE=0, the bundle is required through Node's own
 * loader instead, which maps stack traces to the TypeScript sources through runtime.cjs.map.
 */
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** BundleHost does for the bundle what vm.Script cannot: import() of ES modules. */
export interface BundleHost {
  importModule(specifier: string): Promise<unknown>;
}

/** A bundle's exports: one namespace per entry point. */
export type BundleExports = Record<string, Record<string, unknown>>;

/**
 * How a bundle was loaded: from the cache written after a server served, from the load-time
 * cache, compiled from scratch (no cache, or V8 rejected it), or required (no cache asked for).
 */
export type BundleLoad = 'served-cache' | 'cache' | 'compiled' | 'required';

interface Loaded {
  exports: BundleExports;
  how: BundleLoad;
  /** Writes the served cache; set until it has been written (or need not be). */
  serve?: (() => void) | undefined;
}

const loadedKey = Symbol.for('netplex.bundles');
const hostKey = Symbol.for('netplex.bundle-host');

function loadedBundles(): Map<string, Loaded> {
  const g = globalThis as Record<symbol, unknown>;
  g[loadedKey] ??= new Map<string, Loaded>();
  return g[loadedKey] as Map<string, Loaded>;
}

/** cacheFilesOf gives where the code caches of `file` are kept for this Node and architecture. */
export function cacheFilesOf(file: string): { load: string; served: string } {
  const base = `${file.replace(/\.cjs$/, '')}.${process.version}-${process.arch}`;
  return { load: `${base}.cache`, served: `${base}.served.cache` };
}

/** bundleLoads tells how each bundle loaded in this process was loaded, by file. */
export function bundleLoads(): Record<string, BundleLoad> {
  return Object.fromEntries([...loadedBundles()].map(([file, l]) => [file, l.how]));
}

/**
 * loadBundle runs the bundle at `url` once per process (later calls return the same exports, also
 * from another copy of this module) and returns its exports.
 */
export function loadBundle(url: URL, host: BundleHost): BundleExports {
  const file = fileURLToPath(url);
  const bundles = loadedBundles();
  const known = bundles.get(file);
  if (known) return known.exports;
  (globalThis as Record<symbol, unknown>)[hostKey] = host;
  const cached = process.env.NETPLEX_CODE_CACHE !== '0' && !sourceMapsAsked();
  const loaded = cached
    ? runCached(file)
    : { exports: createRequire(file)(file) as BundleExports, how: 'required' as const };
  bundles.set(file, loaded);
  return loaded.exports;
}

/**
 * sourceMapsAsked tells whether this process was started with --enable-source-maps. Not
 * process.sourceMapsEnabled: tsx turns that on for its own sake in every TypeScript server.
 */
function sourceMapsAsked(): boolean {
  const flag = '--enable-source-maps';
  return process.execArgv.includes(flag) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(flag);
}

/**
 * noteServing is called once a server has served: each bundle not loaded from a served cache
 * writes one now, with what this process compiled to get here.
 */
export function noteServing(): void {
  for (const loaded of loadedBundles().values()) {
    const serve = loaded.serve;
    loaded.serve = undefined;
    serve?.();
  }
}

/** sourceStamp names the bundle a cache was made from: `netplex-code-cache SIZE MTIME\n`. */
function sourceStamp(file: string): string {
  const st = statSync(file, { bigint: true });
  return `netplex-code-cache ${st.size} ${st.mtimeNs}\n`;
}

/** readCache gives the cached data in `path` when it was made from the bundle `stamp` names. */
function readCache(path: string, stamp: string): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    return undefined;
  }
  if (data.length <= stamp.length || data.toString('latin1', 0, stamp.length) !== stamp) return undefined;
  return data.subarray(stamp.length);
}

function runCached(file: string): Loaded {
  // The bundle is ASCII (esbuild escapes the rest), so latin1 reads it without decoding UTF-8.
  const code = readFileSync(file, 'latin1');
  const caches = cacheFilesOf(file);
  const stamp = sourceStamp(file);
  let served = true;
  let cachedData = readCache(caches.served, stamp);
  if (cachedData === undefined) {
    served = false;
    cachedData = readCache(caches.load, stamp);
  }
  // The same wrapper as Node's CommonJS loader, on the bundle's first line.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  const module = { exports: {} as BundleExports };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  const compiled = cachedData === undefined || script.cachedDataRejected === true;
  if (compiled) writeCache(caches.load, stamp, script);
  const how: BundleLoad = compiled ? 'compiled' : served ? 'served-cache' : 'cache';
  return {
    exports: module.exports,
    how,
    serve: how === 'served-cache' ? undefined : () => writeCache(caches.served, stamp, script),
  };
}

/** writeCache stores `script`'s code cache, with what it has compiled so far; never fatal. */
function writeCache(path: string, stamp: string, script: Script): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([Buffer.from(stamp, 'latin1'), script.createCachedData()]));
    renameSync(tmp, path);
  } catch {
    // A read-only install: starts compile what the cache lacks.
    removeQuietly(tmp);
  }
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // Not ours to remove (something else took the name).
  }
}
