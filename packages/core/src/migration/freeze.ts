/**
 * migration/freeze — one connection's way out of the worker being replaced: made ready while still
 * served, stopped, settled, frozen, flushed, captured (muxFreeze), and then released once the new
 * worker has it, or unfrozen (put back to work here) when it does not move after all. Each step
 * records its move state (move-state.ts).
 *
 * Exactly once: reading stops before the input is taken, and the socket's own output reaches the
 * kernel before the socket moves; from `frozen` on, what is written to the connection is held.
 */

import type net from 'node:net';
import { clientControl } from '../connection/client.js';
import type { ClientFlow } from '../connection/client-flow.js';
import { callbackClassName } from '../connection/handler.js';
import { unlink } from '../connection/links.js';
import { isSettled, markClosed, type Session, settled, waitFlushed } from '../connection/session.js';
import { HookError } from '../errors.js';
import { isPromiseLike } from '../hooks.js';
import type { FrozenConnection } from '../ipc/messages.js';
import type { ServerContext } from '../server/context.js';
import type { MoveTracker } from './move-state.js';

/** How long a migration waits for a connection's hook in progress to settle before it lets it drain. */
export const SETTLE_MS = 2_000;

/** How long a migration waits for a connection's output to reach the kernel before it lets it drain. */
export const FLUSH_MS = 2_000;

/** A socket's libuv handle, for the reads that Node's stream API cannot stop at once. */
interface StreamHandle {
  readStop?: () => number;
  readStart?: () => number;
}

function handleOf<S>(session: Session<S>): StreamHandle | undefined {
  return (session.socket as unknown as { _handle?: StreamHandle } | undefined)?._handle;
}

/** What freeze() gives: the connection to send, or undefined when it stays (now or once known). */
export type Freezing = FrozenConnection | undefined | Promise<FrozenConnection | undefined>;

/** Freezer moves the connections of one migration out, recording each one's state in `moves`. */
export class Freezer<S> {
  readonly #ctx: ServerContext<S>;
  readonly #flow: ClientFlow<S>;
  readonly #moves: MoveTracker<Session<S>>;
  readonly #carries: ((socket: net.Socket) => boolean) | undefined;

  /** `carries` says whether the migration's transport can carry a socket at all (see MigrationChannel). */
  constructor(
    ctx: ServerContext<S>,
    flow: ClientFlow<S>,
    moves: MoveTracker<Session<S>>,
    carries?: (socket: net.Socket) => boolean,
  ) {
    this.#ctx = ctx;
    this.#flow = flow;
    this.#moves = moves;
    this.#carries = carries;
  }

  /** isMovable says whether a connection can migrate at all (a live, movable stream connection). */
  isMovable(session: Session<S>): boolean {
    const { client, socket } = session;
    return (
      socket !== undefined &&
      typeof handleOf(session)?.readStop === 'function' &&
      client.movable &&
      client.phase === 'connected' &&
      // An added socket still connecting has no connection to move yet; a callback object moves
      // only as data, for a class the server registers (callbackClasses).
      !socket.connecting &&
      (session.handler === undefined || callbackClassName(this.#ctx.server, session.handler) !== undefined) &&
      !session.failed &&
      (this.#carries?.(socket) ?? true)
    );
  }

  /**
   * ready, when a connection's turn to move comes with a hook in progress or output not yet in the
   * kernel, waits (up to SETTLE_MS, FLUSH_MS) for that while the connection is still served, so that
   * its pause does not include it; undefined when there is nothing to wait for. freeze checks again.
   */
  ready(session: Session<S>): Promise<unknown> | undefined {
    if (!this.isMovable(session)) return undefined;
    let wait: Promise<unknown> | undefined;
    if (!isSettled(session)) wait = settled(session, SETTLE_MS);
    else if (session.socket!.writableLength > 0) wait = waitFlushed(session.socket!, FLUSH_MS);
    if (wait) this.#moves.to(session, 'readying');
    return wait;
  }

  /**
   * freeze stops a connection and takes what moves of it, at once when it can (no hook running, its
   * output in the kernel), else once it can; undefined when it cannot move (it stays and drains).
   * In order: reading stops, the hook in progress settles (here, with its input), writes are held
   * from then on, the input the stream read ahead is taken, the socket's own output reaches the
   * kernel, and muxFreeze runs.
   */
  freeze(session: Session<S>): Freezing {
    if (!this.isMovable(session)) {
      this.#moves.to(session, 'drained');
      return undefined;
    }
    // Further input stays in the kernel, where it moves with the socket.
    session.socket!.pause();
    handleOf(session)!.readStop!();
    this.#moves.to(session, 'stopped');
    if (!isSettled(session)) {
      this.#moves.to(session, 'settling');
      return settled(session, SETTLE_MS).then((ok) =>
        ok && this.isMovable(session) ? this.#freezeSettled(session) : this.#unfrozen(session),
      );
    }
    return this.#freezeSettled(session);
  }

  #freezeSettled(session: Session<S>): Freezing {
    const { client } = session;
    const socket = session.socket!;
    // From here on, what anyone writes to this client is held, to be sent by the new worker.
    clientControl.setPhase(client, 'migrating');
    this.#moves.to(session, 'frozen');
    // The stream's read-ahead is input this worker owns: read() hands each chunk to the 'data'
    // handler, which, while migrating, only appends it to the client's input.
    while (socket.read() !== null);
    if (socket.writableLength > 0) {
      this.#moves.to(session, 'flushing');
      // Held writes leave the socket's buffer to shrink: this waits only for the client to read.
      return waitFlushed(socket, FLUSH_MS).then((flushed) =>
        flushed ? this.#capture(session) : this.#unfrozen(session),
      );
    }
    return this.#capture(session);
  }

  /** capture runs muxFreeze and builds what is sent, unless something happened to the connection meanwhile. */
  #capture(session: Session<S>): Freezing {
    const { client } = session;
    this.#moves.to(session, 'capturing');
    if (!this.#stillFrozen(session)) return this.#unfrozen(session);
    const ctx = this.#ctx;
    const handler = session.handler;
    let state: unknown;
    try {
      // A callback object says what of the handle moves, instead of the server; by default its state.
      if (handler === undefined) state = ctx.server.muxFreeze(ctx.mux, client);
      else state = handler.muxFreeze ? handler.muxFreeze(ctx.mux, client) : client.state;
    } catch (err) {
      ctx.logHookError(new HookError('muxFreeze', err), client);
      return this.#unfrozen(session);
    }
    if (!isPromiseLike(state)) return this.#frozen(session, state);
    return Promise.resolve(state).then(
      (value) => this.#frozen(session, value),
      (err: unknown) => {
        ctx.logHookError(new HookError('muxFreeze', err), client);
        return this.#unfrozen(session);
      },
    );
  }

  #frozen(session: Session<S>, state: unknown): FrozenConnection | undefined {
    const { client } = session;
    // Closed or handed a step while an async muxFreeze ran: it stays.
    if (!this.#stillFrozen(session)) return this.#unfrozen(session);
    const frozen: FrozenConnection = {
      id: client.id,
      proto: client.proto === 'unix' ? 'unix' : 'tcp',
      peeraddr: client.peeraddr,
      peerport: client.peerport,
      sockaddr: client.sockaddr,
      sockport: client.sockport,
      listener: client.listener,
      peerhost: client.peerhost,
      connectedAt: client.connectedAt.getTime(),
      state,
    };
    // Empty input and output (the common case) and no timeout are left out of the message.
    if (client.input.length > 0) frozen.input = client.input.bytes().toString('base64');
    const output = clientControl.takeHeldOutput(client);
    if (output.length > 0) frozen.output = output.toString('base64');
    if (clientControl.isBuffered(client)) frozen.buffered = true;
    if (client.allowHalfOpen) frozen.halfOpen = true;
    if (client.added) frozen.added = true;
    if (session.handler) frozen.handler = callbackClassName(this.#ctx.server, session.handler);
    const timeouts = this.#ctx.timeouts;
    const timer = timeouts.get(client);
    if (timer) frozen.timeoutMs = Math.max(0, timer.at - Date.now());
    // From here on, a change the server makes to its timeout goes with it when it is let go.
    timeouts.untouch(client);
    const clock = session.idle;
    if (clock) {
      frozen.idleMs = this.#ctx.idle.elapsedMs(clock);
      if (clock.own) frozen.idleLimitMs = clock.limitMs;
    }
    this.#moves.to(session, 'sent');
    return frozen;
  }

  /**
   * stillFrozen says whether a connection being frozen can still be sent: not closed (or ended by a
   * close, which it then carries out here) and not handed a step meanwhile.
   */
  #stillFrozen(session: Session<S>): boolean {
    const { client } = session;
    return (
      client.phase === 'migrating' &&
      clientControl.endedWhileMoving(client) === undefined &&
      isSettled(session)
    );
  }

  /** unfrozen puts a connection back to work here and says it does not move. */
  #unfrozen(session: Session<S>): undefined {
    this.unfreeze(session);
    return undefined;
  }

  /** unfreeze puts a connection that did not move back to work here. */
  unfreeze(session: Session<S>): void {
    const { client, socket } = session;
    this.#moves.to(session, 'unfrozen');
    const end = clientControl.takeEndWhileMoving(client);
    if (client.phase === 'migrating') clientControl.setPhase(client, 'connected');
    const held = clientControl.takeHeldOutput(client);
    if (held.length > 0) client.write(held);
    handleOf(session)?.readStart?.();
    socket?.resume();
    // A timeout that came due while the connection was on its way fires here now.
    const timer = this.#ctx.timeouts.get(client);
    if (timer && timer.timer === undefined) this.#ctx.timeouts.set(client, 0);
    // And its idle limit, if that passed meanwhile.
    this.#ctx.idle.resume(session);
    this.#flow.queueInput(session);
    // Ended while it was on its way: that happens here now, after the output written before.
    if (end === 'destroy') client.destroy();
    else if (end === 'close') client.close();
    else if (end === 'shutdown') client.shutdown();
  }

  /**
   * timeoutChange is what the server did to a connection's timeout since it was frozen, for the
   * new worker: undefined (nothing), the ms left on it, or null (cleared). See Timeouts.changeOf.
   */
  timeoutChange(session: Session<S>): number | null | undefined {
    return this.#ctx.timeouts.changeOf(session.client);
  }

  /** stay records that a connection which could move stays, with the one it is linked to, and drains. */
  stay(session: Session<S>): void {
    this.#moves.to(session, 'drained');
  }

  /** release forgets a connection that now lives in the new worker, closing only this process's descriptor. */
  release(session: Session<S>): void {
    const { client, socket } = session;
    const ctx = this.#ctx;
    this.#moves.to(session, 'released');
    unlink(ctx, client);
    ctx.timeouts.clear(client);
    ctx.idle.stop(session);
    ctx.clients.delete(client);
    ctx.added.delete(client);
    ctx.sessions.delete(client);
    if (ctx.adopted.size > 0) ctx.adopted.delete(client.id);
    client.input.clear();
    clientControl.setPhase(client, 'closed');
    if (socket) {
      socket.removeAllListeners();
      socket.on('error', () => {});
      // The new worker holds the socket now: closing this descriptor sends nothing to the peer.
      socket.destroy();
    }
    markClosed(session);
    if (ctx.sessions.size === 0) ctx.onIdle?.();
  }
}
