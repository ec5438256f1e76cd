/**
 * lineproxy.ts over real sockets: a line server made by the test is the upstream; clients' lines
 * reach it and its answers come back, a partial line waits, and each side's end reaches the other.
 * Then under the supervisor, through migrating reloads while clients stream lines both ways, over
 * each migration transport: each client and its upstream connection move together, every line is
 * answered, in order, and no byte is lost. Where the native module is unavailable, the supervisor
 * says so at start, and the direct run is skipped with that reason.
 */
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LineProxy, parseUpstream } from '../src/lineproxy.js';
import { NO_DIRECT, runNetplex, TRANSPORTS } from './supervised.js';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'src', 'lineproxy.ts');
/** Reloads while the clients stream (NETPLEX_PROXY_RELOADS), and clients opened before each one. */
const RELOADS = Number(process.env.NETPLEX_PROXY_RELOADS ?? 3);
const CLIENTS_PER_ROUND = 3;

/** Waiter wakes whoever waits when something changes. */
class Waiter {
  readonly #waiters = new Set<() => void>();
  notify(): void {
    for (const w of [...this.#waiters]) w();
  }
  until(cond: () => boolean, what: string, ms = 10_000, detail = () => ''): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}${detail()}`));
      }, ms);
      this.#waiters.add(check);
    });
  }
}

/** Upstream answers each line with `up:LINE`, the rest of the input at its end likewise, then ends. */
class Upstream extends Waiter {
  readonly server = net.createServer({ allowHalfOpen: true }, (socket) => this.#serve(socket));
  connections = 0;
  ended = 0;

  #serve(socket: net.Socket): void {
    this.connections++;
    this.notify();
    let rest = '';
    socket.on('data', (d: Buffer) => {
      rest += d.toString('latin1');
      const last = rest.lastIndexOf('\n');
      if (last === -1) return;
      const lines = rest.slice(0, last).split('\n');
      rest = rest.slice(last + 1);
      socket.write(lines.map((l) => `up:${l}\n`).join(''));
    });
    socket.on('end', () => {
      if (rest) socket.write(`up:${rest}\n`);
      socket.end();
      this.ended++;
      this.notify();
    });
    socket.on('error', () => {});
  }

  static async start(): Promise<Upstream> {
    const up = new Upstream();
    await new Promise<void>((resolve) => up.server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((r) => up.server.close(() => r())));
    return up;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }
}

/** Talker is one client of the proxy: what it receives, and whether the proxy ended its side. */
class Talker extends Waiter {
  text = '';
  ended = false;
  constructor(readonly socket: net.Socket) {
    super();
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', () => {});
  }
  static open(port: number): Promise<Talker> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(new Talker(s)));
      s.once('error', reject);
    });
  }
  waitFor(needle: string, ms = 10_000): Promise<void> {
    return this.until(
      () => this.text.includes(needle),
      JSON.stringify(needle),
      ms,
      () => `; got ${JSON.stringify(this.text.slice(-200))}`,
    );
  }
}

describe('lineproxy in one process', () => {
  it('passes whole lines both ways; a partial line waits; each end reaches the other side', async () => {
    const up = await Upstream.start();
    const proxy = new LineProxy({ port: ['127.0.0.1:0'], upstream: `127.0.0.1:${up.port}`, log_level: 0 });
    onTestFinished(() => proxy.close());
    await proxy.start({ argv: [] });
    const port = (proxy.addresses()[0] as { port: number }).port;
    const t = await Talker.open(port);
    t.socket.write('one\ntw');
    await t.waitFor('up:one\n');
    t.socket.write('o\nthree');
    await t.waitFor('up:two\n');
    expect(t.text).toBe('up:one\nup:two\n');
    // The client's end: "three" goes upstream with it, and its answer still comes back.
    t.socket.end();
    await t.until(() => t.ended, 'the proxy to end its side');
    expect(t.text).toBe('up:one\nup:two\nup:three\n');
    expect(up.ended).toBe(1);
  });

  it('reads --upstream as HOST:PORT, [IPv6]:PORT or a path, and refuses anything else by name', async () => {
    expect(parseUpstream('127.0.0.1:6000')).toEqual({ host: '127.0.0.1', port: 6000 });
    expect(parseUpstream('[::1]:6000')).toEqual({ host: '::1', port: 6000 });
    expect(parseUpstream('/run/up.sock')).toEqual({ path: '/run/up.sock' });
    const proxy = new LineProxy({ port: ['127.0.0.1:0'], upstream: 'nowhere', log_level: 0 });
    onTestFinished(() => proxy.close());
    await expect(proxy.start({ argv: [] })).rejects.toThrow(
      /upstream.*HOST:PORT, \[IPv6\]:PORT or a unix socket path/,
    );
  });
});

/** Streamer keeps a window of lines on their way through the proxy, each numbered, until told to stop. */
class Streamer {
  sent = 0;
  #stopped = false;
  constructor(
    readonly name: string,
    readonly talker: Talker,
  ) {
    talker.socket.on('data', () => this.#top());
    this.#top();
  }
  get answered(): number {
    return this.talker.text.split('\n').length - 1;
  }
  #top(): void {
    while (!this.#stopped && this.sent - this.answered < 8)
      this.talker.socket.write(`${this.name}-${this.sent++}\n`);
  }
  stop(): void {
    this.#stopped = true;
  }
  expected(): string {
    return Array.from({ length: this.sent }, (_, i) => `up:${this.name}-${i}\n`).join('');
  }
}

describe.each(TRANSPORTS)('lineproxy under the supervisor (%s)', (transport) => {
  it('moves each client with its upstream through reloads while both stream: no line lost, every one in order', async (ctx) => {
    const up = await Upstream.start();
    const proc = runNetplex(entry, [
      '--port=127.0.0.1:0',
      `--upstream=127.0.0.1:${up.port}`,
      `--migration_transport=${transport}`,
    ]);
    let err = '';
    const log = new Waiter();
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      log.notify();
    });
    await log.until(
      () => /"port":\d+[^\n]*serving with worker/.test(err),
      'the proxy to serve',
      20_000,
      () => `: ${err}`,
    );
    const port = Number(/"port":(\d+)[^\n]*serving with worker/.exec(err)![1]);
    const missing = NO_DIRECT.exec(err);
    if (transport === 'direct' && missing) {
      console.warn(
        `lineproxy over the direct transport skipped: the native module is unavailable (${missing[1]})`,
      );
      ctx.skip();
    }

    const streamers: Streamer[] = [];
    for (let round = 0; round <= RELOADS; round++) {
      for (let i = 0; i < CLIENTS_PER_ROUND; i++) {
        const s = new Streamer(`r${round}c${i}`, await Talker.open(port));
        streamers.push(s);
        await s.talker.until(() => s.answered > 0, `${s.name}'s first answer`);
      }
      if (round === RELOADS) break;
      // Every stream is flowing when the reload comes, and through it.
      const marks = streamers.map((s) => s.answered);
      await Promise.all(
        streamers.map((s, i) => s.talker.until(() => s.answered > marks[i]! + 20, `${s.name} to stream`)),
      );
      const before = (err.match(/reloaded in \d+ ms[^\n]*/g) ?? []).length;
      proc.kill('SIGHUP');
      await log.until(
        () => (err.match(/reloaded in \d+ ms/g) ?? []).length > before,
        `reload ${round + 1}`,
        30_000,
        () => `: ${err.slice(-500)}`,
      );
      // Every client moved with its upstream: two connections each, none left behind.
      const line = err
        .split('\n')
        .filter((l) => /reloaded in \d+ ms/.test(l))
        .at(-1)!;
      expect(JSON.parse(line)).toMatchObject({
        migrated: 2 * streamers.length,
        drained: 0,
        failed: 0,
        transport,
      });
    }
    // Each stream goes on after the last reload, wherever it is served.
    const marks = streamers.map((s) => s.answered);
    await Promise.all(
      streamers.map((s, i) =>
        s.talker.until(
          () => s.answered > marks[i]! + 20,
          `${s.name} after the reloads`,
          10_000,
          () => `; it sent ${s.sent}, had ${s.answered} answers; the supervisor said: ${err.slice(-1500)}`,
        ),
      ),
    );
    for (const s of streamers) s.stop();
    for (const s of streamers) s.talker.socket.end();
    await Promise.all(
      streamers.map((s) => s.talker.until(() => s.talker.ended, `the proxy to end ${s.name}'s side`, 20_000)),
    );
    for (const s of streamers) {
      expect(s.talker.text.length, `${s.name}'s bytes`).toBe(s.expected().length);
      expect(s.talker.text === s.expected(), `${s.name}'s lines, in order`).toBe(true);
    }
    expect(up.connections).toBe(streamers.length);
  }, 120_000);
});
