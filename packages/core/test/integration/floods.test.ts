/**
 * Floods a client can cause, each with a witness connection that must keep being answered: a line
 * far past max_input_buffer, and connections reset at random moments mid-line or mid-output. The
 * server runs in this process, so its memory is this process's VmRSS.
 *
 * Size: NETPLEX_FLOOD_LINE_MB (the long line, default 50), NETPLEX_RESETS (reset connections,
 * default 200), NETPLEX_SEED (the resets' seed, printed).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Client, type InputBuffer, MultiplexServer, type Mux } from '../../src/index.js';
import { TestClient } from '../helpers/client.js';
import { mulberry32 } from '../helpers/fuzz.js';
import { startServer } from '../helpers/server.js';

const LINE_MB = Number(process.env.NETPLEX_FLOOD_LINE_MB ?? 50);
const RESETS = Number(process.env.NETPLEX_RESETS ?? 200);
const SEED = Number(process.env.NETPLEX_SEED ?? Date.now() % 1_000_000);

const local = { port: ['127.0.0.1:0'], log_level: 2 };
const ANSWER_BOUND_MS = 5_000;

/** Lines answers `witness N` with itself, `big N` with N bytes, any other line with its length and hash. */
class Lines extends MultiplexServer {
  override muxInput(_mux: Mux, client: Client, input: InputBuffer): void {
    for (const line of input.lines()) {
      if (line.startsWith('witness ')) client.print(`${line}\n`);
      else if (line.startsWith('big ')) client.write(Buffer.alloc(Number(line.slice(4)), 'b'));
      else client.print(`${line.length} ${createHash('sha256').update(line).digest('hex')}\n`);
    }
  }
}

/** countOf is how many events aggregated lines stand for: one each, or the count they carry. */
const countOf = (lines: Array<Record<string, unknown>>) =>
  lines.reduce((n, l) => n + (typeof l.disconnected === 'number' ? l.disconnected : 1), 0);

/** waitFor polls `cond` every 20 ms, failing with `what` after `ms`. */
async function waitFor(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

/** witness asks a line every 100 ms; `stop` fails the test if any answer was late or never came. */
async function witness(port: number) {
  const c = await TestClient.connect({ port, host: '127.0.0.1' });
  let n = 0;
  let error: string | undefined;
  let asked: number | undefined;
  const timer = setInterval(() => {
    if (asked !== undefined) {
      if (!c.text.includes(`witness ${n}\n`)) {
        if (Date.now() - asked > ANSWER_BOUND_MS)
          error ??= `witness ${n} unanswered after ${ANSWER_BOUND_MS} ms`;
        return;
      }
    }
    asked = Date.now();
    c.send(`witness ${++n}\n`);
  }, 100);
  return {
    stop: async () => {
      const answered = () => c.text.split('\n').filter((l) => l.startsWith('witness ')).length;
      // A few more answers after the flood, then the end.
      const want = answered() + 3;
      await c.until(
        () => answered() >= want || error !== undefined,
        'the witness to be answered again',
        10_000,
      );
      clearInterval(timer);
      c.destroy();
      expect(error, 'the witness was answered throughout').toBeUndefined();
      return answered();
    },
  };
}

/** sendLine writes `mb` MB of one line without a newline, then the newline when `newline` is set. */
async function sendLine(c: TestClient, mb: number, newline: boolean): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  for (let i = 0; i < mb && !c.socket.destroyed; i++) {
    hash.update(chunk);
    if (!c.socket.write(chunk))
      await new Promise<void>((r) => {
        const done = () => {
          c.socket.off('drain', done).off('close', done);
          r();
        };
        c.socket.on('drain', done).on('close', done);
      });
  }
  if (newline && !c.socket.destroyed) c.socket.write('\n');
  return hash.digest('hex');
}

/** Storm answers `storm N` by broadcasting N numbered 1 KB lines to every other client, then `done`. */
class Storm extends MultiplexServer {
  #seq = 0;
  override muxInput(mux: Mux, client: Client, input: InputBuffer): void {
    for (const line of input.lines()) {
      if (!line.startsWith('storm ')) continue;
      const pad = 'p'.repeat(1024);
      for (let i = 0; i < Number(line.slice(6)); i++) mux.broadcast(`${this.#seq++} ${pad}\n`, client);
      client.print('done\n');
    }
  }
}

describe('floods', () => {
  it(`a ${LINE_MB} MB line past max_input_buffer costs that client only, with one log line`, async () => {
    const { port, logs } = await startServer(new Lines(local));
    const w = await witness(port);
    const before = rssKb();
    const flood = await TestClient.connect({ port, host: '127.0.0.1' });
    flood.socket.on('error', () => {});
    const started = Date.now();
    await sendLine(flood, LINE_MB, true);
    await flood.waitClosed(30_000);
    const after = rssKb();
    const lines = logs.lines.filter((l) => l.limit === 'max_input_buffer');
    console.log(
      `${LINE_MB} MB line: disconnected in ${Date.now() - started} ms; VmRSS ${before} kB before, ${after} kB after; ${lines.length} log line(s)`,
    );
    expect(lines.length).toBe(1);
    expect(after - before, 'memory stays bounded').toBeLessThan(32 * 1024);
    await w.stop();
  }, 60_000);

  it(`a ${LINE_MB} MB line under a raised max_input_buffer arrives whole`, async () => {
    const { port } = await startServer(
      new Lines({ ...local, max_input_buffer: (LINE_MB + 8) * 1024 * 1024 }),
    );
    const w = await witness(port);
    const c = await TestClient.connect({ port, host: '127.0.0.1' });
    const started = Date.now();
    const hash = await sendLine(c, LINE_MB, true);
    // Bounded: copying the whole buffer for every chunk (quadratic) takes tens of seconds here.
    await c.waitFor(`${LINE_MB * 1024 * 1024} ${hash}\n`, 20_000);
    console.log(`${LINE_MB} MB line received whole in ${Date.now() - started} ms`);
    c.destroy();
    await w.stop();
  }, 90_000);

  it('readers that never read are disconnected past max_output_buffer during a broadcast storm', async () => {
    const { port, logs } = await startServer(new Storm({ ...local, max_output_buffer: 256 * 1024 }));
    const reader = await TestClient.connect({ port, host: '127.0.0.1' });
    // The reader checks the order as lines come, keeping nothing (this process's memory is measured).
    let heard = 0;
    let disorder: string | undefined;
    let partial = '';
    reader.socket.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) {
        if (Number(l.slice(0, l.indexOf(' '))) !== heard)
          disorder ??= `line ${heard} came as ${l.slice(0, 20)}`;
        heard++;
      }
    });
    const mute = await Promise.all(
      Array.from({ length: 20 }, () => TestClient.connect({ port, host: '127.0.0.1' })),
    );
    for (const m of mute) m.socket.pause();
    const sender = await TestClient.connect({ port, host: '127.0.0.1' });
    const before = rssKb();
    // 100 KB at a time, the reader keeping up, 10 MB in all: far past what the kernel holds for a
    // reader that never reads, and past max_output_buffer beyond it.
    const n = 10_000;
    const started = Date.now();
    for (let k = 1; k <= n / 100; k++) {
      sender.send('storm 100\n');
      const deadline = Date.now() + ANSWER_BOUND_MS;
      while (heard < k * 100) {
        if (Date.now() > deadline) throw new Error(`${k * 100} broadcasts not at the reader (${heard})`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    console.log(`broadcast storm: ${n} lines in ${Date.now() - started} ms`);
    expect({ heard, disorder }).toEqual({ heard: n, disorder: undefined });
    for (const m of mute) m.socket.resume();
    await Promise.all(mute.map((m) => m.waitClosed(10_000)));
    const after = rssKb();
    const lines = logs.lines.filter((l) => l.limit === 'max_output_buffer');
    console.log(`broadcast storm: ${lines.length} log line(s); VmRSS ${before} kB before, ${after} kB after`);
    // This process also holds the 21 client sockets, so its VmRSS is printed, not bounded, here.
    // Aggregated: the first disconnect in full, then one line a second with the count, which adds up.
    await waitFor(
      () => countOf(logs.lines.filter((l) => l.limit === 'max_output_buffer')) === mute.length,
      'the aggregated disconnect lines to count every reader',
    );
    const final = logs.lines.filter((l) => l.limit === 'max_output_buffer');
    expect(final.length, JSON.stringify(final.map((l) => l.msg))).toBeLessThanOrEqual(
      2 + Math.ceil((Date.now() - started) / 1000),
    );
    expect(final.length).toBeLessThan(mute.length);
    reader.destroy();
    sender.destroy();
  }, 60_000);

  it(`${RESETS} connections reset mid-line or mid-output leave no connection behind`, async () => {
    console.log(`resets: NETPLEX_SEED=${SEED}`);
    const random = mulberry32(SEED);
    const { server, port, logs } = await startServer(new Lines(local));
    const w = await witness(port);
    const baseline = [...server.mux.clients()].length;
    expect(baseline, 'the witness is the one connection').toBe(1);
    const started = Date.now();
    for (let batch = 0; batch < RESETS; batch += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, RESETS - batch) }, async () => {
          const s = net.connect({ port, host: '127.0.0.1' });
          s.on('error', () => {});
          await new Promise<void>((r) => s.once('connect', () => r()));
          if (random() < 0.5) s.write(`half a line ${'z'.repeat(Math.floor(random() * 5000))}`);
          else s.write(`big ${1 + Math.floor(random() * 4_000_000)}\n`);
          await new Promise((r) => setTimeout(r, Math.floor(random() * 30)));
          s.resetAndDestroy();
        }),
      );
    }
    const deadline = Date.now() + 10_000;
    while ([...server.mux.clients()].length !== baseline) {
      if (Date.now() > deadline)
        throw new Error(`${[...server.mux.clients()].length - baseline} connections left (seed ${SEED})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(`${RESETS} resets in ${Date.now() - started} ms; ${logs.lines.length} log lines`);
    expect(logs.lines.length, `logs stay bounded (seed ${SEED})`).toBeLessThan(20);
    await w.stop();
  }, 60_000);
});
