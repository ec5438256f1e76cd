/**
 * Tests of @netplex/unix on real sockets: records carrying 253 descriptors, a live TCP connection
 * handed through a seqpacket pair, the errno results (EAGAIN, EOF, EPIPE, MSG_TRUNC), readiness
 * watchers (readable, writable after a full queue, close, ref/unref, a throwing callback),
 * datagrams to a path and to an abstract name, and the loader's fallback when the module is
 * disabled. Behaviour that needs a fresh process runs in a child with a bounded time.
 */
import { executionAsyncId } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadUnix, MAX_FDS, READABLE, type UnixSockets, unixUnavailable, WRITABLE } from '../src/index.js';

const unix = loadUnix();
const packageDir = fileURLToPath(new URL('../', import.meta.url));
const nativePath = fileURLToPath(new URL('../build/unix.node', import.meta.url));
if (!unix) console.warn(`@netplex/unix tests of the native module skipped: ${unixUnavailable()}`);

/** Descriptors a test opened natively, closed after it. */
const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) unix?.close(fd);
});

function pair(u: UnixSockets): [number, number] {
  const result = u.seqpacketPair();
  if (typeof result === 'number') throw new Error(`seqpacketPair failed: ${result}`);
  opened.push(...result);
  return result;
}

function received(result: ReturnType<UnixSockets['receive']>): {
  bytes: number;
  fds: number[];
  flags: number;
  from?: string;
} {
  if (typeof result === 'number') throw new Error(`receive failed: ${result}`);
  opened.push(...result.fds);
  return result;
}

/** Closes a descriptor the test opened, now rather than after the test. */
function closeNow(u: UnixSockets, fd: number): number {
  const at = opened.indexOf(fd);
  if (at >= 0) opened.splice(at, 1);
  return u.close(fd);
}

/** A promise with its resolve and reject at hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Fails a promise that does not settle within `ms`, naming what it waited for. */
function withTimeout<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** Runs an ES module script in a child Node that has tsx, with a bounded time. */
function runChild(script: string, env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: packageDir,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  if (result.signal) throw new Error(`child killed by ${result.signal}: ${result.stderr}`);
  return result;
}

describe('loader', () => {
  it('with NETPLEX_NO_NATIVE=1 loadUnix() is undefined and unixUnavailable() says why', () => {
    const result = runChild(
      `import { loadUnix, unixUnavailable } from './src/index.ts';
       process.stdout.write(JSON.stringify({ loaded: loadUnix() !== undefined, reason: unixUnavailable() }));`,
      { NETPLEX_NO_NATIVE: '1' },
    );
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ loaded: false, reason: 'disabled by NETPLEX_NO_NATIVE' });
  });

  it('loads once and reports no reason when the module is there', () => {
    if (!unix) return;
    expect(loadUnix()).toBe(unix);
    expect(unixUnavailable()).toBeUndefined();
    expect(unix.constants.MAX_FDS).toBe(MAX_FDS);
  });
});

describe.skipIf(!unix)('native module', () => {
  const u = unix!;
  const { EAGAIN, EPIPE, MSG_TRUNC } = u.constants;

  it('passes a record with 253 descriptors that all work after the originals are closed', () => {
    const [a, b] = pair(u);
    const ends = Array.from({ length: MAX_FDS }, () => u.seqpacketPair() as [number, number]);
    for (const [x, y] of ends) opened.push(x, y);
    expect(
      u.send(
        a,
        Buffer.from('many'),
        ends.map(([x]) => x),
      ),
    ).toBe(4);
    const record = received(u.receive(b, Buffer.alloc(16)));
    expect(record).toMatchObject({ bytes: 4, flags: 0 });
    expect(record.fds).toHaveLength(MAX_FDS);
    for (const [x] of ends) expect(closeNow(u, x)).toBe(0);
    const buffer = Buffer.alloc(8);
    record.fds.forEach((fd, i) => {
      expect(u.send(fd, Buffer.from(`#${i}`))).toBeGreaterThan(0);
      const got = received(u.receive(ends[i]![1], buffer));
      expect(buffer.subarray(0, got.bytes).toString()).toBe(`#${i}`);
    });
    expect(() => u.send(a, Buffer.alloc(1), new Array(MAX_FDS + 1).fill(0))).toThrow(TypeError);
  });

  it('hands a live TCP connection through a pair: the received descriptor echoes', async () => {
    const [a, b] = pair(u);
    const accepted = deferred<net.Socket>();
    const server = net.createServer({ pauseOnConnect: true }, (s) => accepted.resolve(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    try {
      const original = await withTimeout(accepted.promise, 'the accepted connection');
      const fd = (original as unknown as { _handle: { fd: number } })._handle.fd;
      expect(u.send(a, Buffer.from('conn'), [fd])).toBe(4);
      const record = received(u.receive(b, Buffer.alloc(8)));
      expect(record.fds).toHaveLength(1);
      const originalClosed = new Promise((resolve) => original.once('close', resolve));
      original.destroy();
      await withTimeout(originalClosed, 'the original socket to close');
      opened.splice(opened.indexOf(record.fds[0]!), 1); // the net.Socket owns it now
      const moved = new net.Socket({ fd: record.fds[0]!, readable: true, writable: true });
      moved.on('data', (chunk) => moved.write(chunk));
      let echoed = '';
      const echo = new Promise<void>((resolve) =>
        client.on('data', (chunk) => {
          echoed += chunk.toString();
          if (echoed === 'hello') resolve();
        }),
      );
      client.write('hello');
      await withTimeout(echo, 'the echo through the received descriptor');
      moved.destroy();
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('returns -EAGAIN on an empty queue, EOF after the peer closes, -EPIPE on send to it', () => {
    const [a, b] = pair(u);
    expect(u.receive(a, Buffer.alloc(4))).toBe(-EAGAIN);
    expect(closeNow(u, b)).toBe(0);
    expect(u.receive(a, Buffer.alloc(4))).toEqual({ bytes: 0, fds: [], flags: 0 });
    expect(u.send(a, Buffer.from('x'))).toBe(-EPIPE);
    expect(u.close(b)).toBe(-osConstants.errno.EBADF);
  });

  it('sets MSG_TRUNC when a record is larger than the buffer', () => {
    const [a, b] = pair(u);
    expect(u.send(a, Buffer.alloc(100, 7))).toBe(100);
    const record = received(u.receive(b, Buffer.alloc(10)));
    expect(record.bytes).toBe(10);
    expect(record.flags & MSG_TRUNC).toBe(MSG_TRUNC);
    expect(u.receive(b, Buffer.alloc(10))).toBe(-EAGAIN); // the rest of the record is gone
  });

  it('throws TypeError for arguments of the wrong type', () => {
    const [a] = pair(u);
    expect(() => u.send('1' as unknown as number, Buffer.alloc(1))).toThrow(TypeError);
    expect(() => u.send(a, 'text' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => u.send(a, Buffer.alloc(1), [-1])).toThrow(TypeError);
    expect(() => u.receive(a, new Uint16Array(2) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => u.watch(a, READABLE, 'f' as unknown as () => void)).toThrow(TypeError);
    expect(() => u.watch(a, 64, () => {})).toThrow(TypeError);
  });

  it('watch() reports READABLE when a record arrives, inside an async context', async () => {
    const [a, b] = pair(u);
    const ready = deferred<{ events: number; asyncId: number }>();
    const watcher = u.watch(b, READABLE, (events) => ready.resolve({ events, asyncId: executionAsyncId() }));
    try {
      u.send(a, Buffer.from('ping'));
      const { events, asyncId } = await withTimeout(ready.promise, 'READABLE');
      expect(events & READABLE).toBe(READABLE);
      expect(asyncId).toBeGreaterThan(0);
      expect(received(u.receive(b, Buffer.alloc(8))).bytes).toBe(4);
    } finally {
      watcher.close();
      watcher.close();
    }
  });

  it('watch() reports WRITABLE once a full queue is drained', async () => {
    const [a, b] = pair(u);
    const record = Buffer.alloc(1024);
    let sent = 0;
    while (u.send(a, record) === record.length) sent++;
    expect(u.send(a, record)).toBe(-EAGAIN);
    let drained = false;
    const writable = deferred<number>();
    const watcher = u.watch(a, WRITABLE, (events) => {
      if (!drained) writable.reject(new Error(`WRITABLE (${events}) while the queue was still full`));
      else writable.resolve(events);
    });
    try {
      // Two turns of the loop, each with a poll phase, while the queue is full.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      drained = true;
      const buffer = Buffer.alloc(1024);
      let drainedCount = 0;
      while (typeof u.receive(b, buffer) !== 'number') drainedCount++;
      expect(drainedCount).toBe(sent);
      const events = await withTimeout(writable.promise, 'WRITABLE after the drain');
      expect(events & WRITABLE).toBe(WRITABLE);
    } finally {
      watcher.close();
    }
  });

  it('watch() stops calling back after close(), and update(0) pauses', async () => {
    const [a, b] = pair(u);
    const [c, d] = pair(u);
    let calls = 0;
    const first = deferred<void>();
    const watcher = u.watch(b, READABLE, () => {
      calls++;
      watcher.close(); // the record stays unread: a live level-triggered watch would fire again
      first.resolve();
    });
    u.send(a, Buffer.from('one'));
    await withTimeout(first.promise, 'the first READABLE');
    // A second watcher on another pair fires in a later poll phase, in which b is still readable.
    const witness = deferred<void>();
    const other = u.watch(d, READABLE, () => witness.resolve());
    u.send(c, Buffer.from('two'));
    await withTimeout(witness.promise, 'the witness READABLE');
    other.update(0);
    await new Promise((resolve) => setImmediate(resolve));
    other.close();
    expect(calls).toBe(1);
  });

  it('a referenced watcher keeps the process alive and an unreferenced one does not', () => {
    const script = (unref: boolean) => `
      import { createRequire } from 'node:module';
      const u = createRequire(import.meta.url)(${JSON.stringify(nativePath)});
      const [, b] = u.seqpacketPair();
      const watcher = u.watch(b, u.constants.READABLE, () => {});
      ${unref ? 'watcher.unref();' : ''}
      // Fires only when something else keeps the loop alive.
      setTimeout(() => { process.stdout.write('alive'); watcher.close(); }, 100).unref();`;
    const referenced = runChild(script(false));
    expect([referenced.status, referenced.stdout, referenced.stderr]).toEqual([0, 'alive', '']);
    const unreferenced = runChild(script(true));
    expect([unreferenced.status, unreferenced.stdout, unreferenced.stderr]).toEqual([0, '', '']);
  });

  it('an exception thrown by onReady is an uncaught exception', () => {
    const script = (handled: boolean) => `
      import { createRequire } from 'node:module';
      const u = createRequire(import.meta.url)(${JSON.stringify(nativePath)});
      const [a, b] = u.seqpacketPair();
      const watcher = u.watch(b, u.constants.READABLE, () => { throw new Error('boom from onReady'); });
      ${handled ? `process.on('uncaughtException', (e) => { process.stdout.write('caught ' + e.message); watcher.close(); watcher.update(0); });` : ''}
      u.send(a, new Uint8Array(1));`;
    const handled = runChild(script(true));
    expect([handled.status, handled.stdout, handled.stderr]).toEqual([0, 'caught boom from onReady', '']);
    const unhandled = runChild(script(false));
    expect(unhandled.status).toBe(1);
    expect(unhandled.stderr).toContain('boom from onReady');
  });

  it('watchers left open in a worker thread are closed when it is terminated', () => {
    const worker = `
      import { createRequire } from 'node:module';
      import { parentPort } from 'node:worker_threads';
      const u = createRequire(import.meta.url)(${JSON.stringify(nativePath)});
      const watchers = [];
      for (let i = 0; i < 20; i++) {
        const [a, b] = u.seqpacketPair();
        watchers.push(u.watch(b, u.constants.READABLE, () => {}));
        if (i % 2) u.send(a, new Uint8Array(1));
      }
      watchers[0].close();
      parentPort.postMessage('watching');`;
    const result = runChild(`
      import { Worker } from 'node:worker_threads';
      for (let round = 0; round < 5; round++) {
        const worker = new Worker(${JSON.stringify(worker)}, { eval: true });
        await new Promise((resolve) => worker.once('message', resolve));
        await worker.terminate();
      }
      process.stdout.write('terminated 5');`);
    expect([result.status, result.stdout, result.stderr]).toEqual([0, 'terminated 5', '']);
  });

  it('sendTo() reaches a datagram socket bound to a path and to an abstract name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-unix-'));
    try {
      const sender = u.datagramSocket();
      expect(sender).toBeGreaterThanOrEqual(0);
      opened.push(sender);
      const name = `netplex-unix-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const targets = [join(dir, 'log.sock'), `@${name}`, `\0${name}-nul`];
      for (const target of targets) {
        const receiver = u.bindDatagram(target);
        expect(receiver, target).toBeGreaterThanOrEqual(0);
        opened.push(receiver);
        expect(u.sendTo(sender, target, Buffer.from(`to ${target}`))).toBe(`to ${target}`.length);
        const buffer = Buffer.alloc(256);
        const got = received(u.receive(receiver, buffer));
        expect(buffer.subarray(0, got.bytes).toString()).toBe(`to ${target}`);
      }
      // The '@' and '\0' spellings name the same abstract socket.
      expect(u.bindDatagram(`\0${name}`)).toBe(-osConstants.errno.EADDRINUSE);
      expect(u.sendTo(sender, join(dir, 'missing.sock'), Buffer.from('x'))).toBe(-osConstants.errno.ENOENT);
      expect(u.sendTo(sender, `/${'x'.repeat(200)}`, Buffer.from('x'))).toBe(-osConstants.errno.ENAMETOOLONG);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('receive() on a datagram socket says who sent it: a path, an abstract name, or none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-unix-'));
    try {
      const receiver = u.bindDatagram(join(dir, 'server.sock'));
      expect(receiver).toBeGreaterThanOrEqual(0);
      opened.push(receiver);
      const name = `netplex-unix-from-${process.pid}-${Math.random().toString(36).slice(2)}`;
      const bound = [join(dir, 'client.sock'), `@${name}`];
      for (const path of bound) {
        const sender = u.bindDatagram(path);
        opened.push(sender);
        expect(u.sendTo(sender, join(dir, 'server.sock'), Buffer.from('ping'))).toBe(4);
        const got = received(u.receive(receiver, Buffer.alloc(64)));
        expect(got.from).toBe(path);
        // The reply goes back to the path the datagram came from.
        expect(u.sendTo(receiver, got.from!, Buffer.from('pong'))).toBe(4);
        const buffer = Buffer.alloc(64);
        const reply = received(u.receive(sender, buffer));
        expect(buffer.subarray(0, reply.bytes).toString()).toBe('pong');
        expect(reply.from).toBe(join(dir, 'server.sock'));
      }
      const anonymous = u.datagramSocket();
      opened.push(anonymous);
      expect(u.sendTo(anonymous, join(dir, 'server.sock'), Buffer.from('x'))).toBe(1);
      expect(received(u.receive(receiver, Buffer.alloc(64)))).not.toHaveProperty('from');
      // A seqpacket pair is connected: its records name no sender.
      const [a, b] = pair(u);
      u.send(a, Buffer.from('x'));
      expect(received(u.receive(b, Buffer.alloc(64)))).not.toHaveProperty('from');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
