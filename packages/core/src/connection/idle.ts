/**
 * connection/idle — idle_timeout: a connection that receives no input for its idle limit comes due,
 * and muxTimeout runs for it with `client.idle` true (client-flow.ts). The limit is idle_timeout, or
 * what `mux.setIdleTimeout` set for that connection.
 *
 * Input only records when it came (no timer work per chunk). Each connection has one timer, at the
 * end of its limit counted from the last input it knew of; when it fires and input came since, it
 * is set again for the rest. Output does not count.
 */
import { clientControl } from './client.js';
import type { IdleClock, Session } from './session.js';

/** IdleTimers runs the idle clocks of one server's connections. */
export class IdleTimers<S> {
  readonly #fire: (session: Session<S>) => void;

  /** `fire` runs when a connection's idle limit has passed without input. */
  constructor(fire: (session: Session<S>) => void) {
    this.#fire = fire;
  }

  /**
   * start (re)starts a connection's idle clock: `limitMs` (0: none) counted as if `elapsedMs` had
   * passed already without input. `own` marks a limit the server set for this connection.
   */
  start(session: Session<S>, limitMs: number, own: boolean, elapsedMs = 0): void {
    this.stop(session);
    if (limitMs === 0 && !own) return;
    const clock: IdleClock = { limitMs, own, last: Date.now() - elapsedMs, timer: undefined };
    session.idle = clock;
    if (limitMs > 0) this.#arm(session, clock, limitMs - elapsedMs);
  }

  /**
   * set is mux.setIdleTimeout: the connection's own limit, `seconds` (null or 0: none), counted from
   * now. The connection is no longer idle (an idle expiry being handled keeps it open).
   */
  set(session: Session<S> | undefined, seconds: number | null): void {
    if (seconds !== null && (!Number.isFinite(seconds) || seconds < 0)) {
      throw new RangeError(`setIdleTimeout() takes seconds >= 0 or null, got ${seconds}`);
    }
    if (!session || session.client.phase === 'closed') return;
    this.start(session, (seconds ?? 0) * 1000, true);
    clientControl.setIdle(session.client, false);
  }

  /** resume sets a connection's timer again from its clock (after a migration it did not make). */
  resume(session: Session<S>): void {
    const clock = session.idle;
    if (!clock || clock.limitMs === 0) return;
    clearTimeout(clock.timer);
    this.#arm(session, clock, clock.last + clock.limitMs - Date.now());
  }

  /** stop forgets a connection's idle clock (it closed, or moved to another worker). */
  stop(session: Session<S>): void {
    const clock = session.idle;
    if (!clock) return;
    clearTimeout(clock.timer);
    session.idle = undefined;
  }

  /** elapsedMs is how long a connection has been without input, by its clock. */
  elapsedMs(clock: IdleClock): number {
    return Math.max(0, Date.now() - clock.last);
  }

  /** expired says whether a connection's idle limit has passed since its last input. */
  expired(session: Session<S>): boolean {
    const clock = session.idle;
    return clock !== undefined && clock.limitMs > 0 && Date.now() - clock.last >= clock.limitMs;
  }

  /** dueAt is when a connection's idle limit runs out (ms since the epoch), or undefined without one. */
  dueAt(session: Session<S>): number | undefined {
    const clock = session.idle;
    return clock && clock.limitMs > 0 ? clock.last + clock.limitMs : undefined;
  }

  #arm(session: Session<S>, clock: IdleClock, ms: number): void {
    clock.timer = setTimeout(() => this.#check(session, clock), Math.max(0, ms));
  }

  #check(session: Session<S>, clock: IdleClock): void {
    if (session.idle !== clock) return;
    const rest = clock.last + clock.limitMs - Date.now();
    if (rest > 0) {
      // Input came since the timer was set: the limit counts from there.
      this.#arm(session, clock, rest);
      return;
    }
    // Checked again one limit from now, for a connection kept open (input arrived while muxTimeout
    // ran, or it was moving): the clock goes on from its last input.
    this.#arm(session, clock, clock.limitMs);
    this.#fire(session);
  }
}
