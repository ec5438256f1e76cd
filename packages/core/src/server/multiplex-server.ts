/**
 * server/multiplex-server — the class a server author extends: Net::Server::Multiplex's process
 * flow and client flow, with the hooks called in the seed's order.
 *
 * One process serves many connections. Hooks may return promises: per connection, calls stay in
 * order (input arriving while a hook is pending is delivered after it), while every other
 * connection goes on being served. A hook that throws or rejects is logged with the client's
 * address and costs that one connection, never the server.
 *
 * The class holds the hooks and the documented API, and composes the parts that do the work: the
 * start flow (start-flow.ts), the client flow (connection/), migration (migration/), the launch
 * (launch.ts). What the worker runtime needs of a server it gets through a WorkerHost the class
 * makes, so that none of it shows on the class.
 */
import type * as z from 'zod';
import { addSocket, handlerOf, removeHandle, setHandler } from '../connection/added.js';
import type { Client } from '../connection/client.js';
import { ClientFlow } from '../connection/client-flow.js';
import { IdleTimers } from '../connection/idle.js';
import { IdleExpiry } from '../connection/idle-expiry.js';
import type { InputBuffer } from '../connection/input.js';
import { link, unlink as unlinkHandle } from '../connection/links.js';
import { shutdownRead } from '../connection/mux-ops.js';
import { listenOn, unlisten } from '../connection/runtime-listen.js';
import { Timeouts } from '../connection/timeouts.js';
import { ServerClosedError } from '../errors.js';
import { formatHelp } from '../help.js';
import type { HookMethods, MaybePromise } from '../hooks.js';
import type { WorkerStatus } from '../ipc/messages.js';
import type { WorkerHost } from '../ipc/worker-host.js';
import type { Listener, ListenerAddress } from '../listeners.js';
import type { LogLevel, NetplexLogger } from '../logger.js';
import {
  adoptConnection,
  deliverToAdopted,
  endAdoption,
  releaseAdopted,
  thawServer,
} from '../migration/adopt.js';
import { migrateOut, resumeAccepting } from '../migration/migrate-out.js';
import { broadcastElsewhere, receiveBroadcast } from '../migration/peer-broadcast.js';
import { type CallbackClass, Mux } from '../mux.js';
import { type OptionsShape, type ServerConfig, serverOptions } from '../options.js';
import { ServerContext } from './context.js';
import { HookRunner } from './hook-runner.js';
import { launch, runInProcess } from './launch.js';
import { type Configurable, StartFlow } from './start-flow.js';
import type { ConstructorArgs, ServerState, StartOptions } from './types.js';

/** The parts of one server, which only the class and the WorkerHost it makes reach. */
interface Parts<S> {
  ctx: ServerContext<S>;
  flow: ClientFlow<S>;
  hooks: HookRunner;
  start: StartFlow<S>;
}

/** workerHostOf gives the server as the worker runtime drives it (set by the class's static block). */
let workerHostOf: (server: AnyMultiplexServer) => WorkerHost;

/**
 * MultiplexServer is the base class of a netplex server: override `muxInput` and any other hook.
 *
 * `S` is the type of each client's `state`; `C` the type of the server's own options (declared in
 * `static options` as a zod shape).
 */
export abstract class MultiplexServer<S = Record<string, unknown>, C = Record<never, never>>
  implements HookMethods<S>
{
  /** options declares the server's own options as a zod shape; they share every source and --help. */
  static options: OptionsShape = {};
  /**
   * callbackClasses registers, by name, the classes of the callback objects (mux.setCallbackObject)
   * that move with their handle on a migrating reload; a handle whose object is of no registered
   * class stays in its worker and drains. See CallbackClass.
   */
  static callbackClasses: Readonly<Record<string, CallbackClass>> = {};

  /** args are the constructor's arguments, which win over every other configuration source. */
  readonly args: ConstructorArgs;
  /** config is the resolved, frozen configuration, available from postConfigureHook on. */
  config!: Readonly<ServerConfig & C>;
  /** rest is what the command line held that is not an option (Net::Server leaves it in @ARGV). */
  argv: string[] = [];
  /** logger is the process's root logger (pino), available from postConfigureHook on. */
  logger!: NetplexLogger;
  /** mux is the multiplexer the mux callbacks receive. */
  readonly mux: Mux<S>;
  /** requests counts the connections accepted so far, Net::Server's `requests`. */
  requests = 0;
  /** done resolves once the server has closed, by endloop(), close() or a signal. */
  readonly done: Promise<void>;

  readonly #parts: Parts<S>;

  constructor(args: ConstructorArgs = {}) {
    this.args = args;
    const timeouts = new Timeouts<S>((target, due) => flow.onTimeout(target, due));
    const idle = new IdleTimers<S>((session) => expiry.expired(session));
    this.mux = new Mux<S>({
      clients: () => ctx.clients.values(),
      clientCount: () => ctx.clients.size,
      listeners: () => ctx.listeners,
      setTimeout: (target, seconds) => timeouts.set(target, seconds, true),
      timeoutOf: (target) => timeouts.get(target)?.at,
      setIdleTimeout: (client, seconds) => idle.set(ctx.sessions.get(client), seconds),
      idleTimeoutOf: (client) => {
        const session = ctx.sessions.get(client);
        return session && idle.dueAt(session);
      },
      shutdownRead: (client) => shutdownRead(ctx, flow, client),
      add: (socket, options) => addSocket(ctx, flow, socket, options),
      remove: (client) => removeHandle(ctx, flow, client),
      listen: (server) => listenOn(ctx, flow, server),
      unlisten: (listener) => unlisten(ctx, listener),
      link: (a, b) => (b === undefined ? unlinkHandle(ctx, a) : link(ctx, a, b)),
      linked: (client) => ctx.links.get(client),
      setHandler: (client, object) => setHandler(ctx, flow, client, object),
      handlerOf: (client) => handlerOf(ctx, client),
      endloop: () => {
        void this.close();
      },
      broadcastElsewhere: (data) => broadcastElsewhere(ctx, data),
    });
    const ctx = new ServerContext<S>(this, this.mux, timeouts, idle);
    const flow = new ClientFlow<S>(ctx);
    const expiry = new IdleExpiry<S>(ctx, flow);
    const hooks = new HookRunner(this, (err) => ctx.logHookError(err));
    const ctor = this.constructor as typeof MultiplexServer;
    const start = new StartFlow<S>(ctx, flow, hooks, this as unknown as Configurable, ctor.options);
    this.#parts = { ctx, flow, hooks, start };
    this.done = start.done;
  }

  // ---------------------------------------------------------------- hooks (override any)

  /** configureHook runs first, before any configuration is read (Perl's configure_hook). */
  configureHook(): MaybePromise<void> {}
  /** defaultValues supplies the lowest-precedence configuration (Perl's default_values). */
  defaultValues(): Record<string, unknown> {
    return {};
  }
  /** postConfigureHook runs once `config` and `logger` are set, before binding. */
  postConfigureHook(): MaybePromise<void> {}
  /** restartOpenHook runs in a new worker on reload, before it adopts the listen sockets. */
  restartOpenHook(): MaybePromise<void> {}
  /** postBindHook runs once every port is bound. */
  postBindHook(): MaybePromise<void> {}
  /** preLoopHook runs just before the server starts accepting. */
  preLoopHook(): MaybePromise<void> {}
  /** preServerCloseHook runs when the loop ends, before clients are closed. */
  preServerCloseHook(): MaybePromise<void> {}
  /** postChildCleanupHook runs after the clients are closed. */
  postChildCleanupHook(): MaybePromise<void> {}
  /** restartCloseHook runs in the old worker when a reload retires it. */
  restartCloseHook(): MaybePromise<void> {}
  /** fatalHook runs when the server cannot go on (a failed start); the error is rethrown after it. */
  fatalHook(_error: Error): MaybePromise<void> {}
  /** runDequeue runs every check_for_dequeue seconds. */
  runDequeue(): MaybePromise<void> {}
  /**
   * serverFreeze returns the server-level state that moves to the new worker on a migrating reload
   * (JSON-serializable). The connection counter moves by itself.
   */
  serverFreeze(): MaybePromise<unknown> {
    return undefined;
  }
  /** serverThaw receives, in the new worker, what serverFreeze returned in the old one. */
  serverThaw(_data: unknown): MaybePromise<void> {}
  /**
   * writeToLogHook, when a server defines it, receives every log line instead of log_file or stderr
   * (Net::Server's write_to_log_hook and log_function).
   */
  writeToLogHook?(level: LogLevel, message: string): void;

  /** postAcceptHook runs for each new connection, once its addresses are known. */
  postAcceptHook(_client: Client<S>): MaybePromise<void> {}
  /** allowDenyHook decides, after allow/deny/cidr rules passed, whether a client is served. */
  allowDenyHook(_client: Client<S>): MaybePromise<boolean> {
    return true;
  }
  /** requestDeniedHook runs for a refused client; what it prints is sent before the connection closes. */
  requestDeniedHook(_client: Client<S>): MaybePromise<void> {}
  /** muxConnection runs once for each accepted client, before any muxInput. */
  muxConnection(_mux: Mux<S>, _client: Client<S>): MaybePromise<void> {}
  /** muxInput runs each time input arrives; consume from the left of `input`, leave the rest. */
  abstract muxInput(mux: Mux<S>, client: Client<S>, input: InputBuffer): MaybePromise<void>;
  /**
   * muxOutbufferEmpty, when a server defines it, runs whenever everything written to a stream
   * client so far has been handed to the kernel (IO::Multiplex's mux_outbuffer_empty), in the
   * client's turn with its other hooks: after a write, not only after a write went past the socket's
   * high-water mark as Node's 'drain' does. A server that writes a large reply a piece at a time
   * writes the next piece here. Not defined by default, so that a server without it pays nothing;
   * never for UDP clients, whose datagrams are sent at once.
   */
  muxOutbufferEmpty?(mux: Mux<S>, client: Client<S>): MaybePromise<void>;
  /**
   * muxTimeout runs when a timeout set with `mux.setTimeout` expires, and when a connection has had
   * no input for its idle limit (idle_timeout): then `client.idle` is true, and the connection is
   * closed once muxTimeout returns unless it calls `mux.setIdleTimeout` (or input came meanwhile).
   */
  muxTimeout(_mux: Mux<S>, _target: Client<S> | Listener): MaybePromise<void> {}
  /**
   * muxFreeze returns what moves of a client's state when a reload migrates it (JSON-serializable);
   * by default, `client.state`.
   */
  muxFreeze(_mux: Mux<S>, client: Client<S>): MaybePromise<unknown> {
    return client.state;
  }
  /**
   * muxThaw runs in the new worker for a migrated client, instead of muxConnection (which ran once,
   * in the old worker); by default it restores `client.state` from what muxFreeze returned.
   */
  muxThaw(_mux: Mux<S>, client: Client<S>, state: unknown): MaybePromise<void> {
    client.state = state as S;
  }
  /** muxEof runs once when the client is done writing, with the input muxInput left. */
  muxEof(_mux: Mux<S>, _client: Client<S>, _input: InputBuffer): MaybePromise<void> {}
  /** postProcessRequestHook runs after muxEof, just before muxClose. */
  postProcessRequestHook(_client: Client<S>): MaybePromise<void> {}
  /** muxClose runs once the connection is closed; no more writing to it. */
  muxClose(_mux: Mux<S>, _client: Client<S>): MaybePromise<void> {}

  // ---------------------------------------------------------------- public API

  /** state is where the server is in its life. */
  get state(): ServerState {
    return this.#parts.ctx.state;
  }

  /** listeners are the listen sockets, once bound (Perl's `$self->{server}->{sock}`). */
  get listeners(): readonly Listener[] {
    return this.#parts.ctx.listeners;
  }

  /** help is the --help text: every option, built-in and the class's own, with type, default and description. */
  help(): string {
    const ctor = this.constructor as typeof MultiplexServer;
    return formatHelp({ ...serverOptions, ...ctor.options }, { usage: `${ctor.name} [--key=value ...]` });
  }

  /** addresses lists where the server listens: the real ports when the specs asked for port 0. */
  addresses(): ListenerAddress[] {
    return this.#parts.ctx.listeners
      .map((l) => l.address())
      .filter((a): a is ListenerAddress => a !== undefined);
  }

  /** log writes a message at a Net::Server level: 0 err, 1 warning, 2 notice, 3 info, 4 debug. */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    this.#parts.ctx.log(level, message, fields);
  }

  /**
   * run starts the server in this process and serves until it is stopped: the command line is read
   * as Net::Server reads it, SIGINT/SIGTERM/SIGQUIT stop it.
   */
  static async run<T extends AnyMultiplexServer>(
    this: new (
      args?: ConstructorArgs,
    ) => T,
    runArgs: Record<string, unknown> = {},
  ): Promise<T> {
    const server = new this();
    await server.run(runArgs);
    return server;
  }

  /**
   * run is the instance form of `MyServer.run()`. Under the supervisor (a forked worker) it serves
   * the handles the supervisor passes; started directly, it hands the process to the supervisor
   * when @netplex/supervisor is installed, and otherwise serves in this process.
   */
  run(runArgs: Record<string, unknown> = {}): Promise<void> {
    return launch(this, () => workerHostOf(this), runArgs);
  }

  /** runInProcess serves in this process, without a supervisor: SIGINT, SIGTERM and SIGQUIT stop it. */
  runInProcess(runArgs: Record<string, unknown> = {}): Promise<void> {
    return runInProcess(this, runArgs);
  }

  /**
   * start runs the process flow up to the loop: configure, bind, the hooks around them, then starts
   * accepting. It resolves once every listener accepts; `done` resolves when the server stops.
   */
  async start(options: StartOptions = {}): Promise<this> {
    const { ctx, start } = this.#parts;
    if (ctx.state !== 'new') throw new ServerClosedError(`start() in state ${ctx.state}`);
    await start.start(options);
    return this;
  }

  /**
   * close stops the server: listeners stop accepting, preServerCloseHook runs, clients get their
   * queued output and are closed, postChildCleanupHook runs. Idempotent; resolves when done.
   */
  close(): Promise<void> {
    return this.#parts.start.close();
  }

  /** status reports live figures: connections open now, connections accepted so far. */
  status(): WorkerStatus {
    const { ctx } = this.#parts;
    return { connections: ctx.sessions.size, requests: this.requests, migratedIn: ctx.migratedIn };
  }

  static {
    workerHostOf = (server) => {
      const { ctx, flow, hooks, start } = server.#parts;
      return {
        done: server.done,
        drainMs: () => (ctx.config?.drain_timeout ?? 0) * 1000,
        log: (level, message) => ctx.log(level, message),
        flushLog: () => ctx.logger?.flush(),
        reopenLogs: () => ctx.logger?.reopen(),
        start: (options) => server.start(options),
        addresses: () => server.addresses(),
        status: () => server.status(),
        observeHooks: (fn) => hooks.observe(fn),
        close: () => start.close(),
        retire: (drainMs, restart, stopped) => start.retire(drainMs, restart, stopped),
        migrateOut: (channel, observe) => migrateOut(ctx, flow, channel, observe),
        resumeAccepting: (handles) => resumeAccepting(ctx, flow, handles),
        thawServer: (data) => thawServer(ctx, flow, data),
        adoptConnection: (frozen, source, hold) => adoptConnection(ctx, flow, frozen, source, hold),
        releaseAdopted: (id, output, end, timeoutMs) => releaseAdopted(ctx, id, output, end, timeoutMs),
        deliverToAdopted: (id, output, end, last, timeoutMs) =>
          deliverToAdopted(ctx, id, output, end, last, timeoutMs),
        endAdoption: () => endAdoption(ctx),
        setPeerBroadcast: (send) => {
          ctx.peerBroadcast = send;
        },
        receiveBroadcast: (data, skip) => receiveBroadcast(ctx, data, skip),
      };
    };
  }
}

/** AnyMultiplexServer is a server of any state and option types, for code that takes every server. */
// biome-ignore lint/suspicious/noExplicitAny: the state and option types are the caller's, unknown here.
export type AnyMultiplexServer = MultiplexServer<any, any>;

/** ServerOptionsOf infers a server class's config type from its `static options` shape. */
export type ServerOptionsOf<O extends OptionsShape> = ServerConfig & z.infer<z.ZodObject<O>>;

/**
 * workerHost gives the server as the worker runtime drives it: for netplex's own worker runtime
 * and tests (exported by `@netplex/core/internal` only).
 */
export function workerHost(server: AnyMultiplexServer): WorkerHost {
  return workerHostOf(server);
}
