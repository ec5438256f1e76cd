/**
 * The one Node internal the supervisor relies on: a handle bound by `net._createServerHandle`, sent
 * to a forked child and listened on there, keeps the socket listening after the child dies, so a
 * connection made in the gap waits in the backlog and is served by the next child. If a Node
 * upgrade breaks this, this test fails loudly.
 */
import { type ChildProcess, fork } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BindTarget, bindTargetKey, formatBindTarget } from '@netplex/core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { closeHandle, createListenHandle, handlePort, type ListenHandle } from '../../src/handles.js';

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'adopt-handle.mjs');

function tcp(address: string, port: number, family: 4 | 6): BindTarget {
  const t = { proto: 'tcp' as const, address, port, family };
  return { ...t, key: bindTargetKey(t), label: formatBindTarget(t) };
}

function waitMessage(c: ChildProcess, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${type} message from the child within 10 s`)),
      10_000,
    );
    c.on('message', (m: { type?: string }) => {
      if (m?.type === type) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function startChild(handle: ListenHandle): Promise<ChildProcess> {
  const c = fork(child, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  onTestFinished(() => {
    c.kill('SIGKILL');
  });
  await waitMessage(c, 'hello');
  c.send({ type: 'handle' }, handle as never);
  await waitMessage(c, 'listening');
  return c;
}

function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`connection not served within 10 s (got ${JSON.stringify(buf)})`)),
      10_000,
    );
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(buf);
    });
    socket.on('error', reject);
  });
}

describe('listen handles held by the supervisor', () => {
  it('keep the socket listening across a dead child: a connection made in the gap is served by the next', async () => {
    const handle = createListenHandle(tcp('127.0.0.1', 0, 4));
    onTestFinished(() => closeHandle(handle));
    const port = handlePort(handle)!;
    expect(port).toBeGreaterThan(0);

    const first = await startChild(handle);
    const a = net.connect({ port, host: '127.0.0.1' });
    expect(await readAll(a)).toBe(`served by ${first.pid}\n`);

    const gone = new Promise((r) => first.once('exit', r));
    first.kill('SIGKILL');
    await gone;

    // Nobody accepts now; the kernel still completes the handshake into the backlog.
    const b = net.connect({ port, host: '127.0.0.1' });
    const served = readAll(b);
    await new Promise<void>((resolve, reject) => {
      b.once('connect', resolve);
      b.once('error', reject);
    });
    const second = await startChild(handle);
    expect(await served).toBe(`served by ${second.pid}\n`);
  });

  it('names the target and the reason when an address cannot be bound', () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    expect(() => createListenHandle(tcp('192.0.2.1', 0, 4))).toThrow(
      'cannot bind 192.0.2.1:0/tcp: address not available on this machine',
    );
  });

  it('reports a port in use at once, although libuv defers that error to listen()', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '::1', r));
    onTestFinished(() => {
      taken.close();
    });
    const port = (taken.address() as net.AddressInfo).port;
    expect(() => createListenHandle(tcp('::1', port, 6))).toThrow(
      `cannot bind [::1]:${port}/tcp: address already in use (another server is listening there)`,
    );
  });
});
