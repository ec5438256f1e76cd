/**
 * connection/limits — a client past a buffer limit (max_input_buffer, max_output_buffer): it is
 * disconnected, and logged per limit through a LogWindow, so that many such clients make one line a
 * second, with their count, while everyone else goes on being served.
 */
import { LimitError } from '../errors.js';
import type { ServerContext } from '../server/context.js';
import { LOG_WINDOW_MS, LogWindow } from './log-window.js';
import type { Session } from './session.js';

/** OverLimits disconnects the clients that pass a limit, and logs them aggregated. */
export class OverLimits<S> {
  readonly #ctx: ServerContext<S>;
  readonly #windows = new Map<string, LogWindow>();

  constructor(ctx: ServerContext<S>) {
    this.#ctx = ctx;
  }

  /** disconnect drops a client past `limit` (what it was, in `detail`); once per client. */
  disconnect(session: Session<S>, limit: string, detail: string): void {
    if (session.failed) return;
    session.failed = true;
    const ctx = this.#ctx;
    const err = new LimitError(limit, detail);
    let window = this.#windows.get(limit);
    if (!window) {
      window = new LogWindow(LOG_WINDOW_MS, (count, seconds) =>
        ctx.log(1, `${limit}: disconnected ${count} more clients in the last ${seconds} s`, {
          limit,
          disconnected: count,
        }),
      );
      this.#windows.set(limit, window);
    }
    if (window.hit())
      ctx.log(1, `client ${session.client}: ${err.message}; disconnecting`, {
        conn: session.client.id,
        peer: session.client.peeraddr,
        limit,
      });
    session.client.input.clear();
    session.client.destroy();
  }
}
