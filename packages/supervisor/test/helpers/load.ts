/**
 * load — byte-verifying clients of the tagged fixture, for tests that inject faults under load.
 * A LineStreamer keeps one connection and sends numbered lines of random text, a few at a time, and
 * checks that what comes back is exactly the greeting and then each line echoed once, in order.
 * A Churn opens short connections one after another: each must greet, echo one line, and close.
 * Both record when something went wrong, so that a test can tell a connection lost with a killed
 * worker from one that netplex lost.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** Outstanding lines a streamer keeps in flight. */
const IN_FLIGHT = 3;

/** LineStreamer is one long-lived byte-verifying client. */
export class LineStreamer {
  readonly socket: net.Socket;
  /** Bytes sent, and bytes that came back as expected (the greeting included). */
  sent = 0;
  verified = 0;
  /** Why the stream failed: a close, an error or a wrong byte; undefined while it is healthy. */
  failure: string | undefined;
  /** When it failed (Date.now()). */
  failedAt = 0;
  #expected: Buffer;
  #seq = 0;
  #inFlight = 0;
  #stopped = false;
  #waiter: (() => void) | undefined;

  /** `echo` is what the server puts before each echoed line; `greeting` its first line. */
  constructor(
    port: number,
    readonly echo = 'v1 ',
    greeting = 'hello from v1\n',
  ) {
    this.#expected = Buffer.from(greeting);
    this.socket = net.connect({ port, host: '127.0.0.1' });
    this.socket.on('connect', () => this.#fill());
    this.socket.on('data', (d: Buffer) => this.#check(d));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(`error ${err.code ?? err.message}`));
    this.socket.on('close', () => this.#fail(this.#stopped ? 'closed after stop' : 'closed by the server'));
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  #fill(): void {
    while (!this.#stopped && this.alive && this.#inFlight < IN_FLIGHT) {
      const line = `#${this.#seq++}:${randomBytes(8 + (this.#seq % 13) * 8).toString('hex')}\n`;
      this.#expected = Buffer.concat([this.#expected, Buffer.from(this.echo + line)]);
      this.sent += line.length;
      this.#inFlight++;
      this.socket.write(line);
    }
  }

  #check(d: Buffer): void {
    if (!this.alive) return;
    const want = this.#expected.subarray(0, d.length);
    if (!want.equals(d)) {
      this.#fail(
        `wrong bytes after ${this.verified} good ones: got ${JSON.stringify(d.toString().slice(0, 80))}, expected ${JSON.stringify(want.toString().slice(0, 80))}`,
      );
      return;
    }
    this.verified += d.length;
    this.#expected = this.#expected.subarray(d.length);
    for (const byte of d) if (byte === 0x0a) this.#inFlight--;
    this.#fill();
    this.#waiter?.();
  }

  #fail(why: string): void {
    if (this.failure !== undefined) return;
    this.failure = why;
    this.failedAt = Date.now();
    this.#waiter?.();
  }

  /** outstanding is how many expected bytes have not come back yet. */
  get outstanding(): number {
    return this.#expected.length;
  }

  /** stop sends nothing more; drained() then waits for what is on its way. */
  stop(): void {
    this.#stopped = true;
  }

  /** drained resolves once everything sent has come back, and rejects if the stream fails or `ms` pass. */
  drained(what: string, ms = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`${what}: ${this.outstanding} bytes still expected after ${ms} ms`));
      }, ms);
      const check = () => {
        if (this.failure !== undefined && this.failure !== 'closed after stop') {
          clearTimeout(timer);
          this.#waiter = undefined;
          reject(new Error(`${what}: ${this.failure}`));
        } else if (this.outstanding === 0) {
          clearTimeout(timer);
          this.#waiter = undefined;
          resolve();
        }
      };
      this.#waiter = check;
      check();
    });
  }

  /** end closes the connection from the client's side. */
  end(): void {
    this.#stopped = true;
    this.socket.destroy();
  }
}

/** ChurnFailure is one short connection that was not served. */
export interface ChurnFailure {
  why: string;
  startedAt: number;
  failedAt: number;
}

/** Churn opens a short connection every `everyMs` until stop(); each must greet and echo one line. */
export class Churn {
  served = 0;
  readonly failures: ChurnFailure[] = [];
  readonly #open = new Set<Promise<void>>();
  readonly #timer: NodeJS.Timeout;
  #n = 0;

  constructor(
    readonly port: number,
    everyMs: number,
    readonly echo = 'v1 ',
    readonly greeting = 'hello from v1',
  ) {
    this.#timer = setInterval(() => {
      const one = this.#one(this.#n++).finally(() => this.#open.delete(one));
      this.#open.add(one);
    }, everyMs);
  }

  #one(i: number): Promise<void> {
    const startedAt = Date.now();
    return new Promise((resolve) => {
      const socket = net.connect({ port: this.port, host: '127.0.0.1' });
      let buf = '';
      let done = false;
      const finish = (why?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        if (why === undefined) this.served++;
        else
          this.failures.push({
            why: `#${i} ${why} (got ${JSON.stringify(buf)})`,
            startedAt,
            failedAt: Date.now(),
          });
        resolve();
      };
      const timer = setTimeout(() => finish('timed out after 20 s'), 20_000);
      socket.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf === `${this.greeting}\n`) socket.write(`churn ${i}\n`);
        else if (buf === `${this.greeting}\n${this.echo}churn ${i}\n`) finish();
        else if (!`${this.greeting}\n${this.echo}churn ${i}\n`.startsWith(buf)) finish('wrong bytes');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
      socket.on('close', () => finish('closed unanswered'));
    });
  }

  /** stop opens no more connections and waits for the open ones. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all([...this.#open]);
  }
}
