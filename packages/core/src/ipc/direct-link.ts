/**
 * ipc/direct-link — messages with descriptors over one end of a unix SOCK_SEQPACKET socket pair
 * (the native module, @netplex/unix): the direct migration transport between an old worker and a
 * new one.
 *
 * A message is JSON in one record, or in several when it is large (every record but the last is
 * marked as a part); the descriptors go with the last record. Writes that the socket cannot take now
 * wait, in order, until it is writable. Reads happen as records arrive, at most READS_PER_TURN a
 * turn of the event loop (the rest wait for the next turn), or all at once on drain().
 */
import type { UnixSockets, Watcher } from '@netplex/unix';

/** The bytes of JSON a record carries at most: well under the socket's send buffer. */
export const RECORD_BYTES = 60 * 1024;

/** How many records a turn of the event loop reads, so that a flood of them leaves the loop time to serve. */
export const READS_PER_TURN = 8;

/** The first byte of a record: the last (or only) record of a message, or a part with more to come. */
const LAST = 0x4c; // 'L'
const PART = 0x50; // 'P'

/** LinkEvents are what a DirectLink tells its owner. */
export interface LinkEvents {
  /** A whole message arrived, with the descriptors that came with it (now this process's to close). */
  message(message: unknown, fds: number[], truncated: boolean): void;
  /** The link is closed: by this side, by the other (it closed its end or died), or on an error. */
  closed(reason: string): void;
}

interface Queued {
  data: Buffer;
  fds: readonly number[];
}

/** DirectLink is one end of a migration's socket pair. */
export class DirectLink {
  readonly #unix: UnixSockets;
  readonly #fd: number;
  readonly #events: LinkEvents;
  readonly #watcher: Watcher;
  readonly #buffer = Buffer.allocUnsafe(RECORD_BYTES + 64);
  readonly #queue: Queued[] = [];
  #parts: Buffer[] = [];
  #closed = false;
  #flushed: Array<() => void> = [];

  constructor(unix: UnixSockets, fd: number, events: LinkEvents) {
    this.#unix = unix;
    this.#fd = fd;
    this.#events = events;
    const { READABLE } = unix.constants;
    this.#watcher = unix.watch(fd, READABLE, (ready) => this.#ready(ready));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * send queues `message` with `fds` (which stay this process's: the kernel passes copies) and
   * writes what it can now; false when the link is closed.
   */
  send(message: unknown, fds: readonly number[] = []): boolean {
    if (this.#closed) return false;
    const json = Buffer.from(JSON.stringify(message));
    for (let at = 0; at < json.length; at += RECORD_BYTES) {
      const end = Math.min(json.length, at + RECORD_BYTES);
      const record = Buffer.allocUnsafe(1 + end - at);
      const last = end === json.length;
      record[0] = last ? LAST : PART;
      json.copy(record, 1, at, end);
      this.#queue.push({ data: record, fds: last ? fds : [] });
    }
    this.#write();
    return !this.#closed;
  }

  /** flushed resolves once everything sent so far is in the kernel (or the link is closed). */
  flushed(): Promise<void> {
    if (this.#queue.length === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#flushed.push(resolve));
  }

  /** drain reads every message waiting now, at once. */
  drain(): void {
    this.#read(Number.POSITIVE_INFINITY);
  }

  /** close closes this end; the other end reads the end of the link. */
  close(reason = 'closed by this worker'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.#unix.close(this.#fd);
    this.#queue.length = 0;
    this.#parts = [];
    for (const resolve of this.#flushed.splice(0)) resolve();
    this.#events.closed(reason);
  }

  #ready(ready: number): void {
    if (this.#closed) return;
    const { WRITABLE } = this.#unix.constants;
    if (ready < 0) {
      this.close(`the link failed (${ready})`);
      return;
    }
    if (ready & WRITABLE) this.#write();
    this.#read(READS_PER_TURN);
  }

  #write(): void {
    const unix = this.#unix;
    const { EAGAIN, READABLE, WRITABLE } = unix.constants;
    while (this.#queue.length > 0 && !this.#closed) {
      const { data, fds } = this.#queue[0]!;
      const sent = unix.send(this.#fd, data, fds);
      if (sent === -EAGAIN) {
        this.#watcher.update(READABLE | WRITABLE);
        return;
      }
      if (sent < 0) {
        this.close(`the other worker is gone (send: ${-sent})`);
        return;
      }
      this.#queue.shift();
    }
    this.#watcher.update(READABLE);
    for (const resolve of this.#flushed.splice(0)) resolve();
  }

  #read(limit: number): void {
    const unix = this.#unix;
    const { EAGAIN, MSG_TRUNC, MSG_CTRUNC } = unix.constants;
    for (let n = 0; n < limit && !this.#closed; n++) {
      const got = unix.receive(this.#fd, this.#buffer);
      if (got === -EAGAIN) return;
      if (typeof got === 'number') {
        this.close(`the link failed (receive: ${-got})`);
        return;
      }
      if (got.bytes === 0 && got.fds.length === 0) {
        this.close('the other worker closed its end');
        return;
      }
      if (got.flags & MSG_TRUNC || got.bytes < 1) {
        for (const fd of got.fds) unix.close(fd);
        this.close(`a record of the link was cut short (${got.bytes} bytes): a netplex bug`);
        return;
      }
      const body = Buffer.from(this.#buffer.subarray(1, got.bytes));
      if (this.#buffer[0] === PART) {
        this.#parts.push(body);
        continue;
      }
      const whole = this.#parts.length > 0 ? Buffer.concat([...this.#parts, body]) : body;
      this.#parts = [];
      let message: unknown;
      try {
        message = JSON.parse(whole.toString('utf8'));
      } catch {
        for (const fd of got.fds) unix.close(fd);
        this.close('a message of the link is not JSON: a netplex bug');
        return;
      }
      this.#events.message(message, got.fds, (got.flags & MSG_CTRUNC) !== 0);
    }
  }
}
