/**
 * The reload guarantee under load: while new clients keep connecting and persistent clients keep
 * streaming sequence-numbered bytes, reloads in a row cause no refused connection, no reset, no lost
 * or corrupted byte, and every persistent connection stays alive.
 *
 * Both reload modes: drain (old connections finish on the old worker) and migrate (they move to
 * the new one, mid-stream, with a trickle of one byte a millisecond so that bytes land inside the
 * handoff window; muxConnection must run once per connection). Migrate runs over each transport
 * (direct and relay), and each reload must say it went over the one asked for.
 *
 * Size: NETPLEX_STRESS_RELOADS (default 20), NETPLEX_STRESS_PERSISTENT (default 10),
 * NETPLEX_STRESS_CHURN (concurrent connecting clients, default 4), NETPLEX_STRESS_MODES
 * (default "drain,migrate").
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../../src/pidfile.js';
import { fixture, Proc } from '../helpers/proc.js';
import {
  expectTransport,
  skipReason,
  TRANSPORTS,
  type Transport,
  transportArg,
} from '../helpers/transports.js';

const RELOADS = Number(process.env.NETPLEX_STRESS_RELOADS ?? 20);
const PERSISTENT = Number(process.env.NETPLEX_STRESS_PERSISTENT ?? 10);
const CHURN = Number(process.env.NETPLEX_STRESS_CHURN ?? 4);
const MODES = (process.env.NETPLEX_STRESS_MODES ?? 'drain,migrate').split(',') as Array<'drain' | 'migrate'>;

/** A run: a reload mode, and the transport migrations take (none for drain). */
interface Run {
  mode: 'drain' | 'migrate';
  transport: Transport | undefined;
  label: string;
}

/** The runs: drain once, migrate over each transport. */
const RUNS: Run[] = MODES.flatMap((mode): Run[] =>
  mode === 'drain'
    ? [{ mode, transport: undefined, label: mode }]
    : TRANSPORTS.map((transport) => ({ mode, transport, label: `${mode} over ${transport}` })),
);

interface Tally {
  connects: number;
  refused: number;
  resets: number;
  failures: string[];
}

/** A persistent client: writes numbered chunks, checks every echoed byte, forever until stopped. */
class Streamer {
  readonly socket: net.Socket;
  sent = 0;
  verified = 0;
  alive = true;
  error: string | undefined;
  #expected = Buffer.alloc(0);
  #seq = 0;
  #stopped = false;
  #onProgress: (() => void) | undefined;

  #trickle: NodeJS.Timeout | undefined;

  /** With `trickle`, one byte a millisecond instead of chunks: bytes keep arriving during every handoff. */
  constructor(port: number, trickle = false) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    if (trickle) {
      this.socket.on('connect', () => {
        this.#trickle = setInterval(() => {
          if (this.#stopped || !this.alive) return;
          const byte = Buffer.from([this.#seq++ % 251]);
          this.#expected = Buffer.concat([this.#expected, byte]);
          this.sent++;
          this.socket.write(byte);
        }, 1);
      });
    }
    this.socket.on('data', (d: Buffer) => this.#check(d));
    this.socket.on('error', (err) => {
      this.error ??= `error ${err.message}`;
      this.#onProgress?.();
    });
    this.socket.on('close', () => {
      this.alive = false;
      if (!this.#stopped) this.error ??= 'closed by the server';
      this.#onProgress?.();
    });
    if (!trickle) this.socket.on('connect', () => this.#next());
  }

  #next(): void {
    if (this.#stopped || !this.alive) return;
    // A header with the sequence number, then random bytes: a lost, duplicated or reordered byte shows.
    const body = randomBytes(64 + (this.#seq % 7) * 100);
    const chunk = Buffer.concat([Buffer.from(`#${this.#seq++}:`), body, Buffer.from('\n')]);
    this.#expected = Buffer.concat([this.#expected, chunk]);
    this.sent += chunk.length;
    this.socket.write(chunk);
  }

  #check(d: Buffer): void {
    const want = this.#expected.subarray(0, d.length);
    if (!want.equals(d)) {
      this.error ??= `corrupted bytes at offset ${this.verified}`;
      return;
    }
    this.#expected = this.#expected.subarray(d.length);
    this.verified += d.length;
    if (this.#expected.length === 0 && !this.#trickle) setImmediate(() => this.#next());
    this.#onProgress?.();
  }

  /** stop ends the stream; `drained` then resolves once everything sent has come back. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#trickle);
  }

  /** drained resolves once every byte sent has come back (or the stream failed), bounded by `ms`. */
  drained(what: string, ms = 15_000): Promise<void> {
    const done = () => this.verified === this.sent || this.error !== undefined;
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onProgress = undefined;
        reject(
          new Error(
            `timed out after ${ms} ms waiting for ${what}: ${this.sent - this.verified} bytes outstanding`,
          ),
        );
      }, ms);
      this.#onProgress = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.#onProgress = undefined;
        resolve();
      };
    });
  }
}

/** One short-lived client: connect, send, expect the same bytes back, close. */
function oneShot(port: number, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    const payload = randomBytes(32).toString('hex');
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    const timer = setTimeout(() => {
      tally.failures.push(`no echo within 10 s (got ${got.length} bytes)`);
      s.destroy();
      resolve();
    }, 10_000);
    s.on('connect', () => {
      tally.connects++;
      s.write(payload);
    });
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= payload.length) {
        clearTimeout(timer);
        if (got !== payload) tally.failures.push('corrupted echo');
        s.end();
        resolve();
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ECONNREFUSED') tally.refused++;
      else if (err.code === 'ECONNRESET') tally.resets++;
      else tally.failures.push(err.code ?? err.message);
      resolve();
    });
  });
}

describe.each(RUNS)('reload under load, reload_mode $label', ({ mode, transport }) => {
  const reason = transport === undefined ? undefined : skipReason(transport);
  if (reason !== undefined)
    console.warn(`reload under load over the ${transport} transport skipped: ${reason}`);
  it.skipIf(reason !== undefined)(
    `${RELOADS} reloads in a row: no refused connection, no reset, no lost byte, every persistent connection alive${reason === undefined ? '' : ` (skipped: ${reason})`}`,
    async () => {
      const proc = new Proc(process.execPath, [
        '--import',
        'tsx',
        fixture('echo.ts'),
        '--port=127.0.0.1:0',
        '--drain_timeout=600',
        `--reload_mode=${mode}`,
        ...(transport === undefined ? [] : [transportArg(transport)]),
        '--log_level=2',
      ]);
      const serving = await proc.waitLog(
        (l) => String(l.msg).includes('serving with worker'),
        'the supervisor to serve',
      );
      const port = (serving.ports as Array<{ port: number }>)[0]!.port;

      const streamers = Array.from(
        { length: PERSISTENT },
        (_, i) => new Streamer(port, mode === 'migrate' && i === 0),
      );
      const tally: Tally = { connects: 0, refused: 0, resets: 0, failures: [] };
      let churning = true;
      const churn = Array.from({ length: CHURN }, async () => {
        while (churning) await oneShot(port, tally);
      });

      const workers = new Set<number>();
      for (let i = 0; i < RELOADS; i++) {
        const mark = proc.lines.length;
        const done = await proc.hup(`reload ${i + 1}`);
        expect(done.msg, `reload ${i + 1}`).toMatch(/^reloaded in/);
        if (mode === 'migrate') {
          // Every persistent connection moves; a churning one caught half-closed drains instead.
          expect(done, `reload ${i + 1}`).toMatchObject({ failed: 0 });
          expect(done.migrated as number, `reload ${i + 1} migrated`).toBeGreaterThanOrEqual(PERSISTENT);
          expectTransport(done, transport!, proc, mark);
        }
        workers.add(done.worker as number);
      }
      churning = false;
      await Promise.all(churn);
      for (const s of streamers) s.stop();
      await Promise.all(
        streamers.map((s, i) => s.drained(`persistent client ${i} to get all its bytes back`)),
      );

      expect(workers.size).toBe(RELOADS);
      // muxConnection ran exactly once for every connection, wherever the connection went.
      const connected = proc.lines.filter((l) => l.msg === 'muxConnection').map((l) => l.conn as number);
      expect(connected.length).toBeGreaterThanOrEqual(PERSISTENT + tally.connects);
      if (mode === 'migrate') {
        // The counter moves with the connections: numbers are never reused.
        expect(new Set(connected).size, 'connection numbers are never reused').toBe(connected.length);
      }
      expect(tally.connects).toBeGreaterThan(RELOADS);
      expect({ refused: tally.refused, resets: tally.resets, failures: tally.failures.slice(0, 5) }).toEqual({
        refused: 0,
        resets: 0,
        failures: [],
      });
      for (const [i, s] of streamers.entries()) {
        expect({ client: i, error: s.error, alive: s.alive, lost: s.sent - s.verified }).toEqual({
          client: i,
          error: undefined,
          alive: true,
          lost: 0,
        });
        expect(s.verified).toBeGreaterThan(0);
        s.socket.destroy();
      }
      // SIGTERM ends the draining old workers too, not only the current one.
      proc.child.kill('SIGTERM');
      expect((await proc.waitExit(30_000)).code).toBe(0);
      for (const pid of [serving.worker as number, ...workers])
        expect(isAlive(pid), `worker ${pid} after SIGTERM`).toBe(false);
    },
    300_000,
  );
});
