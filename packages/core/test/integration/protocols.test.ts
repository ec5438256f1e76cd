import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { LogSink, startServer } from '../helpers/server.js';

class Echo extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(input.takeAll());
  }
}

const dir = mkdtempSync(join(tmpdir(), 'netplex-proto-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('udp', () => {
  it('hands each datagram to muxInput with the sender address and replies to the sender', async () => {
    class UdpEcho extends MultiplexServer {
      override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
        client.write(`${client.proto} ${client.peeraddr}:${client.peerport} ${input.takeAll().toString()}`);
      }
    }
    const srv = new UdpEcho({ port: ['127.0.0.1:0/udp'], log_level: 0 });
    const { port } = await startServer(srv);
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const reply = new Promise<string>((resolve) => sock.once('message', (m) => resolve(m.toString())));
    sock.send('ping', port, '127.0.0.1');
    expect(await withTimeout(reply, 'a UDP reply')).toBe(`udp 127.0.0.1:${sock.address().port} ping`);
    sock.close();
  });
});

describe('the IPV environment variable', () => {
  it('chooses the IP version of a host name when no ipv is set, as in Net::Server::Proto', async () => {
    const saved = process.env.IPV;
    onTestFinished(() => {
      if (saved === undefined) delete process.env.IPV;
      else process.env.IPV = saved;
    });
    process.env.IPV = '4';
    const v4 = await startServer(new Echo({ port: ['localhost:0'], log_level: 0 }));
    expect(v4.server.addresses()).toEqual([{ proto: 'tcp', address: '127.0.0.1', port: v4.port, family: 4 }]);
    process.env.IPV = '6';
    const v6 = new Echo({ port: ['localhost:0'], log_level: 0 });
    await v6.start({ logDestination: new LogSink() });
    onTestFinished(() => v6.close());
    const families = new Set((await lookup('localhost', { all: true })).map((a) => a.family));
    if (families.has(6)) {
      // Where localhost has an IPv6 address, only that family is bound.
      expect(v6.addresses().every((a) => 'family' in a && a.family === 6)).toBe(true);
    } else {
      // Where it has none, its first address is bound over IPv4, as Net::Server binds it.
      expect(v6.addresses()).toEqual([
        { proto: 'tcp', address: '127.0.0.1', port: expect.any(Number), family: 4 },
      ]);
    }
  });
});

describe('unix sockets', () => {
  it('serves a unix socket and replaces a stale socket file', async () => {
    const path = join(dir, 'stale.sock');
    // A server killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('ready'))`,
    ]);
    await withTimeout(new Promise((r) => child.stdout.once('data', r)), 'the child server to listen');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await withTimeout(exited, 'the child to exit');
    expect(existsSync(path)).toBe(true);
    const { server } = await startServer(new Echo({ port: [`${path}|unix`], log_level: 0 }));
    expect(server.addresses()).toEqual([{ proto: 'unix', path }]);
    const c = await TestClient.connect({ path });
    c.send('over unix');
    await c.waitFor('over unix');
    c.destroy();
  });

  it('refuses a socket path that a live server answers on', async () => {
    const path = join(dir, 'live.sock');
    const live = net.createServer();
    await new Promise<void>((r) => live.listen(path, r));
    const srv = new Echo({ port: [`${path}|unix`], log_level: 0 });
    await expect(srv.start({ argv: [], logDestination: new LogSink() })).rejects.toMatchObject({
      code: 'MPX_ERR_BIND',
      message: expect.stringContaining('a running server is listening'),
    });
    live.close();
  });
});

describe('binding', () => {
  it('binds every port spec and reports the real ports', async () => {
    const { server } = await startServer(new Echo({ port: ['127.0.0.1:0', '[::1]:0'], log_level: 0 }));
    const addrs = server.addresses();
    expect(addrs).toHaveLength(2);
    for (const a of addrs) {
      if (!('port' in a)) throw new Error('expected tcp');
      const c = await TestClient.connect({ port: a.port, host: a.address });
      c.send('x');
      await c.waitFor('x');
      c.destroy();
    }
  });

  it('fails to start with a clear error when the port is taken', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    const srv = new Echo({ port: [`127.0.0.1:${port}`], log_level: 0 });
    await expect(srv.start({ argv: [], logDestination: new LogSink() })).rejects.toMatchObject({
      code: 'MPX_ERR_BIND',
      message: `cannot bind 127.0.0.1:${port}/tcp: address already in use (another server is listening there)`,
    });
    taken.close();
  });
});
