/**
 * connection/output-buffer — the output netplex keeps for a client in buffered mode
 * (`mux.bufferOutput`), as IO::Multiplex keeps every handle's `outbuffer`.
 *
 * By default a write goes straight to the socket, and bytes handed to a socket cannot be read back
 * or withdrawn. A client in buffered mode has its output kept here instead, and handed to the socket
 * a slice at a time from the end of the loop turn it was written in, the next slice only once the
 * socket has handed the last one to the kernel. So what `mux.outbuffer` reads, and what
 * `mux.outbuffer(client, data)` and `mux.killOutput` replace or drop, is everything written but the
 * one slice already with the socket.
 */

/** At most this much of a buffered client's output is with its socket at a time. */
export const OUTPUT_SLICE_BYTES = 64 * 1024;

const EMPTY = Buffer.alloc(0);

/** SliceSink is the socket side an OutputBuffer hands its slices to (the client's transport). */
export interface SliceSink {
  write(data: Buffer, done: (err?: Error | null) => void): void;
  end(): void;
  close(): void;
}

/** OutputOwner is the client an OutputBuffer works for. */
export interface OutputOwner {
  /** paused is true while nothing may go to the socket (the connection is moving, or closed). */
  paused(): boolean;
  /** sent is told when everything kept has been handed to the kernel. */
  sent(): void;
}

/** OutputBuffer is one buffered client's output that its socket has not taken yet. */
export class OutputBuffer {
  #chunks: Buffer[] = [];
  #length = 0;
  /** A slice is with the socket, and its write has not completed. */
  #inFlight = false;
  /** A flush is queued for the end of this loop turn. */
  #scheduled = false;
  /** A shutdown ('end') or close asked for while output was kept: done once it is sent. */
  #pendingEnd: 'end' | 'close' | undefined;
  #stopped = false;
  readonly #sink: SliceSink;
  readonly #owner: OutputOwner;
  readonly #flush = () => {
    this.#scheduled = false;
    if (this.#stopped || this.#inFlight || this.#owner.paused()) return;
    if (this.#length > 0) this.#slice();
    else this.#endNow();
  };
  readonly #afterSlice = (err?: Error | null) => {
    this.#inFlight = false;
    if (err || this.#stopped || this.#owner.paused()) return;
    if (this.#length > 0) this.#slice();
    else if (this.#pendingEnd !== undefined) this.#endNow();
    else this.#owner.sent();
  };

  constructor(sink: SliceSink, owner: OutputOwner) {
    this.#sink = sink;
    this.#owner = owner;
  }

  /** length is the number of bytes kept here. */
  get length(): number {
    return this.#length;
  }

  /** send keeps bytes after those kept already, for the socket at the end of this loop turn. */
  send(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#chunks.push(buf);
    this.#length += buf.length;
    this.pump();
  }

  /**
   * pump queues a flush for the end of the loop turn, unless one is queued or a slice is with the
   * socket (its completion sends the next): until then the hooks of this turn can read the output
   * back and withdraw it.
   */
  pump(): void {
    if (this.#inFlight || this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  /**
   * endWhenSent ends the write side (or with 'close' both) once what is kept is sent; false when
   * nothing is kept or with the socket, so that the caller ends it now.
   */
  endWhenSent(how: 'end' | 'close'): boolean {
    if (this.#length === 0 && !this.#inFlight) return false;
    if (how === 'close' || this.#pendingEnd === undefined) this.#pendingEnd = how;
    return true;
  }

  /** peek is every byte kept, in order, without taking them. */
  peek(): Buffer {
    if (this.#chunks.length === 0) return EMPTY;
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  /** take takes up to `max` bytes from the front (all of them by default). */
  take(max = Number.POSITIVE_INFINITY): Buffer {
    const all = this.peek();
    if (all.length <= max) {
      this.#chunks = [];
      this.#length = 0;
      return all;
    }
    this.#chunks = [all.subarray(max)];
    this.#length -= max;
    return all.subarray(0, max);
  }

  /**
   * replace puts `buf` in place of everything kept (empty: drops it all), to be sent as the rest
   * was; it returns the number of bytes dropped.
   */
  replace(buf: Buffer): number {
    const dropped = this.#length;
    this.#chunks = buf.length > 0 ? [buf] : [];
    this.#length = buf.length;
    this.pump();
    return dropped;
  }

  /**
   * stop ends buffered mode: it returns what is kept, and the end asked for meanwhile, for the
   * caller to hand to the socket itself; nothing more goes from here.
   */
  stop(): { rest: Buffer; end: 'end' | 'close' | undefined } {
    this.#stopped = true;
    const end = this.#pendingEnd;
    this.#pendingEnd = undefined;
    return { rest: this.take(), end };
  }

  #slice(): void {
    this.#inFlight = true;
    this.#sink.write(this.take(OUTPUT_SLICE_BYTES), this.#afterSlice);
  }

  #endNow(): void {
    const end = this.#pendingEnd;
    this.#pendingEnd = undefined;
    if (end === 'close') this.#sink.close();
    else if (end === 'end') this.#sink.end();
  }
}
