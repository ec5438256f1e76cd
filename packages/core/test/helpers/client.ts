/**
 * A test client over a real socket: collects every byte received and waits, with a bounded time and
 * a message that says what it waited for, for what a user would see.
 */
import net from 'node:net';

/** TestClient is one real connection to a server under test. */
export class TestClient {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err;
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  /** connect opens a connection and resolves once it is established. */
  static connect(options: net.NetConnectOpts): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(options);
      socket.once('connect', () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** text is everything received so far, decoded as UTF-8. */
  get text(): string {
    return this.received.toString('utf8');
  }

  /** send writes to the server. */
  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** until waits for a condition on this client, failing after `ms` with `what` in the message. */
  until(cond: (c: TestClient) => boolean, what: string, ms = 5000): Promise<void> {
    if (cond(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond(this)) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${ms} ms waiting for ${what}; received so far: ${JSON.stringify(this.text.slice(-500))}`,
          ),
        );
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /** waitFor waits until the received text contains `needle` (or matches it). */
  waitFor(needle: string | RegExp, ms = 5000): Promise<void> {
    return this.until(
      (c) => (typeof needle === 'string' ? c.text.includes(needle) : needle.test(c.text)),
      `${String(needle)}`,
      ms,
    );
  }

  /** waitBytes waits until at least n bytes have arrived. */
  waitBytes(n: number, ms = 5000): Promise<void> {
    return this.until((c) => c.received.length >= n, `${n} bytes`, ms);
  }

  /** waitClosed waits until the server closed the connection. */
  waitClosed(ms = 5000): Promise<void> {
    return this.until((c) => c.closed, 'the connection to close', ms);
  }

  /** waitEnded waits until the server ended its side. */
  waitEnded(ms = 5000): Promise<void> {
    return this.until((c) => c.ended || c.closed, 'the server to end its side', ms);
  }

  /** end half-closes: no more writing from this side. */
  end(): void {
    this.socket.end();
  }

  /** destroy closes at once. */
  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/** deferred is a promise with its resolve and reject at hand. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** withTimeout fails a promise that does not settle within `ms`, naming what it waited for. */
export function withTimeout<T>(promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}
