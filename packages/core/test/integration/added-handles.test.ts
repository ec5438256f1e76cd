/**
 * Handles the server adds to the mux itself (mux.add, mux.remove) and per-handle callback objects
 * (mux.setCallbackObject), over real sockets on 127.0.0.1 and a unix socket: a small line proxy
 * connects upstream for each client, and what each side receives is compared byte for byte.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type CallbackClass,
  type Client,
  type InputBuffer,
  MultiplexServer,
  type Mux,
  type MuxHandler,
} from '../../src/index.js';
import { deferred, withTimeout } from '../helpers/client.js';
import { Peer, Watch } from '../helpers/migration.js';
import { moveAll, nativeOrSkip } from '../helpers/move.js';
import { startServer } from '../helpers/server.js';

interface ProxyState {
  /** For a client: its upstream. For an upstream: the client it serves. */
  other?: Client<ProxyState>;
}

type ProxyClient = Client<ProxyState>;

/** Upstream is a line server made by the test: it answers `up:LINE` for each line, and notes what it saw. */
class Upstream extends Watch {
  readonly server = net.createServer((socket) => this.#serve(socket));
  readonly sockets: net.Socket[] = [];
  readonly received: string[] = [];

  #serve(socket: net.Socket): void {
    this.sockets.push(socket);
    this.notify();
    let rest = '';
    socket.on('data', (d: Buffer) => {
      rest += d.toString('latin1');
      for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        this.received.push(line);
        this.notify();
        if (line === 'hangup') socket.end();
        else socket.write(`up:${line}\n`);
      }
    });
    socket.on('error', () => {});
  }

  static async start(listen: net.ListenOptions): Promise<Upstream> {
    const up = new Upstream();
    await new Promise<void>((resolve) => up.server.listen(listen, resolve));
    onTestFinished(async () => {
      for (const s of up.sockets) s.destroy();
      await new Promise((r) => up.server.close(r));
    });
    return up;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }
}

/** UpstreamSide is the callback object of an upstream handle: what upstream says goes to the client. */
class UpstreamSide implements MuxHandler<ProxyState> {
  constructor(readonly proxy: LineProxy) {}
  muxInput(_mux: Mux<ProxyState>, up: ProxyClient, input: InputBuffer): void {
    for (let line = input.line(); line !== undefined; line = input.line()) up.state.other?.write(`${line}\n`);
  }
  muxEof(_mux: Mux<ProxyState>, up: ProxyClient): void {
    this.proxy.note(`upstream eof ${up.id}`);
    up.state.other?.write('upstream gone\n');
    // An added handle's end of input ends nothing else (allowHalfOpen): the server closes it.
    up.close();
  }
  muxClose(_mux: Mux<ProxyState>, up: ProxyClient): void {
    this.proxy.note(`upstream close ${up.id}`);
  }
}

/** LineProxy connects upstream for each client and passes lines both ways; `remove` hands the client's socket back. */
class LineProxy extends MultiplexServer<ProxyState> {
  readonly events: string[] = [];
  readonly watch = new Watch();
  upstream: net.NetConnectOpts = { port: 0, host: '127.0.0.1' };
  /** Sockets handed back by mux.remove, with what the server saw of them. */
  readonly removed: net.Socket[] = [];

  note(event: string): void {
    this.events.push(event);
    this.watch.notify();
  }

  override muxConnection(mux: Mux<ProxyState>, client: ProxyClient): void {
    this.note(`connection ${client.id}`);
    const up = mux.add(net.connect(this.upstream), {
      state: { other: client },
      object: new UpstreamSide(this),
    });
    client.state.other = up;
    this.note(`added ${up.id} added=${up.added} clients=${[...mux.clients()].map((c) => c.id).join(',')}`);
  }

  override muxInput(mux: Mux<ProxyState>, client: ProxyClient, input: InputBuffer): void {
    for (let line = input.line(); line !== undefined; line = input.line()) {
      if (line === 'remove') {
        const socket = mux.remove(client) as net.Socket | undefined;
        if (socket) this.removed.push(socket);
        this.note(`removed ${client.id}: ${socket ? 'socket' : 'none'}`);
        return;
      }
      if (line === 'addr') {
        const up = client.state.other!;
        client.write(`upstream ${up.proto} ${up.peeraddr}:${up.peerport}\n`);
        continue;
      }
      client.state.other?.write(`${line}\n`);
    }
  }

  override muxClose(_mux: Mux<ProxyState>, client: ProxyClient): void {
    this.note(`close ${client.id}`);
    client.state.other?.close();
  }
}

async function connect(port: number): Promise<Peer> {
  const peer = await Peer.connect(port);
  onTestFinished(() => {
    peer.socket.destroy();
  });
  return peer;
}

async function startProxy(upstream: net.NetConnectOpts, extra: Record<string, unknown> = {}) {
  const proxy = new LineProxy({ port: ['127.0.0.1:0'], log_level: 4, ...extra });
  proxy.upstream = upstream;
  return startServer(proxy);
}

describe('mux.add', () => {
  it('serves a socket the server connected: lines flow both ways through the callback object', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const p = await connect(port);
    // Written while the upstream socket is still connecting: it waits, and arrives.
    p.send('one\ntwo\n');
    await p.waitFor('up:one\nup:two\n');
    p.send('addr\n');
    await p.waitFor(`upstream tcp 127.0.0.1:${up.port}\n`);
    expect(up.received).toEqual(['one', 'two']);
    // The added handle: a negative id, not a client, no muxConnection, no request.
    expect(server.events).toContain('added -1 added=true clients=1');
    expect(server.events.filter((e) => e.startsWith('connection'))).toEqual(['connection 1']);
    expect(server.requests).toBe(1);
    expect(server.mux.count).toBe(1);
  });

  it("runs the object's muxEof and muxClose when the upstream ends, and the server's for the client", async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const p = await connect(port);
    p.send('hangup\n');
    await p.waitFor('upstream gone\n');
    await server.watch.until(() => server.events.includes('upstream close -1'), 'the upstream to close');
    expect(server.events).toContain('upstream eof -1');
    // The server's muxClose ran for the client only, not for the upstream (it has its own object).
    expect(server.events.filter((e) => e.startsWith('close'))).toEqual([]);
    p.send('still\n');
    p.socket.end();
    await server.watch.until(() => server.events.includes('close 1'), 'the client to close');
  });

  it('reports a connect that fails through muxEof and muxClose, and goes on serving', async () => {
    const gone = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const port0 = gone.port;
    await new Promise((r) => gone.server.close(r));
    const { server, port, logs } = await startProxy({ port: port0, host: '127.0.0.1' });
    const p = await connect(port);
    await p.waitFor('upstream gone\n');
    await server.watch.until(
      () => server.events.includes('upstream close -1'),
      'the failed upstream to close',
    );
    await logs.waitFor((l) => String(l.msg).includes('ECONNREFUSED'), 'the refused connect to be logged');
    const q = await connect(port);
    await server.watch.until(
      () => server.events.includes('added -2 added=true clients=1,2'),
      'a second client',
    );
    expect(q.closed).toBe(false);
  });

  it('serves a unix socket the server connected; its proto is unix once connected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-added-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'up.sock');
    await Upstream.start({ path });
    const { port } = await startProxy({ path });
    const p = await connect(port);
    p.send('hello\n');
    await p.waitFor('up:hello\n');
    p.send('addr\n');
    await p.waitFor('upstream unix :0\n');
  });

  it('does not count added handles against max_connections', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' }, { max_connections: 2 });
    const [a, b] = [await connect(port), await connect(port)];
    a.send('a\n');
    b.send('b\n');
    await a.waitFor('up:a\n');
    await b.waitFor('up:b\n');
    // Two clients and two upstreams: a third client is refused, the first two go on.
    const c = await connect(port);
    await c.waitClosed();
    a.send('again\n');
    await a.waitFor('up:again\n');
    expect(server.mux.count).toBe(2);
  });

  it('returns the Client of a socket in the mux already, and refuses what is no stream socket', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const socket = net.connect({ port: up.port, host: '127.0.0.1' });
    onTestFinished(() => {
      socket.destroy();
    });
    const first = server.mux.add(socket);
    expect(server.mux.add(socket)).toBe(first);
    expect(() => server.mux.add({} as net.Socket)).toThrow(
      expect.objectContaining({
        code: 'MPX_ERR_MUX_HANDLE',
        message: expect.stringContaining('takes a net.Socket'),
      }),
    );
    const closed = net.connect({ port: up.port, host: '127.0.0.1' });
    closed.destroy();
    expect(() => server.mux.add(closed)).toThrow(/closed already/);
  });

  it('keeps writing to an added handle after it ended its output, until the server ends it', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const ended = deferred<void>();
    const socket = net.connect({ port: up.port, host: '127.0.0.1' });
    const h = server.mux.add(socket, { object: { muxEof: () => ended.resolve() } });
    expect(h.allowHalfOpen).toBe(true);
    await up.until(() => up.sockets.length === 1, 'the upstream to be connected');
    up.sockets[0]!.end();
    await withTimeout(ended.promise, "the added handle's muxEof");
    h.write('after your end\n');
    await up.until(() => up.received.includes('after your end'), 'the upstream to read on');
    h.close();
  });

  it('fires the timeout of an added handle through its own object', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const fired = deferred<number>();
    const socket = net.connect({ port: up.port, host: '127.0.0.1' });
    const h = server.mux.add(socket, {
      object: {
        muxTimeout: (_mux, c) => fired.resolve(c.id),
      },
    });
    server.mux.setTimeout(h, 0.02);
    expect(await withTimeout(fired.promise, 'the added handle to time out')).toBe(h.id);
  });
});

describe('mux.setCallbackObject', () => {
  it('returns the object it replaces; undefined goes back to the server; a hook the object lacks is not run', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const p = await connect(port);
    await server.watch.until(() => server.events.includes('connection 1'), 'the client');
    const client = [...server.mux.clients()][0]!;
    const seen: string[] = [];
    const own: MuxHandler<ProxyState> = {
      muxInput: (_mux, c, input) => {
        seen.push(input.text());
        input.clear();
        c.write('by the object\n');
      },
    };
    expect(server.mux.setCallbackObject(client, own)).toBeUndefined();
    expect(server.mux.callbackObject(client)).toBe(own);
    p.send('x\n');
    await p.waitFor('by the object\n');
    expect(seen).toEqual(['x\n']);
    // Back to the server's hooks: input goes upstream again.
    expect(server.mux.setCallbackObject(client, undefined)).toBe(own);
    p.send('y\n');
    await p.waitFor('up:y\n');
    // An object with no muxInput: input is not delivered (the server's hook does not run in its place).
    server.mux.setCallbackObject(client, { muxClose: () => server.note('object close') });
    p.send('z\n');
    p.socket.end();
    await server.watch.until(() => server.events.includes('object close'), "the object's muxClose");
    expect(up.received).toEqual(['y']);
    expect(server.events).not.toContain('close 1');
  });

  it('costs only that handle when an object hook throws', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port, logs } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const a = await connect(port);
    const b = await connect(port);
    await server.watch.until(() => server.events.includes('connection 2'), 'both clients');
    const first = [...server.mux.clients()].find((c) => c.id === 1)!;
    server.mux.setCallbackObject(first, {
      muxInput: () => {
        throw new Error('object hook failed');
      },
    });
    a.send('boom\n');
    await a.waitClosed();
    await logs.waitFor((l) => String(l.msg).includes('object hook failed'), 'the failure to be logged');
    b.send('fine\n');
    await b.waitFor('up:fine\n');
  });
});

describe('mux.remove', () => {
  it('hands back the socket, open, with the input not consumed put back; no hook runs for it again', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const p = await connect(port);
    p.send('before\n');
    await p.waitFor('up:before\n');
    p.send('remove\nleft in the buffer');
    await server.watch.until(() => server.events.includes('removed 1: socket'), 'the remove');
    const socket = server.removed[0]!;
    const got: Buffer[] = [];
    socket.on('data', (d: Buffer) => got.push(d));
    socket.resume();
    p.send(' and more\n');
    const watch = new Watch();
    socket.on('data', () => watch.notify());
    await watch.until(
      () => Buffer.concat(got).toString().endsWith('and more\n'),
      'the removed socket to read on',
      5000,
      () => JSON.stringify(Buffer.concat(got).toString()),
    );
    expect(Buffer.concat(got).toString()).toBe('left in the buffer and more\n');
    // The socket is the caller's: it writes to the client directly.
    socket.write('direct\n');
    await p.waitFor('direct\n');
    expect(server.mux.count).toBe(0);
    expect(server.mux.remove([...server.mux.clients()][0] ?? ({} as ProxyClient))).toBeUndefined();
    socket.destroy();
    await p.waitClosed();
    expect(server.events).not.toContain('close 1');
  });
});

/** A child that upper-cases what it reads, and exits at the end of its input. */
const UPPER = "process.stdin.on('data', (d) => process.stdout.write(String(d).toUpperCase()));";

describe('mux.add of a child process', () => {
  it('reads its stdout as input and writes to its stdin; ending the handle ends its input, and its exit closes the handle', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const child = spawn(process.execPath, ['-e', UPPER], { stdio: ['pipe', 'pipe', 'inherit'] });
    onTestFinished(() => {
      child.kill();
    });
    const seen: string[] = [];
    const watch = new Watch();
    const h = server.mux.add(child, {
      object: {
        muxInput: (_mux, _c, input) => {
          seen.push(input.text());
          input.clear();
          watch.notify();
        },
        muxEof: () => {
          seen.push('eof');
          watch.notify();
        },
        muxClose: () => {
          seen.push('close');
          watch.notify();
        },
      },
    });
    expect(h.proto).toBe('pipe');
    expect(h.peerport).toBe(child.pid);
    expect(String(h)).toBe(`#-1 pid ${child.pid}`);
    expect(h.write('hello\n')).toBe(true);
    await watch.until(
      () => seen.join('').includes('HELLO\n'),
      'the child to answer',
      10_000,
      () => JSON.stringify(seen),
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    h.shutdown();
    expect(await withTimeout(exited, 'the child to exit at the end of its input', 10_000)).toBe(0);
    await watch.until(
      () => seen.includes('close'),
      'the handle to close',
      10_000,
      () => JSON.stringify(seen),
    );
    expect(seen.slice(-2)).toEqual(['eof', 'close']);
    expect(server.mux.count).toBe(0);
  });

  it('survives a child that exits while it is written to', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const child = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const closed = deferred<void>();
    const h = server.mux.add(child, { object: { muxClose: () => closed.resolve() } });
    await new Promise((resolve) => child.once('exit', resolve));
    for (let i = 0; i < 20; i++) h.write(Buffer.alloc(64 * 1024));
    await withTimeout(closed.promise, "the exited child's handle to close", 10_000);
    // The server goes on.
    const p = await connect(port);
    p.send('still\n');
    await p.waitFor('up:still\n');
  });

  it('refuses a child without stdin and stdout pipes', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    onTestFinished(() => {
      child.kill();
    });
    expect(() => server.mux.add(child)).toThrow(
      expect.objectContaining({
        code: 'MPX_ERR_MUX_HANDLE',
        message: expect.stringContaining("stdio 'pipe'"),
      }),
    );
  });
});

async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    try {
      s.close();
    } catch {
      // closed by the test already
    }
  });
  return s;
}

/** nextDatagram is the next datagram `s` receives. */
function nextDatagram(s: dgram.Socket): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve) => s.once('message', (m) => resolve(m.toString()))),
    'a datagram',
  );
}

describe('mux.add of a UDP socket', () => {
  it('is one handle: each datagram is appended to its input, and writes go back to the last sender', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const mine = await udpSocket();
    const seen: string[] = [];
    const h = server.mux.add(mine, {
      object: {
        muxInput: (mux, c, input) => {
          const text = input.text();
          input.clear();
          seen.push(`${text} from ${mux.udpPeer(c)?.port}`);
          c.write(`got ${text} (udp ${mux.isUdp(c)})`);
        },
      },
    });
    expect(h.proto).toBe('udp');
    expect(h.id).toBe(-1);
    const [a, b] = [await udpSocket(), await udpSocket()];
    const port = mine.address().port;
    const toA = nextDatagram(a);
    a.send('one', port, '127.0.0.1');
    expect(await toA).toBe('got one (udp true)');
    const toB = nextDatagram(b);
    b.send('two', port, '127.0.0.1');
    expect(await toB).toBe('got two (udp true)');
    expect(seen).toEqual([`one from ${a.address().port}`, `two from ${b.address().port}`]);
    expect(h.peerport).toBe(b.address().port);
    // Not among the clients, and no request.
    expect(server.mux.count).toBe(0);
    expect(server.requests).toBe(0);
  });

  it('writes to the connected address before any datagram came', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const peer = await udpSocket();
    const mine = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => mine.connect(peer.address().port, '127.0.0.1', resolve));
    const h = server.mux.add(mine);
    expect(h.peerport).toBe(peer.address().port);
    const got = nextDatagram(peer);
    h.write('hello');
    expect(await got).toBe('hello');
    h.close();
  });

  it('runs muxClose when the socket closes, and hands the socket back with mux.remove', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server } = await startProxy({ port: up.port, host: '127.0.0.1' });
    const closed = deferred<void>();
    const first = await udpSocket();
    server.mux.add(first, { object: { muxClose: () => closed.resolve() } });
    first.close();
    await withTimeout(closed.promise, 'muxClose of the closed socket');

    const second = await udpSocket();
    let inputs = 0;
    const h = server.mux.add(second, { object: { muxInput: () => void inputs++ } });
    expect(server.mux.add(second)).toBe(h);
    expect(server.mux.remove(h)).toBe(second);
    const sender = await udpSocket();
    const mineNow = nextDatagram(second);
    sender.send('after remove', second.address().port, '127.0.0.1');
    // The socket is the caller's again: it reads the datagram itself; netplex does not.
    expect(await mineNow).toBe('after remove');
    expect(inputs).toBe(0);
  });
});

/** PairState names the other end by id, so that it survives a migration (muxFreeze returns it). */
interface PairState {
  peerId?: number;
}

/** Pairs is a proxy with no callback object: its own hooks serve both ends, found by id. */
class Pairs extends MultiplexServer<PairState> {
  upstream = 0;
  readonly byId = new Map<number, Client<PairState>>();
  override muxConnection(mux: Mux<PairState>, client: Client<PairState>): void {
    const up = mux.add(net.connect({ port: this.upstream, host: '127.0.0.1' }), {
      state: { peerId: client.id },
    });
    client.state.peerId = up.id;
    this.byId.set(client.id, client);
    this.byId.set(up.id, up);
  }
  override muxThaw(_mux: Mux<PairState>, client: Client<PairState>, state: unknown): void {
    client.state = state as PairState;
    this.byId.set(client.id, client);
  }
  override muxInput(_mux: Mux<PairState>, client: Client<PairState>, input: InputBuffer): void {
    const lines = input.bytes();
    const last = lines.lastIndexOf(0x0a);
    if (last === -1) return;
    this.byId.get(client.state.peerId!)?.write(input.take(last + 1)!);
  }
}

const unix = nativeOrSkip('added handles across a migration');

describe.runIf(unix)('an added socket on a migrating reload', () => {
  it('moves like an accepted one: the same upstream connection, served by the new server', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startServer(new Pairs({ port: ['127.0.0.1:0'], log_level: 0 }));
    const next = await startServer(new Pairs({ port: ['127.0.0.1:0'], log_level: 0 }));
    old.server.upstream = up.port;
    next.server.upstream = up.port;
    const p = await connect(old.port);
    p.send('before\n');
    await p.waitFor('up:before\n');
    expect(await moveAll(old.server, next.server)).toMatchObject({ migrated: 2, drained: 0, failed: 0 });
    p.send('after\n');
    await p.waitFor('up:after\n');
    expect(up.received).toEqual(['before', 'after']);
    // The same upstream connection: moved, not made again.
    expect(up.sockets).toHaveLength(1);
    const moved = [...next.server.byId.values()].find((c) => c.added)!;
    expect(moved.id).toBe(-1);
    expect(next.server.mux.count).toBe(1);
    expect(next.server.requests).toBe(1);
    expect(old.server.status().connections).toBe(0);
    // The next handle the new server adds is numbered on from the old server's.
    const q = await connect(next.port);
    q.send('x\n');
    await q.waitFor('up:x\n');
    expect([...next.server.byId.keys()].sort((a, b) => a - b)).toEqual([-2, -1, 1, 2]);
  });

  it('does not move a handle with a callback object: it stays, and drains', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startProxy({ port: up.port, host: '127.0.0.1' });
    const next = await startProxy({ port: up.port, host: '127.0.0.1' });
    const p = await connect(old.port);
    p.send('before\n');
    await p.waitFor('up:before\n');
    const counts = await moveAll(old.server, next.server);
    // The client moved (no object of its own); its upstream has one, and stayed.
    expect(counts).toMatchObject({ migrated: 1, drained: 1, failed: 0 });
  });
});

/** Linked is a proxy that links each client to its upstream (mux.link) and finds it with mux.linked. */
class Linked extends MultiplexServer {
  upstream = 0;
  readonly events: string[] = [];
  readonly watch = new Watch();
  override muxConnection(mux: Mux, client: Client): void {
    mux.link(client, mux.add(net.connect({ port: this.upstream, host: '127.0.0.1' })));
  }
  override muxInput(mux: Mux, client: Client, input: InputBuffer): void {
    const last = input.bytes().lastIndexOf(0x0a);
    if (last !== -1) mux.linked(client)?.write(input.take(last + 1)!);
    this.events.push(`input ${client.id}`);
    this.watch.notify();
  }
  override muxClose(mux: Mux, client: Client): void {
    this.events.push(`close ${client.id}, linked to ${mux.linked(client)?.id}`);
    this.watch.notify();
    mux.linked(client)?.close();
  }
}

async function startLinked(upstream: number) {
  const started = await startServer(new Linked({ port: ['127.0.0.1:0'], log_level: 0 }));
  started.server.upstream = upstream;
  return started;
}

describe('mux.link', () => {
  it('links two handles each to the other until one closes; refuses a handle linked to itself or not in the mux', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startLinked(up.port);
    const p = await connect(port);
    p.send('one\n');
    await p.waitFor('up:one\n');
    const client = [...server.mux.clients()][0]!;
    const upstream = server.mux.linked(client)!;
    expect(upstream.added).toBe(true);
    expect(server.mux.linked(upstream)).toBe(client);
    expect(() => server.mux.link(client, client)).toThrow(/cannot be linked to itself/);
    expect(() => server.mux.link(client, { toString: () => '#9' } as Client)).toThrow(/#9 is not in the mux/);
    // muxClose still finds the other end; after it, the link is gone.
    p.socket.destroy();
    await server.watch.until(
      () => server.events.filter((e) => e.startsWith('close')).length === 2,
      'both ends to close',
      5000,
      () => JSON.stringify(server.events),
    );
    // The client's muxClose found its upstream (and closed it); the upstream's found no link left.
    expect(server.events.filter((e) => e.startsWith('close'))).toEqual([
      `close 1, linked to ${upstream.id}`,
      `close ${upstream.id}, linked to undefined`,
    ]);
    expect(server.mux.linked(client)).toBeUndefined();
    expect(server.mux.linked(upstream)).toBeUndefined();
  });

  it('undoes a link with undefined, and a new link undoes the old', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const { server, port } = await startLinked(up.port);
    await connect(port);
    await connect(port);
    await up.until(() => up.sockets.length === 2, 'two upstreams');
    const [a, b] = [...server.mux.clients()];
    const upA = server.mux.linked(a!)!;
    server.mux.link(a!, b!);
    expect(server.mux.linked(a!)).toBe(b);
    expect(server.mux.linked(upA)).toBeUndefined();
    server.mux.link(a!, undefined);
    expect(server.mux.linked(a!)).toBeUndefined();
    expect(server.mux.linked(b!)).toBeUndefined();
  });
});

describe.runIf(unix)('linked handles on a migrating reload', () => {
  it('move in one step while lines flow: every line answered, in order, over the same upstream connection', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startLinked(up.port);
    const next = await startLinked(up.port);
    const p = await connect(old.port);
    let sent = 0;
    const say = () => p.send(`line ${sent++}\n`);
    for (let i = 0; i < 5; i++) say();
    await p.waitFor('up:line 4\n');
    const counts = await moveAll(
      old.server,
      next.server,
      // Lines sent while the pair is on its way, after each of the two is taken in.
      async () => {
        for (let i = 0; i < 3; i++) say();
      },
      async (id) => {
        if (id !== -1) return;
        // The client is taken in, its upstream not yet: the client's lines reach the new server
        // first, and wait there for the upstream. Nothing says when they arrive while its hooks
        // wait, so this looks, a bounded number of times.
        const moved = () => [...next.server.mux.clients()].find((c) => c.id === 1);
        for (
          let i = 0;
          i < 200 && !(moved()?.input.length ?? 0) && !next.server.events.includes('input 1');
          i++
        )
          await new Promise((r) => setTimeout(r, 5));
        expect(moved()?.input.length).toBeGreaterThan(0);
        expect(next.server.events).not.toContain('input 1');
      },
    );
    expect(counts).toMatchObject({ migrated: 2, drained: 0, failed: 0 });
    for (let i = 0; i < 3; i++) say();
    const last = `up:line ${sent - 1}\n`;
    await p.waitFor(last);
    expect(p.text).toBe(Array.from({ length: sent }, (_, i) => `up:line ${i}\n`).join(''));
    expect(up.sockets).toHaveLength(1);
    const client = [...next.server.mux.clients()][0]!;
    expect(next.server.mux.linked(client)?.id).toBe(-1);
    expect(old.server.status().connections).toBe(0);
  });

  it('neither moves when one of them cannot: both drain where they are', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startLinked(up.port);
    const next = await startLinked(up.port);
    const p = await connect(old.port);
    p.send('a\n');
    await p.waitFor('up:a\n');
    [...old.server.mux.clients()][0]!.movable = false;
    expect(await moveAll(old.server, next.server)).toMatchObject({ migrated: 0, drained: 2, failed: 0 });
    p.send('b\n');
    await p.waitFor('up:b\n');
    expect(old.server.status().connections).toBe(2);
  });
});

/** UpstreamEnd is a registered callback class: it counts the lines it passed, and that count moves. */
class UpstreamEnd implements MuxHandler {
  passed = 0;
  thawedWith: unknown;
  muxInput(mux: Mux, up: Client, input: InputBuffer): void {
    const last = input.bytes().lastIndexOf(0x0a);
    if (last === -1) return;
    const lines = input.take(last + 1)!;
    this.passed += lines.toString().split('\n').length - 1;
    mux.linked(up)?.write(lines);
  }
  muxFreeze(): unknown {
    return { passed: this.passed };
  }
  muxThaw(_mux: Mux, _up: Client, state: unknown): void {
    this.thawedWith = state;
    this.passed = (state as { passed: number }).passed;
  }
}

/** WithObjects is Linked with a callback object for each upstream, of a class it registers. */
class WithObjects extends Linked {
  static override callbackClasses: Readonly<Record<string, CallbackClass>> = { upstream: UpstreamEnd };
  override muxConnection(mux: Mux, client: Client): void {
    const up = mux.add(net.connect({ port: this.upstream, host: '127.0.0.1' }), {
      object: new UpstreamEnd(),
    });
    mux.link(client, up);
  }
}

/** Unregistering is WithObjects after new code dropped the class from callbackClasses. */
class Unregistering extends WithObjects {
  static override callbackClasses: Readonly<Record<string, CallbackClass>> = {};
}

describe.runIf(unix)('callback objects on a migrating reload', () => {
  it('are made anew in the new worker from the registered class, with what muxFreeze returned', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startServer(new WithObjects({ port: ['127.0.0.1:0'], log_level: 0 }));
    const next = await startServer(new WithObjects({ port: ['127.0.0.1:0'], log_level: 0 }));
    old.server.upstream = up.port;
    next.server.upstream = up.port;
    const p = await connect(old.port);
    p.send('a\nb\n');
    await p.waitFor('up:b\n');
    const before = old.server.mux.callbackObject(old.server.mux.linked([...old.server.mux.clients()][0]!)!);
    expect(await moveAll(old.server, next.server)).toMatchObject({ migrated: 2, drained: 0, failed: 0 });
    const client = [...next.server.mux.clients()][0]!;
    const object = next.server.mux.callbackObject(next.server.mux.linked(client)!) as UpstreamEnd;
    expect(object).toBeInstanceOf(UpstreamEnd);
    expect(object).not.toBe(before);
    expect(object.thawedWith).toEqual({ passed: 2 });
    p.send('c\n');
    await p.waitFor('up:c\n');
    expect(object.passed).toBe(3);
  });

  it('closes a connection whose class the new code no longer registers, saying which', async () => {
    const up = await Upstream.start({ port: 0, host: '127.0.0.1' });
    const old = await startServer(new WithObjects({ port: ['127.0.0.1:0'], log_level: 0 }));
    const next = await startServer(new Unregistering({ port: ['127.0.0.1:0'], log_level: 1 }));
    old.server.upstream = up.port;
    const p = await connect(old.port);
    p.send('a\n');
    await p.waitFor('up:a\n');
    expect(await moveAll(old.server, next.server)).toMatchObject({ migrated: 2, failed: 0 });
    await next.logs.waitFor(
      (l) =>
        String(l.msg).includes('callback object of class "upstream", which this server does not register'),
      'the closed connection to be logged',
    );
    // Its client is closed with it (the server's muxClose closes what is linked).
    await p.waitClosed();
  });
});
