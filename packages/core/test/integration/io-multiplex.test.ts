/**
 * IO::Multiplex's API as Perl servers use it, over real sockets on 127.0.0.1: muxOutbufferEmpty,
 * the buffers (buffered mode, outbuffer, killOutput, inbuffer), shutdown of either side or both,
 * timeouts re-armed and cancelled (also while a hook runs, and while the connection moves to
 * another server), udpPeer and isUdp.
 *
 * The server is steered by commands, a line each; what it does is noted in `events`, and what a
 * client receives is compared byte for byte.
 */
import dgram from 'node:dgram';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type Client,
  type InputBuffer,
  type Listener,
  type MaybePromise,
  MultiplexServer,
  type Mux,
  type ShutdownHow,
} from '../../src/index.js';
import { deferred, withTimeout } from '../helpers/client.js';
import { Peer, pattern, Watch } from '../helpers/migration.js';
import { moveAll, nativeOrSkip } from '../helpers/move.js';
import { type LogSink, startServer } from '../helpers/server.js';

type ApiClient = Client<Record<string, unknown>>;

/** More than a loopback socket and the kernel's buffers hold while the client does not read. */
const BIG = 8 * 1024 * 1024;

/**
 * Api runs one command a line: `buffer`, `unbuffer`, `big:N` (N bytes of `pattern`), `peek`
 * (writes the length of outbuffer), `kill`, `withdraw:TEXT` (writes TEXT, notes the length of
 * outbuffer, kills the output, then writes `withdrawn` and the length of outbuffer again),
 * `replace:TEXT`, `shut:HOW`, `timeout:S`, `cancel`, `rearm:N` (a timeout that muxTimeout re-arms
 * N times, then cancels), `hold:NAME` (the hook waits for gate NAME, as a hook awaiting a database
 * does), `upper` (the rest of the input, upper-cased with mux.inbuffer), `halfopen` (sets
 * client.allowHalfOpen); any other line is echoed.
 */
class Api extends MultiplexServer {
  readonly events: string[] = [];
  readonly watch = new Watch();
  readonly clientsById = new Map<number, ApiClient>();
  readonly #gates = new Map<string, ReturnType<typeof deferred<void>>>();
  readonly #rearms = new Map<number, number>();

  note(event: string): void {
    this.events.push(event);
    this.watch.notify();
  }

  waitEvent(event: string, ms = 5000): Promise<void> {
    return this.watch.until(
      () => this.events.includes(event),
      `the server to note ${event}`,
      ms,
      () => `noted: ${JSON.stringify(this.events.slice(-12))}`,
    );
  }

  gate(name: string): ReturnType<typeof deferred<void>> {
    let g = this.#gates.get(name);
    if (!g) {
      g = deferred();
      this.#gates.set(name, g);
    }
    return g;
  }

  openAll(): void {
    for (const g of this.#gates.values()) g.resolve();
  }

  override muxConnection(_mux: Mux, client: ApiClient): void {
    this.clientsById.set(client.id, client);
    this.note(`connection #${client.id}`);
  }

  override muxInput(mux: Mux, client: ApiClient, input: InputBuffer): MaybePromise<void> {
    return this.#run(mux, client, input);
  }

  #run(mux: Mux, client: ApiClient, input: InputBuffer): MaybePromise<void> {
    for (let line = input.line(); line !== undefined; line = input.line()) {
      const [cmd = '', arg = ''] = line.split(':');
      this.note(`input #${client.id} ${line}`);
      switch (cmd) {
        case 'buffer':
          mux.bufferOutput(client);
          client.write('buffered\n');
          break;
        case 'unbuffer':
          mux.bufferOutput(client, false);
          break;
        case 'big':
          client.write(pattern(Number(arg)));
          if (mux.isUdp(client)) break;
          this.note(`big #${client.id} kept ${tryPeek(mux, client)}`);
          break;
        case 'peek':
          client.write(`${tryPeek(mux, client)}\n`);
          break;
        case 'kill':
          try {
            mux.killOutput(client);
            this.note(`killed #${client.id}, kept ${mux.outbuffer(client).length}`);
          } catch (err) {
            client.write(`${(err as { code?: string }).code}\n`);
            break;
          }
          client.write('after-kill\n');
          break;
        case 'withdraw':
          client.write(`${arg}\n`);
          this.note(`withdraw #${client.id} kept ${mux.outbuffer(client).length}`);
          mux.killOutput(client);
          client.write('withdrawn\n');
          client.write(`${mux.outbuffer(client).length}\n`);
          break;
        case 'replace':
          mux.outbuffer(client, `${arg}\n`);
          break;
        case 'shut':
          mux.shutdown(client, (/^\d$/.test(arg) ? Number(arg) : arg) as ShutdownHow);
          this.note(`shut #${client.id} ${arg}`);
          break;
        case 'write-after':
          this.note(`write after shutdown #${client.id}: ${client.write('late\n')}`);
          break;
        case 'timeout':
          mux.setTimeout(client, Number(arg));
          client.write('armed\n');
          break;
        case 'cancel':
          mux.setTimeout(client, null);
          client.write('cancelled\n');
          break;
        case 'rearm':
          this.#rearms.set(client.id, Number(arg));
          mux.setTimeout(client, 0.01);
          break;
        case 'hold':
          this.note(`holding #${client.id} ${arg}`);
          return this.gate(arg).promise.then(() => {
            this.note(`held #${client.id} ${arg}`);
            return this.#run(mux, client, input);
          });
        case 'halfopen':
          client.allowHalfOpen = true;
          client.write('half-open\n');
          break;
        case 'upper':
          mux.inbuffer(client, mux.inbuffer(client).toString('latin1').toUpperCase());
          break;
        default:
          client.write(`${line}\n`);
      }
    }
    return undefined;
  }

  /** muxEof waits for gate `eof` first when this is set (a hook that awaits). */
  holdEof = false;

  override async muxEof(_mux: Mux, client: ApiClient, input: InputBuffer): Promise<void> {
    const left = input.text();
    this.note(`eof #${client.id} ${JSON.stringify(left)}`);
    if (this.holdEof) await this.gate('eof').promise;
    this.note(`goodbye written #${client.id}: ${client.write(`bye ${left}\n`)}`);
  }

  override muxTimeout(mux: Mux, target: ApiClient | Listener): void {
    if (target.kind !== 'client') return;
    this.note(`timeout #${target.id}`);
    target.write(`timeout #${target.id}\n`);
    const left = this.#rearms.get(target.id);
    if (left === undefined) return;
    if (left > 1) {
      this.#rearms.set(target.id, left - 1);
      mux.setTimeout(target, 0.01);
    } else {
      this.#rearms.delete(target.id);
      mux.setTimeout(target, null);
      target.write(`rearms done, timeout ${String(mux.getTimeout(target))}\n`);
    }
  }

  override muxClose(_mux: Mux, client: ApiClient): void {
    this.note(`close #${client.id}`);
  }
}

/** tryPeek is the length of a client's outbuffer, or the error code outbuffer throws. */
function tryPeek(mux: Mux, client: ApiClient): string {
  try {
    return String(mux.outbuffer(client).length);
  } catch (err) {
    return String((err as { code?: string }).code);
  }
}

/** Drained writes a large reply a piece at a time, the next piece in muxOutbufferEmpty. */
class Drained extends Api {
  readonly pieceBytes = 64 * 1024;
  empties = 0;
  /** The most output a client had queued just after a piece was written. */
  mostQueued = 0;
  readonly #streams = new Map<number, { sent: number; total: number }>();

  override muxInput(mux: Mux, client: ApiClient, input: InputBuffer): MaybePromise<void> {
    const line = input.line();
    if (line?.startsWith('stream:')) {
      this.#streams.set(client.id, { sent: 0, total: Number(line.slice(7)) });
      this.#piece(client);
      return undefined;
    }
    if (line !== undefined) client.write(`${line}\n`);
    return super.muxInput(mux, client, input);
  }

  override muxOutbufferEmpty(_mux: Mux, client: ApiClient): void {
    this.empties++;
    this.note(`empty #${client.id} ${this.empties}`);
    this.#piece(client);
  }

  #piece(client: ApiClient): void {
    const s = this.#streams.get(client.id);
    if (!s || s.sent >= s.total) return;
    const whole = pattern(s.total);
    const n = Math.min(this.pieceBytes, s.total - s.sent);
    client.write(whole.subarray(s.sent, s.sent + n));
    s.sent += n;
    this.mostQueued = Math.max(this.mostQueued, client.outputLength);
    if (s.sent >= s.total) this.note(`streamed #${client.id}`);
  }
}

const local = { port: ['127.0.0.1:0'], log_level: 4, max_output_buffer: 64 * 1024 * 1024 };

async function start<T extends Api>(server: T): Promise<{ server: T; port: number; logs: LogSink }> {
  const started = await startServer(server);
  onTestFinished(() => server.openAll());
  return started;
}

async function connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<Peer> {
  const peer = await Peer.connect(port, options);
  onTestFinished(() => {
    peer.socket.destroy();
  });
  return peer;
}

describe('muxOutbufferEmpty', () => {
  it('runs after each reply has been handed to the kernel, in the connection turn, after the muxInput that wrote it', async () => {
    const { server, port } = await start(new Drained(local));
    const p = await connect(port);
    p.send('one\n');
    await p.waitFor('one\n');
    await server.waitEvent('empty #1 1');
    p.send('two\n');
    await p.waitFor('two\n');
    await server.waitEvent('empty #1 2');
    expect(server.events.filter((e) => !e.startsWith('connection'))).toEqual(['empty #1 1', 'empty #1 2']);
  });

  it('streams a large reply a piece at a time to a client that reads late: every byte in order, one piece queued at most', async () => {
    const { server, port } = await start(new Drained(local));
    const p = await connect(port);
    p.socket.pause();
    p.send(`stream:${BIG}\n`);
    // The kernel's buffers fill; the server writes no further piece until the socket takes one.
    await server.waitEvent('empty #1 2');
    p.socket.resume();
    await p.waitBytes(BIG, 30_000);
    await server.waitEvent('streamed #1');
    const pieces = BIG / server.pieceBytes;
    // One after each piece: the last finds nothing more to write.
    await server.waitEvent(`empty #1 ${pieces}`);
    expect(p.received.equals(pattern(BIG))).toBe(true);
    expect(server.mostQueued).toBeLessThanOrEqual(server.pieceBytes);
    expect(server.empties).toBe(pieces);
  });
});

describe('the output buffers', () => {
  it('refuses outbuffer and killOutput in the default mode, with MPX_ERR_NOT_BUFFERED, and goes on serving', async () => {
    const { port } = await start(new Api(local));
    const p = await connect(port);
    p.send('peek\nkill\necho\n');
    await p.waitFor('echo\n');
    expect(p.text).toBe('MPX_ERR_NOT_BUFFERED\nMPX_ERR_NOT_BUFFERED\necho\n');
  });

  it('keeps a buffered client output that the socket has not taken; killOutput drops it and the connection goes on', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port);
    p.socket.pause();
    p.send(`buffer\nbig:${BIG}\n`);
    await server.watch.until(() => server.events.some((e) => e.startsWith('big #1 kept')), 'the big write');
    const kept = Number(
      server.events
        .find((e) => e.startsWith('big #1 kept'))!
        .split(' ')
        .at(-1),
    );
    // All but the slice with the socket (and 'buffered\n', which went first).
    expect(kept).toBeGreaterThanOrEqual(BIG - 64 * 1024);
    p.send('kill\n');
    await server.waitEvent('killed #1, kept 0');
    p.socket.resume();
    await p.waitFor('after-kill\n', 10_000);
    const got = p.received;
    const head = Buffer.from('buffered\n');
    const tail = Buffer.from('after-kill\n');
    expect(got.subarray(0, head.length).equals(head)).toBe(true);
    expect(got.subarray(got.length - tail.length).equals(tail)).toBe(true);
    const sent = got.subarray(head.length, got.length - tail.length);
    expect(sent.length).toBeLessThan(BIG);
    expect(sent.equals(pattern(BIG).subarray(0, sent.length))).toBe(true);
    p.send('still here\n');
    await p.waitFor('still here\n');
  });

  it('keeps what a hook writes until the end of its loop turn: the hook reads it back and withdraws it, none of it is sent', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port);
    p.send('buffer\n');
    await p.waitFor('buffered\n');
    p.send('withdraw:secret\n');
    await p.waitFor('withdrawn\n10\n');
    p.send('withdraw:again\n');
    await p.waitFor('withdrawn\n10\nwithdrawn\n10\n');
    expect(server.events.filter((e) => e.startsWith('withdraw #1'))).toEqual([
      `withdraw #1 kept ${'secret\n'.length}`,
      `withdraw #1 kept ${'again\n'.length}`,
    ]);
    // `withdrawn\n` is still kept when the hook reads the length after writing it.
    expect(p.received.toString()).toBe('buffered\nwithdrawn\n10\nwithdrawn\n10\n');
  });

  it('replaces the kept output with outbuffer(client, data)', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port);
    p.socket.pause();
    p.send(`buffer\nbig:${BIG}\nreplace:REPLACED\n`);
    await server.waitEvent('input #1 replace:REPLACED');
    p.socket.resume();
    await p.waitFor('REPLACED\n', 10_000);
    const got = p.received;
    const sent = got.subarray('buffered\n'.length, got.length - 'REPLACED\n'.length);
    expect(sent.length).toBeLessThan(BIG);
    expect(sent.equals(pattern(BIG).subarray(0, sent.length))).toBe(true);
    expect(p.closed).toBe(false);
  });

  it('sends every kept byte, in order, before a shutdown, and when buffered mode is turned off', async () => {
    const { port } = await start(new Api(local));
    const p = await connect(port);
    const n = 1024 * 1024;
    p.send(`buffer\nbig:${n}\nunbuffer\nbig:${n}\nbuffer\nbig:${n}\nshut:write\n`);
    await p.until(() => p.ended, 'the server to end its side', 10_000);
    expect(
      p.received.equals(
        Buffer.concat([
          Buffer.from('buffered\n'),
          pattern(n),
          pattern(n),
          Buffer.from('buffered\n'),
          pattern(n),
        ]),
      ),
    ).toBe(true);
  });

  it('reads and replaces the unconsumed input with inbuffer; input that comes later is appended', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port);
    p.send('upper\nabc\ndef');
    await p.waitFor('ABC\n');
    await server.waitEvent('input #1 ABC');
    p.send('ghi\n');
    await p.waitFor('DEFghi\n');
    expect(p.text).toBe('ABC\nDEFghi\n');
  });
});

describe('mux.shutdown', () => {
  it("'write' (1) ends the server side after the output; the client may go on sending; later writes are refused", async () => {
    for (const how of ['write', '1']) {
      const { server, port } = await start(new Api(local));
      const p = await connect(port, { allowHalfOpen: true });
      p.send(`first\nshut:${how}\n`);
      await p.until(() => p.ended, 'the server to end its side');
      expect(p.text).toBe('first\n');
      p.send('write-after\n');
      await server.waitEvent('write after shutdown #1: false');
      p.socket.end();
      await p.waitClosed();
      await server.waitEvent('close #1');
    }
  });

  it("'read' (0) drops later input; muxEof runs with what was left, its goodbye is sent, then the connection closes", async () => {
    for (const how of ['read', '0']) {
      const { server, port, logs } = await start(new Api(local));
      server.holdEof = true;
      const p = await connect(port);
      p.send(`hello\nshut:${how}\nleft over`);
      await server.waitEvent('eof #1 "left over"');
      // Still open (muxEof awaits): what the client sends now is read and dropped.
      p.send('\nnever seen\n');
      await logs.waitFor(
        (l) => String(l.msg).includes('bytes of input after its read side was shut'),
        'the drop',
      );
      server.gate('eof').resolve();
      await p.waitClosed();
      expect(p.text).toBe('hello\nbye left over\n');
      await server.waitEvent('close #1');
      expect(server.events.filter((e) => e.startsWith('input'))).toEqual([
        'input #1 hello',
        `input #1 shut:${how}`,
      ]);
      expect(server.events).toContain('eof #1 "left over"');
    }
  });

  it("'both' (2) shuts both sides at once: muxEof still runs with what was left, and its writes are refused", async () => {
    for (const how of ['both', '2']) {
      const { server, port } = await start(new Api(local));
      const p = await connect(port);
      p.send(`hello\nshut:${how}\nleft`);
      await p.waitClosed();
      expect(p.text).toBe('hello\n');
      await server.waitEvent('close #1');
      expect(server.events).toContain('eof #1 "left"');
      expect(server.events).toContain('goodbye written #1: false');
    }
  });

  it('keeps its output open after the client ended its own, with allowHalfOpen, until the server ends it', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port, { allowHalfOpen: true });
    p.send('halfopen\n');
    await p.waitFor('half-open\n');
    p.socket.end();
    await server.waitEvent('goodbye written #1: true');
    const client = server.clientsById.get(1)!;
    expect(client.write('later\n')).toBe(true);
    await p.waitFor('bye \nlater\n');
    expect(p.ended).toBe(false);
    client.shutdown();
    await p.until(() => p.ended, 'the server to end its side');
  });

  it('throws a RangeError naming what it takes for any other side', async () => {
    const { server, port } = await start(new Api(local));
    await connect(port);
    await server.waitEvent('connection #1');
    expect(() => server.mux.shutdown(server.clientsById.get(1)!, 3 as ShutdownHow)).toThrow(
      /takes 0, 1, 2, 'read', 'write' or 'both', got 3/,
    );
  });
});

describe('timeouts', () => {
  it('re-armed from muxTimeout fires each time, and cancelled with null there is gone', async () => {
    const { server, port } = await start(new Api(local));
    const p = await connect(port);
    p.send('rearm:3\n');
    await p.waitFor('rearms done, timeout undefined\n');
    expect(p.text).toBe('timeout #1\ntimeout #1\ntimeout #1\nrearms done, timeout undefined\n');
    // A fourth would come in the connection's turn before this echo.
    p.send('ping\n');
    await p.waitFor('ping\n');
    expect(server.events.filter((e) => e === 'timeout #1')).toHaveLength(3);
  });

  it('never fires a timeout that came due while a hook ran and was cancelled by it; a replacement fires once', async () => {
    const { server, port, logs } = await start(new Api(local));
    const [a, b] = [await connect(port), await connect(port)];
    await server.waitEvent('connection #2');
    // Each arms a timeout due at once, then its hook awaits; the timeout comes due meanwhile.
    a.send('timeout:0\nhold:a\ncancel\n');
    b.send('timeout:0\nhold:b\ntimeout:0.05\n');
    for (const id of [1, 2])
      await logs.waitFor(
        (l) => l.conn === id && String(l.msg).includes('came due while a hook runs'),
        `the timeout of #${id} to come due while its hook runs`,
      );
    server.gate('a').resolve();
    server.gate('b').resolve();
    await a.waitFor('cancelled\n');
    await b.waitFor('timeout #2\n');
    a.send('ping\n');
    await a.waitFor('ping\n');
    b.send('ping\n');
    await b.waitFor('ping\n');
    expect(a.text).toBe('armed\ncancelled\nping\n');
    expect(b.text).toBe('armed\narmed\ntimeout #2\nping\n');
  });
});

describe('udpPeer and isUdp', () => {
  it('say where a datagram came from, and that its client is UDP; nothing for a stream client', async () => {
    class Peers extends MultiplexServer {
      override muxInput(mux: Mux, client: Client, input: InputBuffer): void {
        input.clear();
        client.write(`${JSON.stringify(mux.udpPeer(client) ?? null)} ${mux.isUdp(client)}\n`);
      }
    }
    const { server } = await startServer(
      new Peers({ port: ['127.0.0.1:0/udp', '127.0.0.1:0/tcp'], log_level: 4 }),
    );
    const [udp, tcp] = server.addresses() as Array<{ port: number }>;
    const sock = dgram.createSocket('udp4');
    onTestFinished(() => {
      sock.close();
    });
    const reply = new Promise<string>((resolve) => sock.once('message', (m) => resolve(m.toString())));
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    sock.send('hi', udp!.port, '127.0.0.1');
    const own = sock.address().port;
    expect(await withTimeout(reply, 'the UDP reply')).toBe(`{"address":"127.0.0.1","port":${own}} true\n`);
    const p = await connect(tcp!.port);
    p.send('hi\n');
    await p.waitFor('\n');
    expect(p.text).toBe('null false\n');
  });
});

const unix = nativeOrSkip('timeouts, buffered mode and allowHalfOpen across a migration');

describe.runIf(unix)('a connection moving to another server', () => {
  it('takes along a timeout set, or cleared, while it was on its way: it fires in the new server, or never', async () => {
    const old = await start(new Api(local));
    const next = await start(new Api(local));
    const [a, b] = [await connect(old.port), await connect(old.port)];
    a.send('timeout:30\n');
    b.send('timeout:0.3\n');
    await a.waitFor('armed\n');
    await b.waitFor('armed\n');
    const counts = await moveAll(old.server, next.server, async (id) => {
      // On its way, from outside any hook: #1 is to fire soon, #2 never.
      old.server.mux.setTimeout(old.server.clientsById.get(id)!, id === 1 ? 0.05 : null);
    });
    expect(counts).toMatchObject({ migrated: 2, failed: 0 });
    await a.waitFor('timeout #1\n');
    expect(old.server.events).not.toContain('timeout #1');
    expect(next.server.events).toContain('timeout #1');
    // #2's 0.3 s timeout was cleared on its way: the new server has none for it.
    b.send('ping\n');
    await b.waitFor('ping\n');
    const c2 = [...next.server.mux.clients()].find((c) => c.id === 2)!;
    expect(next.server.mux.getTimeout(c2)).toBeUndefined();
    expect(next.server.events).not.toContain('timeout #2');
  });

  it('moves allowHalfOpen: after the client ends, the new server still writes to it', async () => {
    const old = await start(new Api(local));
    const next = await start(new Api(local));
    const p = await connect(old.port, { allowHalfOpen: true });
    p.send('halfopen\n');
    await p.waitFor('half-open\n');
    expect(await moveAll(old.server, next.server, async () => {})).toMatchObject({ migrated: 1, failed: 0 });
    p.socket.end();
    await next.server.waitEvent('goodbye written #1: true');
    const moved = [...next.server.mux.clients()].find((c) => c.id === 1)!;
    expect(moved.allowHalfOpen).toBe(true);
    expect(moved.write('still open\n')).toBe(true);
    await p.waitFor('bye \nstill open\n');
    expect(p.ended).toBe(false);
  });

  it('moves buffered mode and the output it kept: every byte arrives, in order, and the new server reads its outbuffer', async () => {
    const old = await start(new Api(local));
    const next = await start(new Api(local));
    const p = await connect(old.port);
    p.socket.pause();
    p.send(`buffer\nbig:${BIG}\n`);
    await old.server.watch.until(
      () => old.server.events.some((e) => e.startsWith('big #1')),
      'the big write',
    );
    const moving = moveAll(old.server, next.server, async () => {});
    p.socket.resume();
    const counts = await moving;
    expect(counts).toMatchObject({ migrated: 1, failed: 0 });
    p.send('peek\n');
    await p.waitBytes('buffered\n'.length + BIG + 2, 30_000);
    const got = p.received;
    expect(got.subarray(0, 9).toString()).toBe('buffered\n');
    expect(got.subarray(9, 9 + BIG).equals(pattern(BIG))).toBe(true);
    // In buffered mode still: outbuffer answers (with what is kept, nothing by then) instead of throwing.
    expect(got.subarray(9 + BIG).toString()).toMatch(/^\d+\n$/);
  });
});
