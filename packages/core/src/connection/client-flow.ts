/**
 * connection/client-flow — the seed's CLIENT PROCESSING for stream connections: accept (or park
 * until the loop starts), the lookups and allow/deny, admit and muxConnection, input and its limits,
 * eof and close, with the per-connection queue that keeps each connection's hooks in order while
 * every other connection goes on being served.
 *
 * A hook that throws or rejects is logged with the client's address and costs that one connection.
 * The accept path stays synchronous while the hooks do (no promise per connection), and one set of
 * socket event handlers serves every socket (session.ts).
 */
import type net from 'node:net';
import { unmapIPv4 } from '../access.js';
import { HookError, MultiplexError } from '../errors.js';
import { type ClientHookName, isPromiseLike } from '../hooks.js';
import type { Listener } from '../listeners.js';
import type { MuxTarget } from '../mux.js';
import type { ServerContext } from '../server/context.js';
import { allowDeny, needsLookup, reverseLookup } from './admission.js';
import { Client, type ClientInfo, clientControl, type Transport } from './client.js';
import { OverLimits } from './limits.js';
import { unlink } from './links.js';
import { LOG_WINDOW_MS, LogWindow } from './log-window.js';
import { droppedAfterShutdown, outputEmptied } from './mux-ops.js';
import {
  kSession,
  markClosed,
  newSession,
  type Session,
  type SessionSocket,
  SocketTransport,
  type Step,
} from './session.js';
import type { ArmedTimeout } from './timeouts.js';

/** A parked connection's errors (a reset while it waits) are its end: it is skipped when served. */
function ignoreError(): void {}

/** then runs `next` after `value`: at once for a plain value, after it settles for a promise. */
function then<T>(value: T | PromiseLike<T>, next: (v: T) => unknown): unknown {
  return isPromiseLike(value) ? Promise.resolve(value).then(next) : next(value);
}

/** ClientFlow runs the client flow of every stream connection of one server. */
export class ClientFlow<S> {
  readonly #ctx: ServerContext<S>;
  /** One checkOutput for every client (a closure per client would cost memory per connection). */
  readonly #checkOutputOf = (client: Client<S>) => this.#checkOutput(client);
  /** One set of socket event handlers for every connection; each socket carries its session. */
  readonly #on: SocketHandlers;
  /** Connections refused at max_connections: one line a second at most, with their count. */
  readonly #refusals = new LogWindow(LOG_WINDOW_MS, (count, seconds) =>
    this.#ctx.log(
      1,
      `max_connections (${this.#ctx.config.max_connections}) reached: refused ${count} more in the last ${seconds} s`,
      { refused: count },
    ),
  );

  /** Clients disconnected past a buffer limit: per limit, one line a second at most, with their count. */
  readonly #overLimits: OverLimits<S>;

  /** muxOutbufferEmpty's notice; every client is watched only if the server defines that hook. */
  readonly #emptiedOf: (client: Client<S>) => void;
  readonly #watchAll: boolean;

  constructor(ctx: ServerContext<S>) {
    this.#ctx = ctx;
    this.#overLimits = new OverLimits(ctx);
    this.#on = this.#makeSocketHandlers();
    this.#emptiedOf = (c) => outputEmptied(this, ctx, c);
    this.#watchAll = typeof ctx.server.muxOutbufferEmpty === 'function';
  }

  /** watchOutput has muxOutbufferEmpty run for one client (whose callback object defines it). */
  watchOutput(client: Client<S>): void {
    clientControl.watchOutput(client, this.#emptiedOf);
  }

  /** detach stops the client flow hearing a session's socket (mux.remove hands the socket back). */
  detach(session: Session<S>): void {
    const socket = session.socket;
    if (!socket) return;
    const on = this.#on;
    socket.off('data', on.data);
    socket.off('end', on.end);
    socket.off('error', on.error);
    socket.off('close', on.close);
  }

  /** onConnection takes a new connection from a listener: refused, parked, or served. */
  onConnection(socket: net.Socket, listener: Listener): void {
    const ctx = this.#ctx;
    const parked = ctx.parked;
    if (parked === undefined && ctx.state !== 'running') {
      socket.destroy();
      return;
    }
    const max = ctx.config.max_connections;
    if (max > 0 && ctx.sessions.size - ctx.added.size + (parked?.length ?? 0) >= max) {
      // The first of a burst is logged at once, the others counted, so that a flood of clients
      // cannot flood the log.
      const peer = socket.remoteAddress;
      if (this.#refusals.hit()) ctx.log(1, `max_connections (${max}) reached: refusing ${peer}`, { peer });
      socket.destroy();
      return;
    }
    if (parked) {
      // Not served yet (the start-up hooks run, or the migrating server's counter is not here):
      // it waits, reading into its own buffer, and is served in its turn once the loop starts.
      socket.on('error', ignoreError);
      parked.push({ socket, listener });
      return;
    }
    const id = ++ctx.server.requests;
    const isUnix = listener.proto === 'unix';
    // A listener bound to one address spares each connection a getsockname() call.
    const local = listener.localAddress;
    const session = this.createSession(socket, {
      id,
      proto: isUnix ? 'unix' : 'tcp',
      peeraddr: isUnix ? '' : unmapIPv4(socket.remoteAddress ?? ''),
      peerport: isUnix ? 0 : (socket.remotePort ?? 0),
      sockaddr: isUnix ? listener.label : unmapIPv4(local?.address ?? socket.localAddress ?? ''),
      sockport: isUnix ? 0 : (local?.port ?? socket.localPort ?? 0),
      listener: listener.label,
    });
    const { client } = session;
    if (ctx.config.log_level >= 3)
      ctx.log(3, `CONNECT ${client.proto.toUpperCase()} Peer: "[${client.peeraddr}]:${client.peerport}"`, {
        conn: client.id,
        peer: client.peeraddr,
        peerport: client.peerport,
        listener: listener.label,
      });
    this.enqueue(session, () => this.#runAccept(session));
  }

  /** unpark serves the connections that waited, in the order they came; those that gave up are gone. */
  unpark(): void {
    const ctx = this.#ctx;
    const parked = ctx.parked ?? [];
    ctx.parked = undefined;
    for (const { socket, listener } of parked) {
      socket.off('error', ignoreError);
      if (socket.destroyed) continue;
      this.onConnection(socket, listener);
    }
  }

  /** closeParked closes the connections that waited to be served, when they never will be. */
  closeParked(why: string): void {
    const ctx = this.#ctx;
    const parked = ctx.parked ?? [];
    ctx.parked = undefined;
    const open = parked.filter(({ socket }) => !socket.destroyed);
    for (const { socket } of parked) socket.destroy();
    if (open.length > 0)
      ctx.log(1, `closed ${open.length} connections that arrived before the server was ready: ${why}`, {
        connections: open.length,
      });
  }

  /** createSession makes the client of a stream socket and wires the socket's events to the client flow. */
  createSession(socket: net.Socket, info: ClientInfo, transport?: Transport): Session<S> {
    const ctx = this.#ctx;
    const client = new Client<S>(
      info,
      transport ?? new SocketTransport(socket),
      ctx.logger.pino,
      this.#checkOutputOf,
    );
    const session = newSession(client, socket);
    ctx.sessions.set(client, session);
    if (this.#watchAll) clientControl.watchOutput(client, this.#emptiedOf);
    const on = this.#on;
    socket.on('data', on.data);
    socket.on('end', on.end);
    socket.on('error', on.error);
    socket.on('close', on.close);
    return session;
  }

  /** makeSocketHandlers makes the one set of handlers every socket shares. */
  #makeSocketHandlers(): SocketHandlers {
    const flow = this;
    const ctx = this.#ctx;
    return {
      data(this: net.Socket, chunk: Buffer) {
        flow.#onData(sessionOf<S>(this), chunk);
      },
      end(this: net.Socket) {
        flow.enqueue(sessionOf<S>(this), 'eof');
      },
      error(this: net.Socket, err: NodeJS.ErrnoException) {
        const { client } = sessionOf<S>(this);
        ctx.log(3, `client ${client}: ${err.code ?? err.message}`, {
          conn: client.id,
          err: err.code ?? err.message,
        });
      },
      close(this: net.Socket) {
        flow.enqueue(sessionOf<S>(this), 'close');
      },
    };
  }

  #onData(session: Session<S>, chunk: Buffer): void {
    const { client } = session;
    if (client.phase === 'closed' || session.failed || session.readShut) {
      if (session.readShut) droppedAfterShutdown(this.#ctx, client, chunk.length);
      return;
    }
    client.input.append(chunk);
    // Input restarts the idle clock (while moving too: the idle time moves with the connection).
    const idle = session.idle;
    if (idle) {
      idle.last = Date.now();
      if (client.idle) clientControl.setIdle(client, false);
    }
    // Being frozen for a migration: the input moves with the connection.
    if (client.phase === 'migrating') return;
    if (session.busy || session.queue.length > 0) {
      if (client.input.length > this.#ctx.maxInput) {
        this.#overLimits.disconnect(
          session,
          'max_input_buffer',
          `${client.input.length} bytes of input not consumed`,
        );
        return;
      }
      if (!session.inputQueued) {
        session.inputQueued = true;
        session.queue.push('input');
      }
      return;
    }
    this.#step(session, 'input');
  }

  #deliverInput(session: Session<S>): unknown {
    const { client } = session;
    if (!client.accepted || session.failed || client.input.length === 0) return undefined;
    if (client.phase !== 'connected' && client.phase !== 'eof') return undefined;
    session.hook = 'muxInput';
    const ctx = this.#ctx;
    const h = session.handler;
    const result = h
      ? h.muxInput?.(ctx.mux, client, client.input)
      : ctx.server.muxInput(ctx.mux, client, client.input);
    if (isPromiseLike(result)) return Promise.resolve(result).then(() => this.#checkInput(session));
    this.#checkInput(session);
    return undefined;
  }

  #checkInput(session: Session<S>): void {
    const { client } = session;
    if (client.input.length > this.#ctx.maxInput) {
      this.#overLimits.disconnect(
        session,
        'max_input_buffer',
        `${client.input.length} bytes of input not consumed`,
      );
    }
  }

  #checkOutput(client: Client<S>): void {
    if (client.outputLength > this.#ctx.maxOutput) {
      const session = this.#ctx.sessions.get(client);
      if (session)
        this.#overLimits.disconnect(
          session,
          'max_output_buffer',
          `${client.outputLength} bytes of output not sent`,
        );
    }
  }

  /**
   * runAccept is the client flow up to muxConnection. It stays synchronous while the hooks do (no
   * promise per connection on the accept path) and waits only for a hook that returns a promise.
   */
  #runAccept(session: Session<S>): unknown {
    const { client } = session;
    // Net::Server's get_client_info: the peer's host name is known before post_accept_hook.
    if (needsLookup(this.#ctx, client)) {
      return reverseLookup(this.#ctx, client).then((verified) => this.#postAccept(session, verified));
    }
    return this.#postAccept(session, true);
  }

  #postAccept(session: Session<S>, verified: boolean): unknown {
    return then(this.#ctx.server.postAcceptHook(session.client), () => this.#decide(session, verified));
  }

  #decide(session: Session<S>, verified: boolean): unknown {
    const { client } = session;
    if (!verified || !allowDeny(this.#ctx, client)) return this.#deny(session);
    session.hook = 'allowDenyHook';
    return then(this.#ctx.server.allowDenyHook(client), (ok) =>
      ok !== false ? this.#admit(session) : this.#deny(session),
    );
  }

  #deny(session: Session<S>): unknown {
    const { client } = session;
    if (client.phase !== 'accepting') return undefined; // closed while deciding
    session.hook = 'requestDeniedHook';
    return then(this.#ctx.server.requestDeniedHook(client), () => {
      client.input.clear();
      client.close();
    });
  }

  #admit(session: Session<S>): unknown {
    const { client } = session;
    if (client.phase !== 'accepting') return undefined; // closed while deciding
    const ctx = this.#ctx;
    client.accepted = true;
    clientControl.setPhase(client, 'connected');
    ctx.clients.add(client);
    // The idle clock starts now; muxConnection may give the connection a limit of its own.
    if (ctx.idleMs > 0) ctx.idle.start(session, ctx.idleMs, false);
    session.hook = 'muxConnection';
    return then(ctx.server.muxConnection(ctx.mux, client), () => {
      if (client.input.length > 0 && !session.inputQueued) {
        session.inputQueued = true;
        session.queue.push('input');
      }
    });
  }

  async #runEof(session: Session<S>): Promise<void> {
    const { client } = session;
    if (session.eofDone) return;
    session.eofDone = true;
    if (client.phase === 'connected') clientControl.setPhase(client, 'eof');
    session.hook = 'muxEof';
    const ctx = this.#ctx;
    if (!session.failed) await (session.handler ?? ctx.server).muxEof?.(ctx.mux, client, client.input);
    // As Net::Server::Multiplex does after mux_eof: the client is done writing, so finish ours;
    // and, as IO::Multiplex does once both sides are shut, close once the output is sent.
    if (session.readShut) client.close();
    else if (!client.allowHalfOpen) client.shutdown();
  }

  async #runClose(session: Session<S>): Promise<void> {
    const { client } = session;
    if (client.phase === 'closed') return;
    const ctx = this.#ctx;
    if (!session.eofDone && !session.failed) {
      session.eofDone = true;
      await this.#isolated(session, 'muxEof', () =>
        (session.handler ?? ctx.server).muxEof?.(ctx.mux, client, client.input),
      );
    }
    clientControl.setPhase(client, 'closed');
    ctx.clients.delete(client);
    ctx.sessions.delete(client);
    if (ctx.adopted.size > 0) ctx.adopted.delete(client.id);
    ctx.timeouts.clear(client);
    ctx.idle.stop(session);
    if (client.added) ctx.added.delete(client);
    else
      await this.#isolated(session, 'postProcessRequestHook', () =>
        ctx.server.postProcessRequestHook(client),
      );
    await this.#isolated(session, 'muxClose', () =>
      (session.handler ?? ctx.server).muxClose?.(ctx.mux, client),
    );
    client.input.clear();
    if (ctx.links.size > 0) unlink(ctx, client);
    markClosed(session);
    if (ctx.sessions.size === 0) ctx.onIdle?.();
  }

  /** isolated runs a hook whose failure is logged but does not stop the close sequence. */
  async #isolated(session: Session<S>, hook: ClientHookName, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#ctx.logHookError(new HookError(hook, err), session.client);
    }
  }

  /** enqueue runs a step of a connection now, or after the steps before it. */
  enqueue(session: Session<S>, step: Step): void {
    if (session.busy || session.queue.length > 0) session.queue.push(step);
    else this.#step(session, step);
  }

  /** queueInput queues delivery of the input a connection has, unless that is queued already. */
  queueInput(session: Session<S>): void {
    if (session.client.input.length > 0 && !session.inputQueued) {
      session.inputQueued = true;
      this.enqueue(session, 'input');
    }
  }

  #step(session: Session<S>, step: Step): void {
    let result: unknown;
    try {
      if (step === 'input') {
        session.inputQueued = false;
        result = this.#deliverInput(session);
      } else if (step === 'eof') result = this.#runEof(session);
      else if (step === 'close') result = this.#runClose(session);
      else result = step();
    } catch (err) {
      this.#hookFailed(session, err);
      this.#drain(session);
      return;
    }
    if (isPromiseLike(result)) {
      session.busy = true;
      result.then(
        () => {
          session.busy = false;
          this.#drain(session);
        },
        (err: unknown) => {
          session.busy = false;
          this.#hookFailed(session, err);
          this.#drain(session);
        },
      );
    }
  }

  #drain(session: Session<S>): void {
    while (!session.busy && session.queue.length > 0) this.#step(session, session.queue.shift()!);
    if (!session.busy && session.onSettled) {
      const settled = session.onSettled;
      session.onSettled = undefined;
      settled();
    }
  }

  #hookFailed(session: Session<S>, err: unknown): void {
    const { client } = session;
    this.#ctx.logHookError(err instanceof MultiplexError ? err : new HookError(session.hook, err), client);
    if (session.failed) return;
    session.failed = true;
    client.input.clear();
    client.destroy();
  }

  /**
   * onTimeout runs muxTimeout for a target whose timeout came due: for a listener at once, for a
   * client in its turn, unless the server set or cleared that timeout meanwhile (then the due one
   * never fires). One that came due while its connection was moving fires where it is served.
   */
  onTimeout(target: MuxTarget<S>, due: ArmedTimeout): void {
    const ctx = this.#ctx;
    if (target.kind === 'listener') {
      if (!ctx.timeouts.takeDue(target, due)) return;
      Promise.resolve()
        .then(() => ctx.server.muxTimeout(ctx.mux, target))
        .catch((err) => ctx.logHookError(new HookError('muxTimeout', err)));
      return;
    }
    const session = ctx.sessions.get(target);
    if (!session) return;
    if (target.phase === 'migrating') {
      // Its state is frozen or on its way: the timeout stays due, and fires in whichever worker serves it.
      ctx.log(4, `timeout of client ${target} came due while it was moving: it fires where it is served`, {
        conn: target.id,
      });
      return;
    }
    if (session.busy && ctx.config.log_level >= 4)
      ctx.log(4, `timeout of client ${target} came due while a hook runs: muxTimeout runs in its turn`, {
        conn: target.id,
      });
    this.enqueue(session, () => {
      if (!ctx.timeouts.takeDue(target, due)) return undefined;
      if (!target.open || session.failed) return undefined;
      session.hook = 'muxTimeout';
      const h = session.handler;
      return h ? h.muxTimeout?.(ctx.mux, target) : ctx.server.muxTimeout(ctx.mux, target);
    });
  }
}

/** SocketHandlers are the event handlers every stream socket shares. */
interface SocketHandlers {
  data(this: net.Socket, chunk: Buffer): void;
  end(this: net.Socket): void;
  error(this: net.Socket, err: NodeJS.ErrnoException): void;
  close(this: net.Socket): void;
}

/** sessionOf is the session a socket carries. */
function sessionOf<S>(socket: net.Socket): Session<S> {
  return (socket as SessionSocket<S>)[kSession];
}
