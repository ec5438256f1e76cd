/**
 * socketFd (migration/socket-fd.ts) reads one Node internal, `socket._handle.fd`: the descriptor the
 * direct migration transport passes to the new worker. For a connected TCP socket and a unix-socket
 * connection it gives a live socket descriptor (and, handed through a seqpacket pair as a migration
 * does, `new net.Socket({ fd })` on the other side speaks on the same connection); after destroy it
 * gives undefined. If a Node upgrade removes the property, the first test says so by name. The
 * hand-over part needs the native module; without it, that part is skipped with the reason printed.
 */
import { fstatSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUnix, unixUnavailable } from '@netplex/unix';
import { afterEach, describe, expect, it } from 'vitest';
import { socketFd } from '../../src/migration/socket-fd.js';

const unix = loadUnix();
const missing = unixUnavailable();
if (!unix)
  console.warn(`socketFd hand-over test skipped: the native unix-socket module is unavailable (${missing})`);

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** connected makes a server (TCP on 127.0.0.1:0, or a unix socket) and a client connected to it. */
async function connected(kind: 'tcp' | 'unix'): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  let address: net.ListenOptions;
  if (kind === 'unix') {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-fd-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    address = { path: join(dir, 's.sock') };
  } else address = { host: '127.0.0.1', port: 0 };
  await new Promise<void>((resolve) => server.listen(address, resolve));
  cleanups.push(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const target =
    kind === 'unix'
      ? { path: address.path! }
      : { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  const client = net.connect(target);
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const a = await accepted;
  cleanups.push(() => {
    client.destroy();
    a.destroy();
  });
  return { client, accepted: a };
}

/** closed resolves once a socket has closed. */
const closed = (s: net.Socket) =>
  new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));

describe('socketFd', () => {
  it('reads socket._handle.fd, which Node still has (a Node upgrade that removes it breaks direct migration)', async () => {
    const { accepted } = await connected('tcp');
    const handle = (accepted as unknown as { _handle?: { fd?: unknown } | null })._handle;
    expect(
      handle,
      'net.Socket no longer has socket._handle: migration/socket-fd.ts cannot find the descriptor to pass',
    ).toBeTruthy();
    expect(
      typeof handle!.fd,
      `socket._handle.fd is ${typeof handle!.fd} (${String(handle!.fd)}), not a number: migration/socket-fd.ts reads it to pass connections over the direct transport`,
    ).toBe('number');
  });

  for (const kind of ['tcp', 'unix'] as const) {
    it(`gives the descriptor of a connected ${kind} socket, and undefined after destroy`, async () => {
      const { client, accepted } = await connected(kind);
      for (const [side, s] of [
        ['accepted', accepted],
        ['client', client],
      ] as const) {
        const fd = socketFd(s);
        expect(fd, `socketFd of the ${side} ${kind} socket (socket._handle.fd)`).toBeTypeOf('number');
        expect(fstatSync(fd!).isSocket(), `descriptor ${fd} is a socket`).toBe(true);
      }
      expect(socketFd(client)).not.toBe(socketFd(accepted));
      accepted.destroy();
      await closed(accepted);
      expect(socketFd(accepted), 'socketFd after destroy').toBeUndefined();
    });
  }

  it.skipIf(!unix)(
    `hands the descriptor through a seqpacket pair: the copy speaks on the same connection${unix ? '' : ` (skipped: ${missing})`}`,
    async () => {
      const { client, accepted } = await connected('tcp');
      const pair = unix!.seqpacketPair();
      if (!Array.isArray(pair)) throw new Error(`seqpacketPair failed: ${pair}`);
      cleanups.push(() => {
        unix!.close(pair[0]);
        unix!.close(pair[1]);
      });
      const fd = socketFd(accepted)!;
      expect(unix!.send(pair[0], Buffer.from('conn'), [fd])).toBe(4);
      const got = unix!.receive(pair[1], Buffer.alloc(16));
      if (typeof got === 'number') throw new Error(`receive failed: ${got}`);
      expect(got.fds).toHaveLength(1);
      // The sender's copy goes, as the old worker's does once the new worker has taken it.
      accepted.destroy();
      await closed(accepted);
      const moved = new net.Socket({ fd: got.fds[0]!, readable: true, writable: true });
      cleanups.push(() => moved.destroy());
      const heard = new Promise<string>((resolve) =>
        moved.once('data', (d: Buffer) => resolve(d.toString())),
      );
      client.write('ping');
      expect(await heard).toBe('ping');
      const back = new Promise<string>((resolve) =>
        client.once('data', (d: Buffer) => resolve(d.toString())),
      );
      moved.write('pong');
      expect(await back).toBe('pong');
    },
  );
});
