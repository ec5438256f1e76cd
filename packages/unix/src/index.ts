/**
 * @netplex/unix — unix sockets through a small native module (src/unix.c): SOCK_SEQPACKET pairs
 * whose records carry up to MAX_FDS descriptors (live migration hands many connections from one
 * worker to the next in one message), SOCK_DGRAM sockets that send to a path or an abstract name
 * (syslog's /dev/log, systemd's NOTIFY_SOCKET) and libuv readiness watchers. This file is the one
 * loader: `loadUnix()` returns the module or undefined, and `unixUnavailable()` says why it is
 * missing, so callers can fall back to what Node offers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Native calls return failures as negative errno numbers; only bad argument types throw TypeError. */
export interface UnixSockets {
  /** A connected pair of AF_UNIX SOCK_SEQPACKET sockets, both non-blocking and close-on-exec; or -errno. */
  seqpacketPair(): [number, number] | number;
  /** One AF_UNIX SOCK_DGRAM socket, unbound, non-blocking, close-on-exec; or -errno. */
  datagramSocket(): number;
  /**
   * A SOCK_DGRAM socket bound to a unix path, or to an abstract name when `path` starts with '@'
   * or '\0' (the '@' stands for the leading NUL); non-blocking, close-on-exec. fd or -errno.
   */
  bindDatagram(path: string): number;
  /**
   * sendmsg(MSG_NOSIGNAL|MSG_DONTWAIT) of one record: `data` with `fds` attached as SCM_RIGHTS.
   * Returns the bytes sent or -errno (-EAGAIN: retry when writable). More than MAX_FDS fds: TypeError.
   */
  send(fd: number, data: Uint8Array, fds?: readonly number[]): number;
  /**
   * recvmsg(MSG_DONTWAIT|MSG_CMSG_CLOEXEC) of one record into `buffer`, with room for MAX_FDS
   * descriptors. Returns -errno (-EAGAIN when nothing waits) or `{ bytes, fds, flags }`, where
   * flags holds the MSG_TRUNC / MSG_CTRUNC bits the kernel set (with MSG_CTRUNC, fds holds the
   * descriptors that did arrive). bytes 0 with no fds means the peer closed (EOF). On a datagram
   * socket, `from` is the sender's path ('@name' for an abstract one); it is absent when the sender
   * is unbound, and on a connected pair.
   */
  receive(
    fd: number,
    buffer: Uint8Array,
  ): { bytes: number; fds: number[]; flags: number; from?: string } | number;
  /** sendto of one datagram to a unix path or an abstract name ('@' or '\0' first). Bytes or -errno. */
  sendTo(fd: number, path: string, data: Uint8Array): number;
  /** close(2); 0 or -errno. */
  close(fd: number): number;
  /**
   * Watches `fd` with a uv_poll handle: `onReady(events)` is called on the event loop with
   * READABLE/WRITABLE/DISCONNECT bits, or with a negative status on error. `events` says which
   * to watch. Throws an Error (code such as 'EBADF') when libuv refuses the descriptor.
   */
  watch(fd: number, events: number, onReady: (events: number) => void): Watcher;
  readonly constants: UnixConstants;
}

/** A readiness watch on one descriptor. */
export interface Watcher {
  /** Changes the events watched (0 pauses). */
  update(events: number): void;
  /** Stops and frees the poll handle (does not close the fd). Idempotent. */
  close(): void;
  /** Makes the watcher keep the process alive (the default). */
  ref(): void;
  /** Lets the process exit while the watcher is active. */
  unref(): void;
}

export interface UnixConstants {
  MAX_FDS: 253;
  EAGAIN: number;
  EPIPE: number;
  ECONNRESET: number;
  EMFILE: number;
  MSG_TRUNC: number;
  MSG_CTRUNC: number;
  READABLE: number;
  WRITABLE: number;
  DISCONNECT: number;
}

/** The most descriptors one record may carry (Linux's SCM_MAX_FD). */
export const MAX_FDS = 253;
/** libuv's poll event bits, as `watch()` takes and reports them. */
export const READABLE = 1;
export const WRITABLE = 2;
export const DISCONNECT = 4;

const BUILT = new URL('../build/unix.node', import.meta.url);
const UNAVAILABLE = new URL('../build/unavailable.txt', import.meta.url);

let loaded: { module: UnixSockets | undefined; reason: string | undefined } | undefined;

function load(): { module: UnixSockets | undefined; reason: string | undefined } {
  if (process.env.NETPLEX_NO_NATIVE === '1') {
    return { module: undefined, reason: 'disabled by NETPLEX_NO_NATIVE' };
  }
  try {
    return { module: createRequire(import.meta.url)(fileURLToPath(BUILT)) as UnixSockets, reason: undefined };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ENOENT') {
      let reason = 'not built: run `node scripts/build.mjs` in packages/unix';
      try {
        reason = readFileSync(UNAVAILABLE, 'utf8').trim() || reason;
      } catch {
        // No record of a failed build: the build never ran.
      }
      return { module: undefined, reason };
    }
    return { module: undefined, reason: (error as Error).message };
  }
}

/** The native module, loaded once; undefined when it is not built, fails to load or is disabled. */
export function loadUnix(): UnixSockets | undefined {
  loaded ??= load();
  return loaded.module;
}

/** Why `loadUnix()` returns undefined, in plain words; undefined when the module is loaded. */
export function unixUnavailable(): string | undefined {
  loaded ??= load();
  return loaded.reason;
}
