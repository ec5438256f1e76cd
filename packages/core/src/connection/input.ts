/**
 * input — a client's unconsumed input, as IO::Multiplex's `\$data`.
 *
 * `muxInput` consumes from the left and leaves the rest for the next call. Bytes stay bytes: the
 * buffer is a window on Buffers, and every helper that consumes says what it takes. Appending to an
 * empty buffer keeps a reference to the chunk instead of copying it, so a server that consumes all of
 * each read (an echo, a framing parser that keeps up) never copies input at all.
 */

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);

/** InputBuffer holds the bytes a client sent that the server has not consumed yet. */
export class InputBuffer {
  #buf: Buffer = EMPTY;
  #start = 0;
  /** Where the unconsumed bytes end; past it, a buffer of our own has room to grow into. */
  #end = 0;
  /** Whether #buf is ours to write into (not a chunk handed over by the socket). */
  #owned = false;
  /** Where the search for the next `\n` resumes, so a long partial line is not scanned again. */
  #scanFrom = 0;

  /** length is the number of unconsumed bytes. */
  get length(): number {
    return this.#end - this.#start;
  }

  /** append adds bytes at the right; netplex calls it as input arrives. */
  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.length === 0) {
      this.#buf = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      this.#owned = false;
      this.#scanFrom = 0;
      return;
    }
    if (this.#owned && this.#buf.length - this.#end >= chunk.length) {
      chunk.copy(this.#buf, this.#end);
      this.#end += chunk.length;
      return;
    }
    // A buffer of our own, twice what is pending: a long line costs linear copying, not quadratic.
    const pending = this.#buf.subarray(this.#start, this.#end);
    const size = pending.length + chunk.length;
    const grown = Buffer.allocUnsafe(Math.max(size, pending.length * 2));
    pending.copy(grown, 0);
    chunk.copy(grown, pending.length);
    this.#scanFrom = Math.max(this.#scanFrom, this.#start) - this.#start;
    this.#buf = grown;
    this.#start = 0;
    this.#end = size;
    this.#owned = true;
  }

  /** bytes returns the unconsumed bytes without consuming them (a view, not a copy). */
  bytes(): Buffer {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** text returns the unconsumed bytes decoded, without consuming them. */
  text(encoding: BufferEncoding = 'utf8'): string {
    return this.#buf.toString(encoding, this.#start, this.#end);
  }

  /** consume drops the first `n` bytes (all of them when n is larger). */
  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`consume() takes a byte count >= 0, got ${n}`);
    this.#start = Math.min(this.#end, this.#start + n);
    if (this.#start === this.#end) this.clear();
  }

  /** take consumes and returns exactly `n` bytes, or returns undefined (consuming nothing) when fewer are here. */
  take(n: number): Buffer | undefined {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`take() takes a byte count >= 0, got ${n}`);
    if (this.length < n) return undefined;
    const out = this.#buf.subarray(this.#start, this.#start + n);
    this.consume(n);
    return out;
  }

  /** takeAll consumes and returns every unconsumed byte. */
  takeAll(): Buffer {
    // The common case (all of one read, unconsumed) hands back the chunk itself: no view to make.
    const out =
      this.#start === 0 && this.#end === this.#buf.length
        ? this.#buf
        : this.#buf.subarray(this.#start, this.#end);
    this.clear();
    return out;
  }

  /** clear consumes everything. */
  clear(): void {
    this.#buf = EMPTY;
    this.#start = 0;
    this.#end = 0;
    this.#owned = false;
    this.#scanFrom = 0;
  }

  /**
   * lineBuffer consumes and returns the next complete line without its `\n` or `\r\n`, as bytes;
   * undefined (consuming nothing) while no complete line is buffered.
   */
  lineBuffer(): Buffer | undefined {
    const from = Math.max(this.#start, this.#scanFrom);
    const nl = this.#buf.subarray(0, this.#end).indexOf(LF, from);
    if (nl === -1) {
      this.#scanFrom = this.#end;
      return undefined;
    }
    const end = nl > this.#start && this.#buf[nl - 1] === CR ? nl - 1 : nl;
    const line = this.#buf.subarray(this.#start, end);
    this.#start = nl + 1;
    this.#scanFrom = this.#start;
    if (this.#start === this.#end) this.clear();
    return line;
  }

  /** line is lineBuffer decoded as `encoding` (UTF-8 by default). */
  line(encoding: BufferEncoding = 'utf8'): string | undefined {
    return this.lineBuffer()?.toString(encoding);
  }

  /** lineBuffers consumes every complete line, one Buffer each; a partial last line stays. */
  *lineBuffers(): Generator<Buffer, void, undefined> {
    for (let l = this.lineBuffer(); l !== undefined; l = this.lineBuffer()) yield l;
  }

  /** lines consumes every complete line, decoded; a partial last line stays buffered. */
  *lines(encoding: BufferEncoding = 'utf8'): Generator<string, void, undefined> {
    for (let l = this.lineBuffer(); l !== undefined; l = this.lineBuffer()) yield l.toString(encoding);
  }
}
