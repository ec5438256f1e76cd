/**
 * Listen sockets added at run time (mux.listen, mux.remove of a listener), over real sockets on
 * 127.0.0.1 and a unix socket: their connections go through the whole client flow, and the
 * server's close or a retire closes them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { workerHost } from '../../src/internal.js';
import { Peer, Watch } from '../helpers/migration.js';
import { startServer } from '../helpers/server.js';

/** Greeter answers `LISTENER:LINE` for each line, and `bye` at the end of a client's input. */
class Greeter extends MultiplexServer {
  readonly events: string[] = [];
  readonly watch = new Watch();
  override postAcceptHook(client: Client): void {
    this.events.push(`accept ${client.id} via ${client.listener}`);
    this.watch.notify();
  }
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (let line = input.line(); line !== undefined; line = input.line())
      client.write(`${client.listener}:${line}\n`);
  }
  override muxEof(_mux: Mux, client: Client): void {
    client.write('bye\n');
  }
}

async function listening(listen: net.ListenOptions): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(listen, resolve));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return server;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('mux.listen', () => {
  it('serves the connections of a server added at run time through the whole client flow', async () => {
    const { server } = await startServer(new Greeter({ port: ['127.0.0.1:0'], log_level: 0 }));
    const extra = await listening({ port: 0, host: '127.0.0.1' });
    const port = (extra.address() as net.AddressInfo).port;
    const listener = server.mux.listen(extra);
    expect(listener.label).toBe(`127.0.0.1:${port}/tcp`);
    expect(server.mux.listeners()).toContain(listener);
    expect(server.mux.listen(extra)).toBe(listener);
    const p = await Peer.connect(port, { allowHalfOpen: true });
    onTestFinished(() => {
      p.socket.destroy();
    });
    p.send('hi\n');
    await p.waitFor(`127.0.0.1:${port}/tcp:hi\n`);
    expect(server.events).toEqual([`accept 1 via 127.0.0.1:${port}/tcp`]);
    expect(server.requests).toBe(1);
    // Its clients' end of input is handled as on a configured port: muxEof answers, then the end.
    p.socket.end();
    await p.until(() => p.ended, 'the end after muxEof');
    expect(p.text.endsWith('bye\n')).toBe(true);
  });

  it('takes a unix socket server too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-listen-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'extra.sock');
    const { server } = await startServer(new Greeter({ port: ['127.0.0.1:0'], log_level: 0 }));
    const listener = server.mux.listen(await listening({ path }));
    expect(listener.label).toBe(`${path}|unix`);
    const got = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ path }, () => s.write('x\n'));
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString());
      });
      s.once('error', reject);
    });
    expect(got).toBe(`${path}|unix:x\n`);
  });

  it('refuses a server that does not listen yet, and what is no server', async () => {
    const { server } = await startServer(new Greeter({ port: ['127.0.0.1:0'], log_level: 0 }));
    expect(() => server.mux.listen(net.createServer())).toThrow(
      expect.objectContaining({
        code: 'MPX_ERR_MUX_HANDLE',
        message: expect.stringContaining('does not listen yet'),
      }),
    );
    expect(() => server.mux.listen({} as net.Server)).toThrow(/takes a net.Server/);
  });

  it('is closed with the server, and by a retire, as configured ports are', async () => {
    const { server } = await startServer(new Greeter({ port: ['127.0.0.1:0'], log_level: 0 }));
    const extra = await listening({ port: 0, host: '127.0.0.1' });
    const port = (extra.address() as net.AddressInfo).port;
    server.mux.listen(extra);
    expect(await refused(port)).toBe(false);
    await workerHost(server).retire(0, false);
    expect(await refused(port)).toBe(true);
  });

  it('hands a server back with mux.remove: still listening, no longer served by netplex', async () => {
    const { server } = await startServer(new Greeter({ port: ['127.0.0.1:0'], log_level: 0 }));
    const extra = await listening({ port: 0, host: '127.0.0.1' });
    const port = (extra.address() as net.AddressInfo).port;
    const listener = server.mux.listen(extra);
    expect(server.mux.remove(listener)).toBe(extra);
    expect(server.mux.listeners()).not.toContain(listener);
    const mine = new Promise<net.Socket>((resolve) => extra.once('connection', resolve));
    const p = await Peer.connect(port);
    onTestFinished(() => {
      p.socket.destroy();
    });
    (await mine).end('served by its own code\n');
    await p.waitFor('served by its own code\n');
    expect(server.requests).toBe(0);
    // A configured port is not handed over.
    expect(server.mux.remove(server.mux.listeners()[0]!)).toBeUndefined();
  });
});
