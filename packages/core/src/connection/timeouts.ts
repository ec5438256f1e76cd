/**
 * connection/timeouts — IO::Multiplex's one timeout per handle: armed with `mux.setTimeout` on a
 * client or a listener, it runs muxTimeout when due (through `fire`, which the server gives).
 *
 * A timeout that comes due while its connection is moving to another worker is kept as due
 * (`timer` undefined): it fires wherever the connection is served next.
 */
import type { MuxTarget } from '../mux.js';

/** ArmedTimeout is one armed timeout: when it is due, and its timer (undefined once due while moving). */
export interface ArmedTimeout {
  timer: NodeJS.Timeout | undefined;
  at: number;
}

/** Timeouts holds the armed timeouts of one server. */
export class Timeouts<S> {
  readonly #armed = new Map<MuxTarget<S>, ArmedTimeout>();
  readonly #fire: (target: MuxTarget<S>) => void;

  /** `fire` runs when a timeout comes due (the timeout is already forgotten by then). */
  constructor(fire: (target: MuxTarget<S>) => void) {
    this.#fire = fire;
  }

  /** set arms (or with null, clears) the target's one timeout, `seconds` from now. */
  set(target: MuxTarget<S>, seconds: number | null): void {
    this.clear(target);
    if (seconds === null) return;
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`setTimeout() takes seconds >= 0 or null, got ${seconds}`);
    }
    if (target.kind === 'client' && target.phase === 'closed') return;
    const ms = seconds * 1000;
    const timer = setTimeout(() => {
      this.#armed.delete(target);
      this.#fire(target);
    }, ms);
    this.#armed.set(target, { timer, at: Date.now() + ms });
  }

  /** clear forgets the target's timeout, if it has one. */
  clear(target: MuxTarget<S>): void {
    const t = this.#armed.get(target);
    if (t) {
      clearTimeout(t.timer);
      this.#armed.delete(target);
    }
  }

  /** get is the target's armed timeout, if any. */
  get(target: MuxTarget<S>): ArmedTimeout | undefined {
    return this.#armed.get(target);
  }

  /** keepDue records that the target's timeout came due where it cannot fire now (it is moving). */
  keepDue(target: MuxTarget<S>): void {
    this.#armed.set(target, { timer: undefined, at: Date.now() });
  }

  /** clearAll forgets every timeout (the server has closed). */
  clearAll(): void {
    for (const { timer } of this.#armed.values()) clearTimeout(timer);
    this.#armed.clear();
  }
}
