/**
 * Net::Server options over real sockets, in one process: udp_recv_len cuts datagrams, udp_broadcast
 * lets a udp socket send to a broadcast address, and unix_type SOCK_DGRAM fails to bind, saying why.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { BindError, type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { LogSink, startServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'netplex-perl-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Echo sends back what it gets, as `<proto> <input>`. */
class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(`${client.proto} ${input.takeAll().toString()}`);
  }
}

/** udpClient is a datagram socket on 127.0.0.1, closed when the test ends. */
async function udpClient(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  onTestFinished(() => {
    sock.close();
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return sock;
}

/** ask sends one datagram and waits for the reply. */
function ask(sock: dgram.Socket, port: number, data: string | Buffer, what: string): Promise<string> {
  const reply = new Promise<string>((resolve) => sock.once('message', (m) => resolve(m.toString())));
  sock.send(data, port, '127.0.0.1');
  return withTimeout(reply, what);
}

describe('udp_recv_len', () => {
  it('cuts each datagram to that many bytes before muxInput, as recv(2) with that length does', async () => {
    const { port, logs } = await startServer(
      new Echo({ port: ['127.0.0.1:0/udp'], udp_recv_len: 5, log_level: 4 }),
    );
    const sock = await udpClient();
    expect(await ask(sock, port, 'abcdefghij', 'the reply to a long datagram')).toBe('udp abcde');
    expect(await ask(sock, port, 'abc', 'the reply to a short datagram')).toBe('udp abc');
    expect(logs.messages).toContain('datagram of 10 bytes cut to udp_recv_len 5');
  });

  it('leaves datagrams whole when unset', async () => {
    const { port } = await startServer(new Echo({ port: ['127.0.0.1:0/udp'], log_level: 0 }));
    const sock = await udpClient();
    const big = 'x'.repeat(8000);
    expect(await ask(sock, port, big, 'the reply to an 8000-byte datagram')).toBe(`udp ${big}`);
  });
});

describe('udp_broadcast', () => {
  /**
   * Sender answers each datagram with how its own socket fared sending to the loopback network's
   * broadcast address: `sent`, or the error's code (EACCES without SO_BROADCAST).
   */
  class Sender extends MultiplexServer {
    override muxInput(_mux: Mux, client: Client, input: InputBuffer): Promise<void> {
      input.takeAll();
      const socket = this.listeners[0]!.socket!;
      return new Promise((resolve) => {
        socket.send('hello', 9, '127.255.255.255', (err) => {
          client.write(err ? String((err as NodeJS.ErrnoException).code) : 'sent');
          resolve();
        });
      });
    }
  }

  it.each([
    [true, 'sent'],
    [false, 'EACCES'],
  ])('udp_broadcast %s: the udp socket sending to 127.255.255.255 gives %s', async (broadcast, outcome) => {
    const { port } = await startServer(
      new Sender({ port: ['127.0.0.1:0/udp'], udp_broadcast: broadcast ? 1 : 0, log_level: 0 }),
    );
    const sock = await udpClient();
    expect(await ask(sock, port, 'go', 'the outcome of the broadcast')).toBe(outcome);
  });
});

describe('unix_type', () => {
  it('SOCK_STREAM serves a unix port as proto unix', async () => {
    const path = join(dir, 'stream.sock');
    const { server } = await startServer(
      new Echo({ port: [`${path}|unix`], unix_type: 'SOCK_STREAM', log_level: 0 }),
    );
    expect(server.addresses()).toEqual([{ proto: 'unix', path }]);
    const client = await TestClient.connect({ path });
    onTestFinished(() => client.destroy());
    client.send('ping');
    await client.waitFor('unix ping');
  });

  it('SOCK_DGRAM makes a unix port unixdgram, which fails to bind with the reason', async () => {
    const path = join(dir, 'dgram.sock');
    const server = new Echo({ port: [`${path}|unix`, '127.0.0.1:0'], unix_type: 'SOCK_DGRAM', log_level: 0 });
    const err = await server.start({ logDestination: new LogSink() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BindError);
    expect((err as Error).message).toBe(
      `cannot bind ${path}|unixdgram: unixdgram sockets are not supported on Node`,
    );
  });
});
