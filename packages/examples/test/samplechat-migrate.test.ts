/**
 * The chat example across a migrating reload: clients keep their numbers, their senior/junior
 * state and their heartbeat deadlines, and a new client's number continues the sequence. It runs
 * over each migration transport (direct and relay, as supervisor/test/helpers/transports.ts lists
 * them), and the reload must say it went over the one asked for. Where the native module is
 * unavailable, the supervisor says so at start, and the direct run is skipped with that reason.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NO_DIRECT, runNetplex, TRANSPORTS, type Transport } from './supervised.js';

const here = dirname(fileURLToPath(import.meta.url));
const chat = join(here, '..', 'src', 'samplechat.ts');
const CHAT_TIMEOUT = 4;

let proc: ChildProcess | undefined;

/** Chatter is one chat client that records what it receives and when. */
class Chatter {
  text = '';
  readonly connectedAt = Date.now();
  #waiters = new Set<() => void>();
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      for (const w of [...this.#waiters]) w();
    });
  }
  static open(port: number): Promise<Chatter> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new Chatter(s)));
      s.once('error', reject);
    });
  }
  waitFor(needle: string, ms = 15_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.text.includes(needle)) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(Date.now());
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${JSON.stringify(needle)} within ${ms} ms; got ${JSON.stringify(this.text)}`));
      }, ms);
      this.#waiters.add(check);
      check();
    });
  }
}

function startChat(t: Transport): Promise<{ port: number; out: () => string }> {
  proc = runNetplex(chat, [
    '--port=127.0.0.1:0',
    `--chat_timeout=${CHAT_TIMEOUT}`,
    `--migration_transport=${t}`,
  ]);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the chat did not start within 20 s: ${err}`)), 20_000);
    proc!.stderr!.on('data', () => {
      const m = /"port":(\d+)[^\n]*serving with worker/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), out: () => err });
      }
    });
  });
}

describe.each(TRANSPORTS)('samplechat across a migrating reload (%s)', (t) => {
  it('keeps numbers, senior/junior state and heartbeat deadlines; new numbers continue', async (ctx) => {
    const { port, out } = await startChat(t);
    const missing = NO_DIRECT.exec(out());
    if (t === 'direct' && missing) {
      console.warn(
        `samplechat over the direct transport skipped: the native module is unavailable (${missing[1]})`,
      );
      ctx.skip();
    }
    const a = await Chatter.open(port);
    await a.waitFor('Welcome, you are number 1 to connect.\r\n');
    // a becomes senior; b connects then, so that its first heartbeat is due after the reload.
    await a.waitFor('You have been upgraded.');
    const b = await Chatter.open(port);
    await b.waitFor('Welcome, you are number 2 to connect.\r\n');
    await new Promise((r) => setTimeout(r, 1000)); // the reload starts a second into b's heartbeat period

    const reloaded = new Promise<void>((resolve) => {
      const onData = () => {
        if (/reloaded in \d+ ms/.test(out())) {
          proc!.stderr!.off('data', onData);
          resolve();
        }
      };
      proc!.stderr!.on('data', onData);
    });
    proc!.kill('SIGHUP');
    await reloaded;
    expect(out()).toMatch(/"migrated":2/);
    // The transport asked for, and no worker saying it fell back to the other.
    expect(out()).toMatch(new RegExp(`"transport":"${t}"[^\n]*2 connections migrated \\(${t}\\)`));
    expect(out()).not.toMatch(/no direct migration link came|a migration link was there, and none was/);

    // Numbers and the peer address carry over: a's line is still "[1 - 127.0.0.1]".
    a.socket.write('after the reload\r\n');
    await b.waitFor('[1 - 127.0.0.1] after the reload\r\n');
    await a.waitFor(' - sent 34 byte message\r\n');

    // A new client's number continues the sequence.
    const c = await Chatter.open(port);
    await c.waitFor('Welcome, you are number 3 to connect.\r\n');
    await a.waitFor('JOIN: (#3) from 127.0.0.1\r\n');

    // b's first heartbeat comes CHAT_TIMEOUT after it connected; restarted by the reload, it would
    // come CHAT_TIMEOUT after the reload, at least 1.3 s later.
    const upgradedAt = await b.waitFor('You have been upgraded.');
    expect(upgradedAt - b.connectedAt).toBeLessThan(CHAT_TIMEOUT * 1000 + 800);

    // a stayed senior: its next heartbeat is the goodbye, not a second upgrade.
    await a.waitFor('*BYE*', 3 * CHAT_TIMEOUT * 1000);
    expect(a.text.split('You have been upgraded.').length - 1).toBe(1);
    await b.waitFor('LEFT: (#1) from 127.0.0.1\r\n', 5_000);
    for (const x of [a, b, c]) x.socket.destroy();
  }, 60_000);
});
