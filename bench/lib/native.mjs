// @ts-check
/**
 * native — the native unix-socket module (@netplex/unix, packages/unix) for the descriptor floor:
 * SOCK_SEQPACKET pairs and sendmsg/recvmsg with descriptors. It is optional: when it is not built,
 * loadNative says why and the floor's row is left out with that reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { messageOf } from './errors.mjs';
import { ROOT } from './paths.mjs';

/**
 * The parts of the module's API the bench uses.
 * @typedef {object} Unix
 * @property {() => [number, number] | number} seqpacketPair  both non-blocking and close-on-exec, or -errno
 * @property {(fd: number, data: Uint8Array, fds: number[]) => number} send  bytes sent, or -errno
 * @property {(fd: number, buffer: Uint8Array) => { bytes: number, fds: number[], flags: number } | number} receive
 *   a record (bytes 0 and no fds: the peer closed), or -errno
 * @property {(fd: number, events: number, cb: (events: number) => void) => { close: () => void }} watch
 *   a uv_poll watcher, called on the event loop while the descriptor is ready
 * @property {(fd: number) => number} close
 * @property {{ MAX_FDS: number, EAGAIN: number, MSG_CTRUNC: number, READABLE: number, WRITABLE: number }} constants
 */

const PACKAGE = join(ROOT, 'packages/unix');

/**
 * entryOf is the file `@netplex/unix` resolves to: through a workspace package that depends on it,
 * else from packages/unix/package.json itself.
 * @returns {string | undefined}
 */
function entryOf() {
  for (const from of ['package.json', 'packages/supervisor/package.json', 'packages/core/package.json']) {
    try {
      return createRequire(join(ROOT, from)).resolve('@netplex/unix');
    } catch {}
  }
  const pkgFile = join(PACKAGE, 'package.json');
  if (!existsSync(pkgFile)) return undefined;
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  const dot = pkg.exports?.['.'] ?? pkg.exports;
  const rel = typeof dot === 'string' ? dot : (dot?.import ?? dot?.default ?? pkg.main);
  return typeof rel === 'string' ? join(PACKAGE, rel) : undefined;
}

/**
 * loadNative loads the module and its native part: `{ unix }`, or `{ reason }` it is not usable.
 * @returns {Promise<{ unix: Unix, reason?: undefined } | { unix?: undefined, reason: string }>}
 */
export async function loadNative() {
  const entry = entryOf();
  if (!entry || !existsSync(entry))
    return { reason: '@netplex/unix is not built (packages/unix), so there is no descriptor floor' };
  try {
    const mod = await import(pathToFileURL(entry).href);
    const unix = /** @type {Unix | undefined} */ (mod.loadUnix());
    if (!unix)
      return { reason: `@netplex/unix is not available: ${mod.unixUnavailable?.() ?? 'no reason given'}` };
    return { unix };
  } catch (err) {
    return { reason: `@netplex/unix did not load: ${messageOf(err)}` };
  }
}

/**
 * nativeOrThrow is loadNative for the floor's own processes, which cannot run without the module.
 * @returns {Promise<Unix>}
 */
export async function nativeOrThrow() {
  const native = await loadNative();
  if (!native.unix) throw new Error(native.reason);
  return native.unix;
}
