/**
 * idle_timeout over real sockets: a connection without input for its idle limit is closed through
 * muxTimeout (with `client.idle` true), which a server can override; input restarts the clock,
 * output does not; a server's own mux.setTimeout goes on alongside; the closes are logged aggregated.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type Client,
  type InputBuffer,
  type Listener,
  type MaybePromise,
  MultiplexServer,
  type Mux,
} from '../../src/index.js';
import { TestClient, withTimeout } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

/** What a test server saw: each muxTimeout (idle or not) and each muxClose, with client.idle. */
interface Seen {
  timeouts: Array<{ id: number; idle: boolean; at: number }>;
  closes: Array<{ id: number; idle: boolean }>;
}

/** An echo server that records its muxTimeout and muxClose calls; `onTimeout` lets a test steer them. */
class IdleEcho extends MultiplexServer {
  seen: Seen = { timeouts: [], closes: [] };
  onTimeout: (mux: Mux, client: Client) => MaybePromise<void> = () => {};
  onConnect: (mux: Mux, client: Client) => void = () => {};
  readonly #waiters = new Set<() => void>();
  /** until waits (bounded) for a condition on what the server saw. */
  until(cond: (seen: Seen) => boolean, what: string, ms = 5000): Promise<void> {
    if (cond(this.seen)) return Promise.resolve();
    let check!: () => void;
    const met = new Promise<void>((resolve) => {
      check = () => {
        if (cond(this.seen)) resolve();
      };
      this.#waiters.add(check);
    });
    return withTimeout(met, `${what}; seen: ${JSON.stringify(this.seen)}`, ms).finally(() =>
      this.#waiters.delete(check),
    );
  }
  override muxConnection(mux: Mux, client: Client): void {
    this.onConnect(mux, client);
  }
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    client.write(input.takeAll());
  }
  override muxTimeout(mux: Mux, target: Client | Listener): MaybePromise<void> {
    if (target.kind !== 'client') return;
    this.seen.timeouts.push({ id: target.id, idle: target.idle, at: Date.now() });
    for (const w of [...this.#waiters]) w();
    return this.onTimeout(mux, target);
  }
  override muxClose(_mux: Mux, client: Client): void {
    this.seen.closes.push({ id: client.id, idle: client.idle });
    for (const w of [...this.#waiters]) w();
  }
}

const tcp = (idle: number, more: Record<string, unknown> = {}) => ({
  port: ['127.0.0.1:0'],
  log_level: 4,
  idle_timeout: idle,
  ...more,
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idle_timeout', () => {
  it('closes a connection that sends nothing for idle_timeout, through muxTimeout with client.idle, in one log line', async () => {
    const { server, port, logs } = await startServer(new IdleEcho(tcp(0.5)));
    const began = Date.now();
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitClosed(5000);
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(490);
    expect(took).toBeLessThan(3000);
    await server.until((s) => s.closes.length === 1, 'muxClose');
    expect(server.seen.timeouts).toEqual([{ id: 1, idle: true, at: expect.any(Number) }]);
    // muxClose sees why it closed.
    expect(server.seen.closes).toEqual([{ id: 1, idle: true }]);
    const lines = logs.lines.filter((l) => String(l.msg).includes('idle'));
    expect(lines).toHaveLength(1);
    // Level 2, notice (pino's 35).
    expect(lines[0]).toMatchObject({ level: 35, conn: 1, idle: 0.5 });
    expect(lines[0]!.msg).toMatch(
      /^client #1 \[127\.0\.0\.1\]:\d+: no input for 0\.5 s \(idle_timeout\): closing$/,
    );
  });

  it('restarts the clock on input; output, and a server timeout that writes, do not keep a silent client', async () => {
    const { server, port } = await startServer(new IdleEcho(tcp(0.5)));
    // A heartbeat of the server's own, every 100 ms, to every client: output only.
    server.onConnect = (mux, client) => mux.setTimeout(client, 0.1);
    server.onTimeout = (mux, client) => {
      if (client.idle) return;
      client.write('beat\n');
      mux.setTimeout(client, 0.1);
    };
    const talker = await TestClient.connect({ port, host: '127.0.0.1' });
    const silent = await TestClient.connect({ port, host: '127.0.0.1' });
    const silentSince = Date.now();
    // The talker sends a line every 150 ms for 1.2 s, more than twice the limit.
    for (let i = 0; i < 8; i++) {
      talker.send(`line ${i}\n`);
      await talker.waitFor(`line ${i}\n`);
      await pause(150);
    }
    const lastInput = Date.now();
    expect(talker.closed).toBe(false);
    // The silent one was closed after the limit, having received beats all along.
    await silent.waitClosed(5000);
    await server.until((s) => s.closes.some((c) => c.id === 2), "the silent one's muxClose");
    expect(server.seen.closes.find((c) => c.id === 2)).toEqual({ id: 2, idle: true });
    const silentClose = server.seen.timeouts.find((t) => t.id === 2 && t.idle)!.at;
    expect(silentClose - silentSince).toBeGreaterThanOrEqual(490);
    expect(silentClose - silentSince).toBeLessThan(1200);
    expect(silent.text.split('beat\n').length - 1).toBeGreaterThanOrEqual(2);
    // Once the talker stops, it is closed about the limit after its last input.
    await talker.waitClosed(5000);
    const talkerIdle = server.seen.timeouts.find((t) => t.id === 1 && t.idle)!.at;
    expect(talkerIdle - lastInput).toBeGreaterThanOrEqual(300);
    expect(talkerIdle - lastInput).toBeLessThan(3000);
    expect(server.seen.timeouts.filter((t) => t.idle).map((t) => t.id)).toEqual([2, 1]);
  });

  it('lets muxTimeout keep the connection with mux.setIdleTimeout, then say goodbye before the default close', async () => {
    const { server, port, logs } = await startServer(new IdleEcho(tcp(0.3)));
    let asked = 0;
    server.onConnect = (mux, client) => mux.setTimeout(client, 0.45);
    server.onTimeout = (mux, client) => {
      if (!client.idle) {
        client.write('your timeout\n');
        return;
      }
      if (++asked < 3) {
        client.write('still there?\n');
        mux.setIdleTimeout(client, 0.3);
        expect(mux.getIdleTimeout(client)).toBeGreaterThan(Date.now());
      } else client.write('bye\n');
    };
    const began = Date.now();
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitClosed(5000);
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(880);
    expect(took).toBeLessThan(4000);
    // The goodbye was sent before the close; the server's own timeout fired once, with idle false.
    expect(c.text.endsWith('bye\n')).toBe(true);
    expect(c.text.split('\n').filter(Boolean).sort()).toEqual(
      ['still there?', 'still there?', 'bye', 'your timeout'].sort(),
    );
    expect(server.seen.timeouts.map((t) => t.idle).sort()).toEqual([false, true, true, true]);
    expect(logs.lines.filter((l) => String(l.msg).includes('idle_timeout'))).toHaveLength(1);
  });

  it('keeps a connection that answers while an async muxTimeout runs', async () => {
    const { server, port } = await startServer(new IdleEcho(tcp(0.3)));
    server.onTimeout = async (_mux, client) => {
      client.write('idle?\n');
      await pause(300);
    };
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitFor('idle?\n');
    c.send('here\n');
    await c.waitFor('here\n');
    // Asked again after another quiet limit; this time no answer: closed.
    await c.until((x) => x.text.split('idle?').length - 1 === 2, 'the second idle question');
    await c.waitClosed(5000);
    expect(c.text).toBe('idle?\nhere\nidle?\n');
    expect(server.seen.timeouts.map((t) => t.idle)).toEqual([true, true]);
  });

  it("keeps the idle clock and the server's own timeout apart: neither clears nor replaces the other", async () => {
    const { server, port } = await startServer(new IdleEcho(tcp(0.4)));
    let userTimeoutAtIdle: number | undefined;
    server.onConnect = (mux, client) => {
      mux.setTimeout(client, 30);
      // Clearing a timeout leaves the idle clock running, and setting one does not restart it.
      mux.setTimeout(client, null);
      mux.setTimeout(client, 20);
    };
    server.onTimeout = (mux, client) => {
      userTimeoutAtIdle = mux.getTimeout(client);
    };
    const began = Date.now();
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    await c.waitClosed(5000);
    expect(Date.now() - began).toBeLessThan(3000);
    // The idle expiry left the server's own 20 s timeout armed (it is cleared at the close).
    expect(userTimeoutAtIdle).toBeGreaterThan(began + 15_000);
    expect(server.seen.timeouts).toEqual([{ id: 1, idle: true, at: expect.any(Number) }]);
  });

  it('gives a connection its own limit with mux.setIdleTimeout, or none', async () => {
    const { server, port } = await startServer(new IdleEcho(tcp(0)));
    // idle_timeout is 0 (off): the first connection gets 0.3 s of its own, the others none.
    server.onConnect = (mux, client) => {
      if (client.id === 1) mux.setIdleTimeout(client, 0.3);
      expect(() => mux.setIdleTimeout(client, -1)).toThrow(RangeError);
    };
    const limited = await TestClient.connect({ port, host: '127.0.0.1' });
    const free = await TestClient.connect({ port, host: '127.0.0.1' });
    await limited.waitClosed(5000);
    await server.until((s) => s.closes.length === 1, 'muxClose');
    expect(server.seen.closes).toEqual([{ id: 1, idle: true }]);
    free.send('still served\n');
    await free.waitFor('still served\n');
    expect(free.closed).toBe(false);
    free.destroy();
  });

  it('exempts a connection whose muxConnection sets no limit, while the others follow idle_timeout', async () => {
    const { server, port } = await startServer(new IdleEcho(tcp(0.3)));
    server.onConnect = (mux, client) => {
      if (client.id === 2) mux.setIdleTimeout(client, null);
    };
    const witness = await TestClient.connect({ port, host: '127.0.0.1' });
    const exempt = await TestClient.connect({ port, host: '127.0.0.1' });
    await witness.waitClosed(5000);
    // Twice the limit after the witness closed, the exempt one is still served.
    await pause(600);
    expect(exempt.closed).toBe(false);
    exempt.send('ok\n');
    await exempt.waitFor('ok\n');
    expect(server.seen.timeouts.map((t) => t.id)).toEqual([1]);
    exempt.destroy();
  });

  it('logs a burst of idle closes in a few lines, counted', async () => {
    const n = Number(process.env.NETPLEX_IDLE_BURST ?? 40);
    const { server, port, logs } = await startServer(new IdleEcho(tcp(0.3)));
    const clients = await Promise.all(
      Array.from({ length: n }, () => TestClient.connect({ port, host: '127.0.0.1' })),
    );
    await Promise.all(clients.map((c) => c.waitClosed(5000)));
    await server.until((s) => s.closes.length === n, 'every muxClose');
    expect(server.seen.closes.filter((c) => c.idle)).toHaveLength(n);
    await logs.waitFor((l) => String(l.msg).startsWith('closed '), 'the counted line', 3000);
    const full = logs.lines.filter((l) => String(l.msg).includes('(idle_timeout): closing'));
    const counted = logs.lines.filter((l) =>
      /^closed \d+ more idle connections in the last 1 s$/.test(String(l.msg)),
    );
    expect(full.length).toBeGreaterThanOrEqual(1);
    expect(full.length + counted.length).toBeLessThanOrEqual(4);
    const total = full.length + counted.reduce((sum, l) => sum + Number(l.idle_closed), 0);
    expect(total).toBe(n);
  });

  it('closes an idle unix connection; UDP datagrams are served with no idle timer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplex-idle-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 's.sock');
    const { server } = await startServer(
      new IdleEcho({ port: [`${path}|unix`, '127.0.0.1:0/udp'], log_level: 4, idle_timeout: 0.3 }),
    );
    const udpPort = (server.addresses().find((a) => 'port' in a) as { port: number }).port;
    const began = Date.now();
    const u = await TestClient.connect({ path });
    await u.waitClosed(5000);
    expect(Date.now() - began).toBeGreaterThanOrEqual(290);
    expect(server.seen.timeouts).toEqual([{ id: 1, idle: true, at: expect.any(Number) }]);
    const sock = dgram.createSocket('udp4');
    onTestFinished(() => {
      sock.close();
    });
    const reply = new Promise<string>((resolve) => sock.once('message', (m) => resolve(m.toString())));
    sock.send('ping', udpPort, '127.0.0.1');
    expect(await withTimeout(reply, 'the UDP echo')).toBe('ping');
    // A UDP client has no connection: nothing fires for it after the limit.
    await pause(500);
    expect(server.seen.timeouts).toHaveLength(1);
  });
});
