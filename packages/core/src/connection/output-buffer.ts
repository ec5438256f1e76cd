/**
 * connection/output-buffer — the output netplex keeps for a client in buffered mode
 * (`mux.bufferOutput`), as IO::Multiplex keeps every handle's `outbuffer`.
 *
 * By default a write goes straight to the socket, and bytes handed to a socket cannot be read back
 * or withdrawn. A client in buffered mode has its output kept here instead, and handed to the socket
 * a slice at a time, the next slice only once the socket has handed the last one to the kernel. So
 * what `mux.outbuffer` reads, and what `mux.outbuffer(client, data)` and `mux.killOutput` replace
 * or drop, is everything written but the one slice already with the socket.
 */

/** At most this much of a buffered client's output is with its socket at a time. */
export const OUTPUT_SLICE_BYTES = 64 * 1024;

const EMPTY = Buffer.alloc(0);

/** OutputBuffer is one buffered client's output that its socket has not taken yet. */
export class OutputBuffer {
  #chunks: Buffer[] = [];
  #length = 0;
  /** A slice is with the socket, and its write has not completed. */
  inFlight = false;
  /** A shutdown ('end') or close asked for while output was kept: done once it is sent. */
  pendingEnd: 'end' | 'close' | undefined;
  /** Told when a slice's write completes (made once per buffered client). */
  afterSlice: ((err?: Error | null) => void) | undefined;

  /** length is the number of bytes kept here. */
  get length(): number {
    return this.#length;
  }

  /** push keeps bytes after those kept already. */
  push(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#chunks.push(buf);
    this.#length += buf.length;
  }

  /** peek is every byte kept, in order, without taking them. */
  peek(): Buffer {
    if (this.#chunks.length === 0) return EMPTY;
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  /** take takes up to `max` bytes from the front. */
  take(max: number): Buffer {
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

  /** replace puts `buf` in place of everything kept (empty: drops it all); it returns what was dropped. */
  replace(buf: Buffer): number {
    const dropped = this.#length;
    this.#chunks = buf.length > 0 ? [buf] : [];
    this.#length = buf.length;
    return dropped;
  }
}
