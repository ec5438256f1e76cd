/**
 * A chat room stays whole across migrating reloads: while talkers keep saying numbered lines to
 * everyone (`mux.broadcast`) and reloads move every connection to new code, each client hears each
 * other talker's every line exactly once, in the order it was said, whichever worker served the
 * talker and the listener at the time. It runs over each migration transport (direct and relay),
 * and each reload must say it went over the one asked for.
 *
 * Size: NETPLEX_STRESS_ROOM (clients, default 24), NETPLEX_STRESS_TALKERS (default 3),
 * NETPLEX_STRESS_ROOM_RELOADS (default 5).
 */
import type net from 'node:net';
import { expect, it } from 'vitest';
import { behaviour, greet, startTagged } from '../helpers/proc.js';
import { describeTransports, expectTransport, transportArg } from '../helpers/transports.js';

const CLIENTS = Number(process.env.NETPLEX_STRESS_ROOM ?? 24);
const TALKERS = Number(process.env.NETPLEX_STRESS_TALKERS ?? 3);
const RELOADS = Number(process.env.NETPLEX_STRESS_ROOM_RELOADS ?? 5);

/** A client of the room: what it heard from each talker, and how many of its own lines were taken. */
class Member {
  /** Talker number to the line numbers heard from it, in the order they came. */
  readonly heard = new Map<number, number[]>();
  /** `sent` answers to this member's own `bcast` lines. */
  taken = 0;
  closed = false;
  #buf = '';
  #waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl !== -1; nl = this.#buf.indexOf('\n')) {
        this.#line(this.#buf.slice(0, nl));
        this.#buf = this.#buf.slice(nl + 1);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #line(line: string): void {
    const said = / bcast t(\d+) (\d+)$/.exec(line);
    if (said) {
      const talker = Number(said[1]);
      const list = this.heard.get(talker) ?? [];
      list.push(Number(said[2]));
      this.heard.set(talker, list);
    } else if (/^v\d+ sent$/.test(line)) this.taken++;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** until waits, on this member's own traffic, for `done` to hold; bounded, and not past a close. */
  async until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (this.closed) throw new Error(`closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

describeTransports('a chat room across migrating reloads', (t) => {
  it(`${RELOADS} reloads while ${TALKERS} of ${CLIENTS} clients talk: every line heard once by everyone else, in order`, async () => {
    const { proc, port, behaviourFile } = await startTagged([
      '--port=127.0.0.1:0',
      '--log_level=2',
      transportArg(t),
    ]);
    const members: Member[] = [];
    for (let i = 0; i < CLIENTS; i++) members.push(new Member((await greet(port)).socket));

    // Each talker says its next line once the previous one was taken (paced by its round trip).
    const said = new Array<number>(TALKERS).fill(0);
    let talking = true;
    const talkers = members.slice(0, TALKERS).map(async (m, k) => {
      while (talking) {
        const n = said[k]! + 1;
        m.socket.write(`bcast t${k} ${n}\n`);
        await m.until(() => m.taken >= n, `talker ${k}'s line ${n} to be taken`);
        said[k] = n;
      }
    });
    const talked = (lines: number) => {
      const from = [...said];
      return Promise.all(
        members
          .slice(0, TALKERS)
          .map((m, k) =>
            m.until(() => said[k]! >= from[k]! + lines, `talker ${k} to say ${lines} more lines`),
          ),
      );
    };

    await talked(5);
    for (let i = 0; i < RELOADS; i++) {
      behaviour(behaviourFile, { tag: `v${i + 2}` });
      const mark = proc.lines.length;
      const done = await proc.hup(`reload ${i + 1}`);
      expect(done.msg, `reload ${i + 1}`).toMatch(/^reloaded in/);
      expect(done, `reload ${i + 1}`).toMatchObject({ migrated: CLIENTS, failed: 0 });
      expectTransport(done, t, proc, mark);
      await talked(5);
    }
    talking = false;
    await Promise.all(talkers);

    // Everyone hears every line of every other talker: exactly once, in order.
    for (const [i, m] of members.entries()) {
      for (let k = 0; k < TALKERS; k++) {
        if (k === i) continue;
        const last = said[k]!;
        await m.until(
          () => (m.heard.get(k) ?? []).includes(last),
          `client ${i} to hear talker ${k}'s line ${last}`,
        );
        expect(m.heard.get(k), `client ${i} hearing talker ${k}`).toEqual(
          Array.from({ length: last }, (_, j) => j + 1),
        );
      }
      if (i < TALKERS) expect(m.heard.has(i), `talker ${i} does not hear itself`).toBe(false);
    }
    for (const m of members) m.socket.destroy();
  }, 180_000);
});
