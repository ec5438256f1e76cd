/**
 * connection/log-window — a log line that a client can cause, aggregated: the first of a burst is
 * logged at once, in full; those that follow within the window are counted and logged as one line
 * when it ends, so that a flood of clients cannot flood the log.
 */

/** How often, at most, a log line a client can cause (refused at max_connections, closed idle) is logged. */
export const LOG_WINDOW_MS = 1_000;

/** LogWindow aggregates one kind of log line over windows of `ms`. */
export class LogWindow {
  readonly #ms: number;
  readonly #flush: (count: number, seconds: number) => void;
  #count = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `flush` logs the line for `count` (> 0) events counted in the last `seconds`. */
  constructor(ms: number, flush: (count: number, seconds: number) => void) {
    this.#ms = ms;
    this.#flush = flush;
  }

  /**
   * hit records one event: true when it is the first of a window (the caller logs it in full now),
   * false when it is counted for the window's line.
   */
  hit(): boolean {
    if (this.#timer) {
      this.#count++;
      return false;
    }
    this.#arm();
    return true;
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#end(), this.#ms);
    this.#timer.unref();
  }

  #end(): void {
    if (this.#count === 0) {
      this.#timer = undefined;
      return;
    }
    const count = this.#count;
    this.#count = 0;
    this.#flush(count, this.#ms / 1000);
    this.#arm();
  }
}
