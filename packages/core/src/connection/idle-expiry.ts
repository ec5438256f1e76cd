/**
 * connection/idle-expiry — what happens when a connection's idle limit passes without input: in
 * its turn, muxTimeout runs with `client.idle` true; then the connection is closed, unless input
 * came meanwhile, or muxTimeout kept it (`mux.setIdleTimeout`) or closed it itself. The closes are
 * logged at level 2, the first of a burst at once and the others counted, one line a second at most.
 */
import { isPromiseLike } from '../hooks.js';
import type { ServerContext } from '../server/context.js';
import { clientControl } from './client.js';
import type { ClientFlow } from './client-flow.js';
import { LOG_WINDOW_MS, LogWindow } from './log-window.js';
import type { Session } from './session.js';

/** IdleExpiry runs the idle expiries of one server's connections. */
export class IdleExpiry<S> {
  readonly #ctx: ServerContext<S>;
  readonly #flow: ClientFlow<S>;
  readonly #closes: LogWindow;

  constructor(ctx: ServerContext<S>, flow: ClientFlow<S>) {
    this.#ctx = ctx;
    this.#flow = flow;
    this.#closes = new LogWindow(LOG_WINDOW_MS, (count, seconds) =>
      ctx.log(2, `closed ${count} more idle connections in the last ${seconds} s`, { idle_closed: count }),
    );
  }

  /** expired queues the idle expiry of a connection whose idle limit passed without input. */
  expired(session: Session<S>): void {
    // On its way to another worker: its idle time moves with it (or is checked here again if it stays).
    if (session.client.phase === 'migrating') return;
    this.#flow.enqueue(session, () => this.#run(session));
  }

  #run(session: Session<S>): unknown {
    const { client } = session;
    const ctx = this.#ctx;
    // Input came while it waited for its turn, or the server gave it another limit.
    if (!client.open || session.failed || !ctx.idle.expired(session)) return undefined;
    const limit = (session.idle?.limitMs ?? 0) / 1000;
    clientControl.setIdle(client, true);
    session.hook = 'muxTimeout';
    const result = ctx.server.muxTimeout(ctx.mux, client);
    if (isPromiseLike(result)) return Promise.resolve(result).then(() => this.#close(session, limit));
    this.#close(session, limit);
    return undefined;
  }

  #close(session: Session<S>, limit: number): void {
    const { client } = session;
    if (!client.idle || !client.open || client.phase === 'migrating') return;
    if (this.#closes.hit())
      this.#ctx.log(2, `client ${client}: no input for ${limit} s (idle_timeout): closing`, {
        conn: client.id,
        peer: client.peeraddr,
        idle: limit,
      });
    client.close();
  }
}
