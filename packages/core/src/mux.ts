/**
 * mux — the IO::Multiplex object the mux callbacks receive: the connected clients, writes, shutdown,
 * close, timeouts and endloop.
 */
import type { Client } from './connection/client.js';
import type { Listener } from './listeners.js';

/** MuxTarget is what a timeout can be set on: a client or a listen socket, as in IO::Multiplex. */
export type MuxTarget<S> = Client<S> | Listener;

/** MuxHost is what the server gives the mux to act on. */
export interface MuxHost<S> {
  clients(): IterableIterator<Client<S>>;
  clientCount(): number;
  listeners(): readonly Listener[];
  setTimeout(target: MuxTarget<S>, seconds: number | null): void;
  timeoutOf(target: MuxTarget<S>): number | undefined;
  setIdleTimeout(client: Client<S>, seconds: number | null): void;
  idleTimeoutOf(client: Client<S>): number | undefined;
  endloop(): void;
  /** Sends a broadcast on to the clients other workers serve (during a migration or a drain). */
  broadcastElsewhere(data: Buffer): void;
}

/** Mux is the multiplexer handed to every mux callback (IO::Multiplex's `$mux`). */
export class Mux<S = Record<string, unknown>> {
  readonly #host: MuxHost<S>;

  /** @internal made by the server. */
  constructor(host: MuxHost<S>) {
    this.#host = host;
  }

  /** clients iterates the connected, accepted clients (IO::Multiplex's handles, less the listeners). */
  clients(): IterableIterator<Client<S>> {
    return this.#host.clients();
  }

  /** handles is IO::Multiplex's name for clients(). */
  handles(): IterableIterator<Client<S>> {
    return this.#host.clients();
  }

  /** listeners lists the listen sockets. */
  listeners(): readonly Listener[] {
    return this.#host.listeners();
  }

  /** count is the number of connected, accepted clients. */
  get count(): number {
    return this.#host.clientCount();
  }

  /** write queues bytes for a client; false once it is closing. */
  write(client: Client<S>, data: Buffer | Uint8Array | string): boolean {
    return client.write(data);
  }

  /**
   * broadcast writes the same bytes to every connected client (or every one but `except`). Text is
   * encoded once and the one Buffer is shared, so a broadcast to many clients copies nothing per client.
   * During a reload, while the worker being replaced still has clients (a migration, or a drain), the
   * bytes also reach the clients of the other worker (each exactly once); the count returned is of
   * this worker's clients.
   */
  broadcast(data: Buffer | string, except?: Client<S>): number {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let n = 0;
    for (const c of this.#host.clients()) {
      if (c !== except && c.write(buf)) n++;
    }
    this.#host.broadcastElsewhere(buf);
    return n;
  }

  /** shutdown closes a client's write side once its output is sent (IO::Multiplex's shutdown($fh, 1)). */
  shutdown(client: Client<S>): void {
    client.shutdown();
  }

  /** close sends a client's queued output, then closes it. */
  close(client: Client<S>): void {
    client.close();
  }

  /** outbufLength is the number of bytes queued for a client and not yet sent. */
  outbufLength(client: Client<S>): number {
    return client.outputLength;
  }

  /**
   * setTimeout arms (or with null, clears) the one timeout of a client or listener: muxTimeout runs
   * `seconds` from now. Fractions of a second work. Setting it again replaces the previous one.
   */
  setTimeout(target: MuxTarget<S>, seconds: number | null | undefined): void {
    this.#host.setTimeout(target, seconds ?? null);
  }

  /** getTimeout is when the target's timeout fires, in ms since the epoch, or undefined. */
  getTimeout(target: MuxTarget<S>): number | undefined {
    return this.#host.timeoutOf(target);
  }

  /**
   * setIdleTimeout gives one connection its own idle limit in place of idle_timeout and restarts its
   * idle clock: if no input arrives for `seconds`, muxTimeout runs with `client.idle` true, and the
   * connection is closed after it unless muxTimeout keeps it. `null` or 0: no idle limit for this
   * connection. Called in muxTimeout for an idle expiry, it keeps the connection open. Independent of
   * `setTimeout` (each connection has both); for a UDP client it does nothing.
   */
  setIdleTimeout(client: Client<S>, seconds: number | null | undefined): void {
    this.#host.setIdleTimeout(client, seconds ?? null);
  }

  /** getIdleTimeout is when a connection's idle limit runs out if no input comes, in ms since the epoch, or undefined. */
  getIdleTimeout(client: Client<S>): number | undefined {
    return this.#host.idleTimeoutOf(client);
  }

  /** endloop stops the server: listeners close, clients are closed, and the close hooks run. */
  endloop(): void {
    this.#host.endloop();
  }
}
