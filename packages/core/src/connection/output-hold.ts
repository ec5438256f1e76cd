/**
 * connection/output-hold — what a connection keeps while it moves between workers: the output
 * written to it meanwhile (which the worker that serves it next sends first), and how it was ended
 * meanwhile (a shutdown, close or destroy that worker carries out).
 *
 * A Client has one only while it is moving (in the old worker, phase `migrating`) or has just come
 * (in the new worker, until the old one lets it go): an idle connection pays for none.
 */

/** What takeHeld returns when nothing was held (never written to). */
export const NOTHING = Buffer.alloc(0);

/**
 * ConnectionEnd is how a connection was ended while it was on its way to another worker: the worker
 * that serves it next does it, after the output written to it before.
 */
export type ConnectionEnd = 'shutdown' | 'close' | 'destroy';

/** OutputHold is one moving connection's held output and pending end. */
export class OutputHold {
  /** Output written while the connection is on its way (or waiting for the old worker's): in order. */
  held: Buffer[] | undefined;
  /**
   * In the new worker, until the old one has let the connection go: output written here waits, so
   * that what the old worker wrote to it meanwhile is sent first; `after` is a close or shutdown
   * asked for here meanwhile, which waits too. Undefined when not waiting for the old worker.
   */
  waiting: { after?: 'close' | 'shutdown' } | undefined;
  /** shutdown, close or destroy asked for while the connection was on its way (phase migrating). */
  endWhileMoving: ConnectionEnd | undefined;

  /** push keeps bytes in order for the worker that sends them. */
  push(buf: Buffer): void {
    this.held ??= [];
    this.held.push(buf);
  }

  /** unshift puts bytes back before what is held (they were taken, and did not go after all). */
  unshift(buf: Buffer): void {
    if (buf.length === 0) return;
    this.held ??= [];
    this.held.unshift(buf);
  }

  /** takeHeld returns (and forgets) the output held so far. */
  takeHeld(): Buffer {
    const out = this.held ? Buffer.concat(this.held) : NOTHING;
    this.held = undefined;
    return out;
  }

  /** takeEnd returns (and forgets) how the connection was ended while on its way. */
  takeEnd(): ConnectionEnd | undefined {
    const end = this.endWhileMoving;
    this.endWhileMoving = undefined;
    return end;
  }

  /** idle is true when the hold keeps nothing and waits for nothing (the Client can drop it). */
  get idle(): boolean {
    return this.held === undefined && this.waiting === undefined && this.endWhileMoving === undefined;
  }
}
