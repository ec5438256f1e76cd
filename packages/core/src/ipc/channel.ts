/**
 * ipc/channel — one end of the IPC channel between the supervisor and a worker, for both packages:
 * sending (with a socket handle when there is one), requests matched to their acknowledgement by a
 * sequence number, a dispatch table that must name a handler for every message the other side
 * sends, and batching of small items into one message per event-loop turn.
 *
 * The endpoint is `process` in a worker and the worker's ChildProcess in the supervisor.
 */
import { isNetplexMessage, type MessageOf } from './messages.js';

/** Endpoint is what a channel sends through: a ChildProcess, or `process` in a forked child. */
export interface Endpoint {
  readonly connected: boolean;
  send?(
    message: unknown,
    sendHandle?: never,
    options?: Record<string, unknown>,
    callback?: (error: Error | null) => void,
  ): boolean;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
}

/**
 * Handlers is a dispatch table: one handler for every type of `M`, so that a message nobody
 * handles does not compile. A handler gets the message and the socket handle sent with it, if any.
 */
export type Handlers<M extends { type: string }> = {
  [K in M['type']]: (message: MessageOf<M, K>, handle: unknown) => void;
};

/**
 * Pending holds the answers awaited for numbered messages: `open()` gives the next number and a
 * promise of its answer, `settle()` delivers one. Requests, and connections handed over during a
 * migration, are matched so.
 */
export class Pending<T> {
  #seq = 0;
  readonly #waiting = new Map<number, { resolve: (value: T) => void; reject: (err: Error) => void }>();

  /** open numbers the next message and returns that number with the promise of its answer. */
  open(): { seq: number; answer: Promise<T> } {
    const seq = ++this.#seq;
    const answer = new Promise<T>((resolve, reject) => this.#waiting.set(seq, { resolve, reject }));
    return { seq, answer };
  }

  /** settle delivers the answer to message `seq`; false when nothing waits for it (any more). */
  settle(seq: number, value: T): boolean {
    const waiting = this.#take(seq);
    waiting?.resolve(value);
    return waiting !== undefined;
  }

  /** fail rejects the answer to message `seq`; false when nothing waits for it. */
  fail(seq: number, err: Error): boolean {
    const waiting = this.#take(seq);
    waiting?.reject(err);
    return waiting !== undefined;
  }

  /** take removes and returns what waits for message `seq`, if anything does. */
  #take(seq: number): { resolve: (value: T) => void; reject: (err: Error) => void } | undefined {
    const waiting = this.#waiting.get(seq);
    this.#waiting.delete(seq);
    return waiting;
  }

  /** settleAll answers every message still waiting with `value` (the other side is gone). */
  settleAll(value: T): void {
    const all = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of all) w.resolve(value);
  }

  /** failAll rejects every message still waiting (the other side is gone). */
  failAll(err: Error): void {
    const all = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of all) w.reject(err);
  }

  /** size is the number of messages still waiting for their answer. */
  get size(): number {
    return this.#waiting.size;
  }
}

/** ChannelOptions say what a channel's sends fail with once the other side is gone. */
export interface ChannelOptions {
  gone: () => Error;
}

/**
 * Channel is one end: it sends `Out` and receives `In`. `reply` answers come back as messages
 * carrying `ack`, which the receiving handler passes to `answer()`.
 */
export class Channel<Out extends { type: string }, In extends { type: string }> {
  readonly #endpoint: Endpoint;
  readonly #gone: () => Error;
  readonly #requests = new Pending<In>();
  #listener: ((message: unknown, handle?: unknown) => void) | undefined;

  constructor(endpoint: Endpoint, options: ChannelOptions) {
    this.#endpoint = endpoint;
    this.#gone = options.gone;
  }

  /** connected is true while the other side can be sent to. */
  get connected(): boolean {
    return this.#endpoint.connected && this.#endpoint.send !== undefined;
  }

  /** send sends one message, with a socket handle when given; it rejects once the other side is gone. */
  send(message: Out, handle?: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      const endpoint = this.#endpoint;
      if (!endpoint.connected || !endpoint.send) {
        reject(this.#gone());
        return;
      }
      endpoint.send(message, handle as never, {}, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** post sends a message whose delivery nobody waits for: once the other side is gone it is dropped. */
  post(message: Out, handle?: unknown): void {
    this.send(message, handle).catch(() => {});
  }

  /**
   * request sends the message `make(seq)` builds and resolves with the answer that carries `ack`
   * = seq; it rejects when the send fails or the channel is closed first.
   */
  request<R extends In>(make: (seq: number) => Out, handle?: unknown): Promise<R> {
    const { seq, answer } = this.#requests.open();
    // The answer itself, not a promise chained on the send: close() settles it even while the
    // message is still being written, or waits in Node's queue behind a handle not yet acknowledged.
    this.send(make(seq), handle).catch((err: Error) => this.#requests.fail(seq, err));
    return answer as Promise<R>;
  }

  /** answer delivers the answer to request `ack`; false when no request waits for it. */
  answer(ack: number, message: In): boolean {
    return this.#requests.settle(ack, message);
  }

  /**
   * listen dispatches each netplex message from the other side to its handler. `isIn` tells the
   * messages of this direction; anything else with the netplex prefix goes to `unknown` (a peer of
   * another version, or a message meant for another listener), with the handle that came with it.
   * A user's own messages go to `other` when given, and are ignored otherwise.
   */
  listen(
    isIn: (value: unknown) => value is In,
    handlers: Handlers<In>,
    unknown?: (type: string, handle: unknown) => void,
    other?: (message: unknown, handle: unknown) => void,
  ): void {
    this.unlisten();
    const table = handlers as unknown as Record<string, (message: In, handle: unknown) => void>;
    this.#listener = (message, handle) => {
      if (!isNetplexMessage(message)) other?.(message, handle);
      else if (isIn(message)) table[message.type]?.(message, handle);
      else unknown?.(message.type, handle);
    };
    this.#endpoint.on('message', this.#listener);
  }

  /** unlisten stops dispatching (a worker that exits stops taking messages). */
  unlisten(): void {
    if (this.#listener) this.#endpoint.off('message', this.#listener);
    this.#listener = undefined;
  }

  /** close rejects every request still waiting for its answer: the other side is gone. */
  close(): void {
    this.#requests.failAll(this.#gone());
  }
}

/** Batch gathers items for one message per event-loop turn (see everyTurn). */
export interface Batch<T> {
  push(item: T): void;
  /** flush sends what is gathered now, and resolves once every batch is out. */
  flush(): Promise<void>;
}

/**
 * everyTurn gathers items and sends them as one batch per event-loop turn (`send` gets each batch):
 * many small answers (connections taken, connections let go) cost one message, not one each.
 */
export function everyTurn<T>(send: (items: T[]) => Promise<void>): Batch<T> {
  let items: T[] = [];
  let last: Promise<void> = Promise.resolve();
  let queued = false;
  const flush = (): Promise<void> => {
    queued = false;
    if (items.length > 0) {
      const batch = items;
      items = [];
      // After the batches before it too: a send may complete before an earlier one.
      const sent = send(batch).catch(() => {});
      last = last.then(() => sent);
    }
    return last;
  };
  return {
    push(item: T): void {
      items.push(item);
      if (!queued) {
        queued = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}
