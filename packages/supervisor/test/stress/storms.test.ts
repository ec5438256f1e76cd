/**
 * Signal storms and reloads in a row, each with a witness client that must keep being answered: a
 * burst of SIGHUPs coalesces into at most two reloads and loses no byte; many migrate-mode reloads
 * in a row leave the supervisor's descriptors and memory where they were after the first ten.
 *
 * Size: NETPLEX_HUPS (SIGHUPs in the burst, default 100), NETPLEX_RELOADS (reloads in a row,
 * default 40).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { checkInvariants } from '../helpers/invariants.js';
import { type Proc, startTagged, waitForRoles } from '../helpers/proc.js';
import { readText } from '../helpers/procfs.js';

const HUPS = Number(process.env.NETPLEX_HUPS ?? 100);
const RELOADS = Number(process.env.NETPLEX_RELOADS ?? 40);

/** How long the witness may wait for any one answer. */
const ANSWER_BOUND_MS = 5_000;

/** Witness asks a line every 100 ms and fails if an answer is wrong, late or never comes. */
class Witness {
  readonly socket: net.Socket;
  answered = 0;
  error: string | undefined;
  #buf = '';
  #asked: { n: number; at: number } | undefined;
  #n = 0;
  #timer: NodeJS.Timeout;

  constructor(port: number, tag: RegExp) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl !== -1; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        // Greetings (a new worker taking the connection may greet) are not answers.
        const m = /^(\S+) witness (\d+)$/.exec(line);
        if (!m) continue;
        if (!tag.test(m[1]!) || Number(m[2]) !== this.#asked?.n)
          this.error ??= `unexpected answer ${JSON.stringify(line)}`;
        this.#asked = undefined;
        this.answered++;
      }
    });
    this.socket.on('error', (err) => {
      this.error ??= `witness error ${err.message}`;
    });
    this.socket.on('close', () => {
      this.error ??= 'witness closed by the server';
    });
    this.#timer = setInterval(() => this.#tick(), 100);
  }

  #tick(): void {
    if (this.#asked) {
      if (Date.now() - this.#asked.at > ANSWER_BOUND_MS)
        this.error ??= `witness ${this.#asked.n} unanswered after ${ANSWER_BOUND_MS} ms`;
      return;
    }
    this.#asked = { n: ++this.#n, at: Date.now() };
    this.socket.write(`witness ${this.#n}\n`);
  }

  /** stop ends the witness and checks it was answered throughout. */
  stop(): void {
    clearInterval(this.#timer);
    this.socket.destroy();
    expect(this.error, 'the witness was answered throughout').toBeUndefined();
    expect(this.answered).toBeGreaterThan(0);
  }
}

/** A client whose random lines must come back once each and in order (tagged echoes `<tag> line`). */
class Verifier {
  readonly socket: net.Socket;
  sent: string[] = [];
  got: string[] = [];
  #buf = '';

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      const lines = this.#buf.split('\n');
      this.#buf = lines.pop() ?? '';
      for (const l of lines) {
        const m = /^\S+ (line-\S+)$/.exec(l);
        if (m) this.got.push(m[1]!);
      }
    });
  }

  send(): void {
    const line = `line-${randomBytes(8).toString('hex')}`;
    this.sent.push(line);
    this.socket.write(`${line}\n`);
  }
}

const reloadLines = (proc: Proc) =>
  proc.lines.filter((l) => /^(reloaded in|reload failed)/.test(String(l.msg)));

/**
 * atRest waits until status shows the serving worker and its spare only (no reload running, nothing
 * draining, the next spare started): the state descriptors and memory are compared in.
 */
const atRest = (pidFile: string, what: string) => waitForRoles(pidFile, ['serving', 'spare'], what);

/** settled polls (bounded) for a condition on what sockets received. */
async function settled(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readText(`/proc/${pid}/status`) ?? '')?.[1]);

describe('storms', () => {
  it(`a burst of ${HUPS} SIGHUPs coalesces into at most two reloads and loses no byte`, async () => {
    const { proc, port, pidFile } = await startTagged(
      ['--port=127.0.0.1:0', '--reload_mode=migrate', '--pid_file={pid}', '--log_level=2'],
      { via: 'netplex' },
    );
    const witness = new Witness(port, /^v1$/);
    const verifiers = Array.from({ length: 5 }, () => new Verifier(port));
    const started = Date.now();
    for (let i = 0; i < HUPS; i++) {
      proc.child.kill('SIGHUP');
      verifiers[i % verifiers.length]!.send();
    }
    await proc.waitLog((l) => /^(reloaded in|reload failed)/.test(String(l.msg)), 'the first reload');
    await atRest(pidFile, 'after the burst');
    // Anything still coming would have started by now; one more look after the rest.
    const reloads = reloadLines(proc);
    console.log(`${HUPS} SIGHUPs: ${reloads.length} reload(s) in ${Date.now() - started} ms`);
    expect(reloads.length).toBeGreaterThanOrEqual(1);
    expect(reloads.length, JSON.stringify(reloads)).toBeLessThanOrEqual(2);
    expect(reloads.every((l) => String(l.msg).startsWith('reloaded in'))).toBe(true);
    for (const v of verifiers) v.send();
    await settled(() => verifiers.every((v) => v.got.length >= v.sent.length), 'every verifier line echoed');
    for (const v of verifiers) {
      expect(v.got).toEqual(v.sent);
      v.socket.destroy();
    }
    await checkInvariants(pidFile, port, 'after the burst');
    witness.stop();
  }, 120_000);

  it(
    `${RELOADS} migrate-mode reloads in a row leave descriptors and memory where they were after ten`,
    async () => {
      expect(RELOADS, 'NETPLEX_RELOADS must be above 10').toBeGreaterThan(10);
      const { proc, port, pidFile } = await startTagged(
        ['--port=127.0.0.1:0', '--reload_mode=migrate', '--pid_file={pid}', '--log_level=2'],
        { via: 'netplex' },
      );
      const witness = new Witness(port, /^v1$/);
      const live = Array.from({ length: 3 }, () => new Verifier(port));
      const sup = proc.pid;
      const started = Date.now();
      let at10 = { fds: 0, rss: 0 };
      for (let i = 1; i <= RELOADS; i++) {
        for (const v of live) v.send();
        const done = await proc.hup(`reload ${i}`);
        expect(done.msg, `reload ${i}`).toMatch(/^reloaded in/);
        expect(done, `reload ${i}`).toMatchObject({ failed: 0 });
        expect(done.migrated as number, `reload ${i} migrated`).toBeGreaterThanOrEqual(live.length + 1);
        if (i === 10) {
          await atRest(pidFile, 'after ten reloads');
          at10 = { fds: fdCount(sup), rss: rssKb(sup) };
        }
      }
      await atRest(pidFile, 'after the last reload');
      const end = { fds: fdCount(sup), rss: rssKb(sup) };
      const ms = Date.now() - started;
      console.log(
        `${RELOADS} reloads in ${ms} ms: supervisor fds ${at10.fds} after 10, ${end.fds} after ${RELOADS}; ` +
          `VmRSS ${at10.rss} kB after 10, ${end.rss} kB after ${RELOADS}`,
      );
      expect(end.fds, 'no descriptor leaks').toBeLessThanOrEqual(at10.fds);
      expect(end.rss - at10.rss, 'VmRSS within 10 MB of its level after ten reloads').toBeLessThan(10 * 1024);
      for (const v of live) v.send();
      await settled(() => live.every((v) => v.got.length >= v.sent.length), 'every live line echoed');
      for (const v of live) {
        expect(v.got).toEqual(v.sent);
        v.socket.destroy();
      }
      const { workers } = await checkInvariants(pidFile, port, 'after the reloads');
      expect(workers.map((w) => w.role).sort()).toEqual(['serving', 'spare']);
      witness.stop();
    },
    60_000 + RELOADS * 2_000,
  );
});
