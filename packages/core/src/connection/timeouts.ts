/**
 * connection/timeouts — IO::Multiplex's one timeout per handle: armed with `mux.setTimeout` on a
 * client or a listener, it runs muxTimeout when due (through `fire`, which the server gives).
 *
 * A timeout that has come due stays recorded as due (`timer` undefined) until its muxTimeout runs:
 * a client's muxTimeout waits its turn behind the hooks already running for it, and a
 * `mux.setTimeout` made meanwhile (a new time, or null) replaces the due one, which then never
 * fires. One that comes due while its connection is moving to another worker stays due too: it
 * fires wherever the connection is served next.
 *
 * While a connection moves, the server's code may still set or clear its timeout in the worker it
 * is leaving (from another connection's hook, a timer of its own). Such a change is marked
 * (`touched`) and goes with the connection when it is let go (see changeOf); a change the new
 * worker made itself meanwhile wins over it, being the later.
 */
import type { MuxTarget } from '../mux.js';

/** ArmedTimeout is one armed timeout: when it is due, and its timer (undefined once due). */
export interface ArmedTimeout {
  timer: NodeJS.Timeout | undefined;
  at: number;
}

/** Timeouts holds the armed timeouts of one server. */
export class Timeouts<S> {
  readonly #armed = new Map<MuxTarget<S>, ArmedTimeout>();
  readonly #fire: (target: MuxTarget<S>, due: ArmedTimeout) => void;
  /** Targets whose timeout the server's code set or cleared since `untouch` (see changeOf). */
  readonly #touched = new WeakSet<MuxTarget<S>>();

  /**
   * `fire` runs when a timeout comes due, with the due entry; the entry stays recorded until
   * `takeDue` is called with it (when muxTimeout is about to run).
   */
  constructor(fire: (target: MuxTarget<S>, due: ArmedTimeout) => void) {
    this.#fire = fire;
  }

  /**
   * set arms (or with null, clears) the target's one timeout, `seconds` from now. `byServer` marks a
   * change the server's code made (mux.setTimeout), as opposed to netplex's own re-arming.
   */
  set(target: MuxTarget<S>, seconds: number | null, byServer = false): void {
    if (seconds !== null && (!Number.isFinite(seconds) || seconds < 0)) {
      throw new RangeError(`setTimeout() takes seconds >= 0 or null, got ${seconds}`);
    }
    this.clear(target);
    if (byServer) this.#touched.add(target);
    if (seconds === null) return;
    if (target.kind === 'client' && target.phase === 'closed') return;
    const ms = seconds * 1000;
    const armed: ArmedTimeout = { timer: undefined, at: Date.now() + ms };
    armed.timer = setTimeout(() => {
      armed.timer = undefined;
      this.#fire(target, armed);
    }, ms);
    this.#armed.set(target, armed);
  }

  /** clear forgets the target's timeout, if it has one (a due one then never fires). */
  clear(target: MuxTarget<S>): void {
    const t = this.#armed.get(target);
    if (t) {
      clearTimeout(t.timer);
      this.#armed.delete(target);
    }
  }

  /** get is the target's armed (or due) timeout, if any. */
  get(target: MuxTarget<S>): ArmedTimeout | undefined {
    return this.#armed.get(target);
  }

  /**
   * takeDue forgets `due` and says true when it is still the target's timeout: its muxTimeout may
   * run. False when the server set or cleared the timeout after it came due.
   */
  takeDue(target: MuxTarget<S>, due: ArmedTimeout): boolean {
    if (this.#armed.get(target) !== due) return false;
    this.#armed.delete(target);
    return true;
  }

  /** untouch forgets that the server changed the target's timeout (a connection starts to move). */
  untouch(target: MuxTarget<S>): void {
    this.#touched.delete(target);
  }

  /** touched says whether the server set or cleared the target's timeout since `untouch`. */
  touched(target: MuxTarget<S>): boolean {
    return this.#touched.has(target);
  }

  /**
   * changeOf is what a connection that is being let go takes with it of its timeout: undefined when
   * the server has not changed it since it was frozen (the new worker has it already), else the ms
   * left on it, or null when it was cleared.
   */
  changeOf(target: MuxTarget<S>): number | null | undefined {
    if (!this.#touched.has(target)) return undefined;
    const t = this.#armed.get(target);
    return t === undefined ? null : Math.max(0, t.at - Date.now());
  }

  /** clearAll forgets every timeout (the server has closed). */
  clearAll(): void {
    for (const { timer } of this.#armed.values()) clearTimeout(timer);
    this.#armed.clear();
  }
}
