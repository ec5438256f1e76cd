/**
 * Moving every connection of one server to another in this process, as a migrating reload does
 * between two workers: each socket's descriptor is copied over a unix socket pair (as the direct
 * transport does), through the native module. Tests that use it run only where the module loads.
 */
import { loadUnix, unixUnavailable } from '@netplex/unix';
import { expect, onTestFinished } from 'vitest';
import type { AnyMultiplexServer } from '../../src/index.js';
import { workerHost } from '../../src/internal.js';
import { socketFd } from '../../src/migration/socket-fd.js';
import { withTimeout } from './client.js';

/** unix is the native module, or undefined (with the reason printed, and a failure under CI). */
export function nativeOrSkip(what: string): ReturnType<typeof loadUnix> {
  const unix = loadUnix();
  if (!unix) {
    const reason = `${what} skipped: the native module is not available (${unixUnavailable()})`;
    if (process.env.CI) throw new Error(`${reason}; CI builds it`);
    console.warn(reason);
  }
  return unix;
}

/**
 * moveAll migrates every connection of `from` into `to`; `hold` is called before the new server is
 * told it has each one (the connection is on its way meanwhile), `before` before the new server
 * takes it in.
 */
export async function moveAll(
  from: AnyMultiplexServer,
  to: AnyMultiplexServer,
  hold: (id: number) => Promise<void> = async () => {},
  before: (id: number) => Promise<void> = async () => {},
) {
  const u = loadUnix();
  if (!u) throw new Error(`moveAll needs the native module: ${unixUnavailable()}`);
  const pair = u.seqpacketPair();
  if (typeof pair === 'number') throw new Error(`socketpair failed: ${pair}`);
  const [x, y] = pair;
  onTestFinished(() => {
    u.close(x);
    u.close(y);
  });
  const buf = Buffer.alloc(16);
  return withTimeout(
    workerHost(from).migrateOut({
      state: async (data) => workerHost(to).thawServer(data),
      conn: async (frozen, socket) => {
        const fd = socketFd(socket)!;
        expect(u.send(x, Buffer.from('c'), [fd])).toBe(1);
        const got = u.receive(y, buf);
        if (typeof got === 'number') throw new Error(`receive failed: ${got}`);
        await before(frozen.id);
        workerHost(to).adoptConnection(frozen, { fd: got.fds[0]! }, true);
        await hold(frozen.id);
        return true;
      },
      released: (id, output, end, timeoutMs) => workerHost(to).releaseAdopted(id, output, end, timeoutMs),
    }),
    'the migration',
    20_000,
  );
}
