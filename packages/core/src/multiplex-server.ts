/**
 * multiplex-server — the class a server author extends: Net::Server::Multiplex's process flow and
 * client flow, with the hooks called in the seed's order.
 *
 * One process serves many connections. Hooks may return promises: per connection, calls stay in
 * order (input arriving while a hook is pending is delivered after it), while every other
 * connection goes on being served. A hook that throws or rejects is logged with the client's
 * address and costs that one connection, never the server.
 */
import type dgram from 'node:dgram';
import net from 'node:net';
import type { z } from 'zod';
import { createAccessControl, doubleReverseLookup, unmapIPv4 } from './access.js';
import { Client, type ClientInfo, type ConnectionEnd, type Transport } from './client.js';
import { loadConfig } from './config.js';
import { formatUserError } from './error-format.js';
import { HookError, isConfigurationError, LimitError, MultiplexError, ServerClosedError } from './errors.js';
import { formatHelp } from './help.js';
import { type ClientHookName, isPromiseLike, type ProcessHookName } from './hooks.js';
import type { InputBuffer } from './input.js';
import { inProcessEnv, workerEnv } from './ipc/globals.js';
import type { FrozenConnection, FrozenServer, WorkerStatus } from './ipc/messages.js';
import { runWorker } from './ipc/worker.js';
import type { WorkerHost } from './ipc/worker-host.js';
import {
  adoptListener,
  bindListener,
  closeListener,
  Listener,
  type ListenerAddress,
  startAccepting,
} from './listeners.js';
import { createLogger, type LogLevel, type NetplexLogger } from './logger.js';
import type { MigrationChannel, MigrationCounts, PeerBroadcast } from './migration/types.js';
import { Mux, type MuxTarget } from './mux.js';
import { type OptionsShape, type ServerConfig, serverOptions } from './options.js';
import { type BindTarget, pairPortSpecs, resolveBindTargets } from './port-spec.js';
import type { ConstructorArgs, ServerState, StartOptions } from './server/types.js';
import { findSupervisor } from './supervise.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * A queued step of one connection: the common events as names (no closure per event, which keeps
 * an idle connection small), anything else as a function.
 */
type Step = 'input' | 'eof' | 'close' | (() => unknown);

interface Session<S> {
  client: Client<S>;
  socket: net.Socket | undefined;
  busy: boolean;
  queue: Step[];
  inputQueued: boolean;
  eofDone: boolean;
  failed: boolean;
  /** The hook last called for this connection, named when it fails. */
  hook: ClientHookName;
  /** True once muxClose has run; `onClosed` (made only when someone waits) is told then. */
  done: boolean;
  onClosed: Array<() => void> | undefined;
  /** Told when the connection has no hook running or queued (a migration waits for that). */
  onSettled: (() => void) | undefined;
}

/** Where a socket keeps its session, so that one set of event handlers serves every socket. */
const kSession = Symbol('netplex.session');
type SessionSocket<S> = net.Socket & { [kSession]: Session<S> };

/** SocketTransport is a Client's way to its stream socket (methods on a prototype: no closures per connection). */
class SocketTransport implements Transport {
  constructor(readonly socket: net.Socket) {}
  write(data: Buffer): void {
    this.socket.write(data);
  }
  end(): void {
    this.socket.end();
  }
  close(): void {
    // Flush, then close both directions even if the peer never ends its side.
    const socket = this.socket;
    if (socket.writableFinished) socket.destroy();
    else {
      socket.once('finish', () => socket.destroy());
      socket.end();
    }
  }
  destroy(): void {
    this.socket.destroy();
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
}

/**
 * How many connections a migration has on their way at once (sent, not yet taken by the new
 * worker): between these bounds, as many as the new worker takes in MIGRATION_PAUSE_MS. Node passes
 * one socket handle per IPC round trip, which under load takes an event-loop turn of each worker:
 * a connection's pause is then about the window times that turn.
 */
const MIGRATION_WINDOW_MIN = 2;
const MIGRATION_WINDOW_MAX = 64;
const MIGRATION_PAUSE_MS = 20;

/** How long a migration waits for a connection's hook in progress to settle before it lets it drain. */
const SETTLE_MS = 2_000;

/** How long a migration waits for a connection's output to reach the kernel before it lets it drain. */
const FLUSH_MS = 2_000;

/** A parked connection's errors (a reset while it waits) are its end: it is skipped when served. */
function ignoreError(): void {}

/** How long close() lets clients flush their output before it drops them. */
const CLOSE_FLUSH_MS = 5_000;

/**
 * MultiplexServer is the base class of a netplex server: override `muxInput` and any other hook.
 *
 * `S` is the type of each client's `state`; `C` the type of the server's own options (declared in
 * `static options` as a zod shape).
 */
export abstract class MultiplexServer<S = Record<string, unknown>, C = Record<never, never>> {
  /** options declares the server's own options as a zod shape; they share every source and --help. */
  static options: OptionsShape = {};

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

  #state: ServerState = 'new';
  #listeners: Listener[] = [];
  readonly #clients = new Set<Client<S>>();
  readonly #sessions = new Map<Client<S>, Session<S>>();
  /** Connections that migrated in, by id, for output the old worker writes to them after sending them. */
  readonly #adopted = new Map<number, Client<S>>();
  /** While another worker has clients too (a migration, a drain): where a broadcast goes on to it. */
  #peerBroadcast: PeerBroadcast | undefined;
  /** Armed timeouts; `timer` is undefined for one that came due while its connection was migrating. */
  readonly #timers = new Map<MuxTarget<S>, { timer: NodeJS.Timeout | undefined; at: number }>();
  #dequeueTimer: NodeJS.Timeout | undefined;
  #access: ReturnType<typeof createAccessControl> | undefined;
  #closing: Promise<void> | undefined;
  #onHookChange: ((hook: ProcessHookName | undefined) => void) | undefined;
  /** The bounds, read once from the configuration (they are checked on every read and write). */
  #maxInput = 0;
  #maxOutput = 0;
  /** Called when the last connection closes, while draining. */
  #onIdle: (() => void) | undefined;
  /**
   * Connections accepted before they can be served: while the start-up hooks run (the loop has not
   * started), and while waiting for a migrating server's counter (see StartOptions.migrating).
   * They are served in order once both are over, and closed, counted in one log line, if the start
   * fails.
   */
  #parked: Array<{ socket: net.Socket; listener: Listener }> | undefined;
  /** True until thawServer() brings the counter of the server this one replaces. */
  #awaitingCounter = false;
  #resolveDone!: () => void;
  /** done resolves once the server has closed, by endloop(), close() or a signal. */
  readonly done: Promise<void> = new Promise((resolve) => {
    this.#resolveDone = resolve;
  });

  /** One checkOutput for every client (a closure per client would cost memory per connection). */
  readonly #checkOutputOf = (client: Client<S>) => this.#checkOutput(client);
  /** One set of socket event handlers for every connection; each socket carries its session. */
  readonly #socketHandlers = this.#makeSocketHandlers();

  constructor(args: ConstructorArgs = {}) {
    this.args = args;
    this.mux = new Mux<S>({
      clients: () => this.#clients.values(),
      clientCount: () => this.#clients.size,
      listeners: () => this.#listeners,
      setTimeout: (target, seconds) => this.#setTimeout(target, seconds),
      timeoutOf: (target) => this.#timers.get(target)?.at,
      endloop: () => {
        void this.close();
      },
      broadcastElsewhere: (data) => this.#broadcastElsewhere(data),
    });
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
  /** muxTimeout runs when a timeout set with `mux.setTimeout` expires. */
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
    return this.#state;
  }

  /** listeners are the listen sockets, once bound (Perl's `$self->{server}->{sock}`). */
  get listeners(): readonly Listener[] {
    return this.#listeners;
  }

  /** help is the --help text: every option, built-in and the class's own, with type, default and description. */
  help(): string {
    const ctor = this.constructor as typeof MultiplexServer;
    return formatHelp({ ...serverOptions, ...ctor.options }, { usage: `${ctor.name} [--key=value ...]` });
  }

  /** addresses lists where the server listens: the real ports when the specs asked for port 0. */
  addresses(): ListenerAddress[] {
    return this.#listeners.map((l) => l.address()).filter((a): a is ListenerAddress => a !== undefined);
  }

  /** log writes a message at a Net::Server level: 0 err, 1 warning, 2 notice, 3 info, 4 debug. */
  log(level: 0 | 1 | 2 | 3 | 4, message: string, fields?: Record<string, unknown>): void {
    if (this.logger) this.logger.log(level, message, fields);
    else process.stderr.write(`${message}\n`);
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
  async run(runArgs: Record<string, unknown> = {}): Promise<void> {
    if (process.env[workerEnv] === '1' && process.send) return runWorker(this.#workerHost(), runArgs);
    const argv = process.argv.slice(2);
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${this.help()}\n`);
      return;
    }
    if (process.env[inProcessEnv] !== '1') {
      const supervise = await findSupervisor();
      if (supervise) return supervise(this, runArgs);
    }
    return this.runInProcess(runArgs);
  }

  /** runInProcess serves in this process, without a supervisor: SIGINT, SIGTERM and SIGQUIT stop it. */
  async runInProcess(runArgs: Record<string, unknown> = {}): Promise<void> {
    const onSignal = (signal: NodeJS.Signals) => {
      this.log(2, `received SIG${signal.replace(/^SIG/, '')}, shutting down`);
      void this.close();
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT'];
    for (const s of signals) process.on(s, onSignal);
    try {
      await this.start({ argv: process.argv.slice(2), run: runArgs });
      await this.done;
    } catch (err) {
      // A command-line user gets one line, not a stack: the reason, and exit 2 for bad configuration.
      process.stderr.write(`${(err as Error).message}\n`);
      process.exitCode = isConfigurationError(err) ? 2 : 1;
    } finally {
      for (const s of signals) process.off(s, onSignal);
    }
  }

  /**
   * start runs the process flow up to the loop: configure, bind, the hooks around them, then starts
   * accepting. It resolves once every listener accepts; `done` resolves when the server stops.
   */
  async start(options: StartOptions = {}): Promise<this> {
    if (this.#state !== 'new') throw new ServerClosedError(`start() in state ${this.#state}`);
    this.#state = 'starting';
    this.#parked = [];
    this.#awaitingCounter = options.migrating ?? false;
    try {
      await this.#hook('configureHook');
      this.#configure(options);
      await this.#hook('postConfigureHook');
      const targets = options.targets ?? (await this.#preBind());
      this.#listeners = targets.map((t) => new Listener(t));
      if (options.restarting) await this.#hook('restartOpenHook');
      await this.#bind(options.handles, options.deferAccept ?? false);
      await this.#hook('postBindHook');
      this.#postBind();
      await this.#hook('preLoopHook');
      await this.#startAccepting();
    } catch (err) {
      await this.#fatal(err);
      throw err;
    }
    this.#loop();
    return this;
  }

  /**
   * close stops the server: listeners stop accepting, preServerCloseHook runs, clients get their
   * queued output and are closed, postChildCleanupHook runs. Idempotent; resolves when done.
   */
  close(): Promise<void> {
    // A drain in progress (retire) ends now: the rest of the shutdown goes on as close() would.
    this.#onIdle?.();
    this.#closing ??= this.#shutdown({ drainMs: 0, restart: false });
    return this.#closing;
  }

  /**
   * retire stops accepting, runs restartCloseHook (unless `restart` is false), serves the live
   * connections until they close or `drainMs` passes, then closes as close() does.
   */
  retire(drainMs: number, options: { restart?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#shutdown({ drainMs, restart: options.restart ?? true });
    return this.#closing;
  }

  /** status reports live figures: connections open now, connections accepted so far. */
  status(): WorkerStatus {
    return { connections: this.#sessions.size, requests: this.requests };
  }

  /** workerHost is this server as the worker runtime drives it. */
  #workerHost(): WorkerHost {
    return {
      done: this.done,
      drainMs: () => (this.config?.drain_timeout ?? 0) * 1000,
      log: (level, message) => this.log(level, message),
      flushLog: () => this.logger?.flush(),
      reopenLogs: () => this.logger?.reopen(),
      start: (options) => this.start(options),
      addresses: () => this.addresses(),
      status: () => this.status(),
      observeHooks: (fn) => this.observeHooks(fn),
      close: () => this.close(),
      retire: (drainMs, restart) => this.retire(drainMs, { restart }),
      migrateOut: (channel) => this.migrateOut(channel),
      resumeAccepting: (handles) => this.resumeAccepting(handles),
      thawServer: (data) => this.thawServer(data),
      adoptConnection: (frozen, handle) => this.adoptConnection(frozen, handle),
      releaseAdopted: (id, output, end) => this.releaseAdopted(id, output, end),
      endAdoption: () => this.endAdoption(),
      setPeerBroadcast: (send) => this.setPeerBroadcast(send),
      receiveBroadcast: (data, skip) => this.receiveBroadcast(data, skip),
    };
  }

  // ---------------------------------------------------------------- process flow

  #configure(options: StartOptions): void {
    const ctor = this.constructor as typeof MultiplexServer;
    const shape = { ...serverOptions, ...ctor.options } as OptionsShape;
    const { config, rest } = loadConfig(shape, {
      constructor: this.args,
      argv: options.argv ?? [],
      run: options.run ?? {},
      defaults: this.defaultValues(),
      cwd: options.cwd ?? process.cwd(),
    });
    this.config = config as unknown as Readonly<ServerConfig & C>;
    this.argv = rest;
    this.logger = createLogger({
      log_level: this.config.log_level,
      log_file: this.config.log_file,
      destination: options.logDestination,
      logFunction: this.writeToLogHook
        ? (level, message) => this.writeToLogHook?.(level, message)
        : undefined,
    });
    this.#access = createAccessControl(this.config);
    this.#maxInput = this.config.max_input_buffer;
    this.#maxOutput = this.config.max_output_buffer;
  }

  async #preBind(): Promise<BindTarget[]> {
    return resolveBindTargets(pairPortSpecs(this.config));
  }

  /** bind binds each listener, or adopts the supervisor's handle for it (at once, or with `defer` at the loop). */
  async #bind(handles: ReadonlyMap<string, unknown> | undefined, defer: boolean): Promise<void> {
    for (const listener of this.#listeners) {
      const handle = handles?.get(listener.target.key);
      if (handle !== undefined) {
        await adoptListener(listener, handle, {
          onConnection: (s) => this.#onConnection(s, listener),
          backlog: this.config.listen,
          defer,
        });
        this.log(3, `Listening on ${listener.label} (bound by the supervisor)`, { listener: listener.label });
        continue;
      }
      await bindListener(listener, {
        backlog: this.config.listen,
        onConnection: (s) => this.#onConnection(s, listener),
        onDatagram: (msg, rinfo) => this.#onDatagram(msg, rinfo, listener),
        // Under the supervisor, udp ports are the worker's own; a new worker shares them with the old.
        reuseAddr: handles !== undefined,
      });
      this.log(2, `Binding to ${listener.label}`, { listener: listener.label });
    }
  }

  /** Net::Server's post_bind: drop privileges when started as root with user/group set. */
  #postBind(): void {
    const { user, group } = this.config;
    if (process.getuid?.() !== 0 || (user === undefined && group === undefined)) return;
    if (group !== undefined) process.setgid?.(/^\d+$/.test(group) ? Number(group) : group);
    if (user !== undefined) process.setuid?.(/^\d+$/.test(user) ? Number(user) : user);
    this.log(2, `running as user ${user ?? '-'} group ${group ?? '-'}`);
  }

  /** startAccepting makes the listeners whose adoption was deferred (see StartOptions.deferAccept) accept. */
  async #startAccepting(): Promise<void> {
    for (const listener of this.#listeners)
      await startAccepting(listener, {
        onConnection: (s) => this.#onConnection(s, listener),
        backlog: this.config.listen,
      });
  }

  #loop(): void {
    this.#state = 'running';
    if (!this.#awaitingCounter) this.#unpark();
    const every = this.config.check_for_dequeue;
    if (every !== undefined) {
      this.#dequeueTimer = setInterval(() => {
        this.#hook('runDequeue').catch((err) => this.#logHookError(err));
      }, every * 1000);
    }
  }

  async #shutdown(opts: { drainMs: number; restart: boolean }): Promise<void> {
    if (this.#state === 'new' || this.#state === 'closed') {
      this.#state = 'closed';
      this.#resolveDone();
      return;
    }
    this.#state = 'closing';
    if (this.#dequeueTimer) clearInterval(this.#dequeueTimer);
    await Promise.all(this.#listeners.map((l) => closeListener(l)));
    this.#closeParked('the server is closing');
    if (opts.restart) await this.#hookLogged('restartCloseHook');
    if (opts.drainMs > 0 && this.#sessions.size > 0) {
      this.log(3, `draining ${this.#sessions.size} connections for up to ${opts.drainMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.drainMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#onIdle = undefined;
    }
    await this.#hookLogged('preServerCloseHook');
    await this.#closeClients(CLOSE_FLUSH_MS);
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await this.#hookLogged('postChildCleanupHook');
    this.log(2, 'Server closing!');
    this.#state = 'closed';
    this.logger?.flush();
    this.#resolveDone();
  }

  /** closeClients closes every connection, giving each up to `ms` to flush before it is dropped. */
  async #closeClients(ms: number): Promise<void> {
    const sessions = [...this.#sessions.values()];
    if (sessions.length === 0) return;
    for (const s of sessions) s.client.close();
    const timer = setTimeout(() => {
      for (const s of sessions) s.client.destroy();
    }, ms);
    // A close hook that never settles must not hold the server open forever: bounded at twice `ms`.
    let giveUp: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(sessions.map((s) => this.#sessionClosed(s))),
      new Promise<void>((resolve) => {
        giveUp = setTimeout(() => {
          this.log(
            1,
            `${sessions.filter((s) => s.client.phase !== 'closed').length} connections did not finish closing`,
          );
          resolve();
        }, 2 * ms);
      }),
    ]);
    clearTimeout(giveUp);
    clearTimeout(timer);
  }

  async #fatal(err: unknown): Promise<void> {
    this.#state = 'closed';
    for (const l of this.#listeners) await closeListener(l).catch(() => {});
    this.#closeParked('the start failed');
    const error = err instanceof Error ? err : new Error(String(err));
    // Under the supervisor, the supervisor reports a failed start (once, for the whole reload).
    if (process.env[workerEnv] !== '1' && this.logger)
      this.log(0, `fatal: ${formatUserError(error)}`, { err: error });
    try {
      await this.fatalHook(error);
    } catch (hookErr) {
      this.#logHookError(new HookError('fatalHook', hookErr));
    }
    this.#resolveDone();
  }

  async #hook(name: ProcessHookName): Promise<void> {
    this.#onHookChange?.(name);
    try {
      await (this[name] as () => MaybePromise<void>)();
    } catch (err) {
      throw err instanceof MultiplexError ? err : new HookError(name, err);
    } finally {
      this.#onHookChange?.(undefined);
    }
  }

  /**
   * observeHooks calls `fn` as each server-wide hook begins (with its name) and ends (undefined);
   * the worker reports these while starting, so that a start that hangs names its hook.
   * @internal
   */
  observeHooks(fn: ((hook: ProcessHookName | undefined) => void) | undefined): void {
    this.#onHookChange = fn;
  }

  async #hookLogged(name: ProcessHookName): Promise<void> {
    await this.#hook(name).catch((err) => this.#logHookError(err));
  }

  #logHookError(err: unknown, client?: Client<S>): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const fields: Record<string, unknown> = { err: error };
    if (client) Object.assign(fields, { conn: client.id, peer: client.peeraddr, peerport: client.peerport });
    this.log(0, client ? `${error.message} (client ${client})` : error.message, fields);
  }

  // ---------------------------------------------------------------- client flow

  #onConnection(socket: net.Socket, listener: Listener): void {
    const parked = this.#parked;
    if (parked === undefined && this.#state !== 'running') {
      socket.destroy();
      return;
    }
    const max = this.config.max_connections;
    if (max > 0 && this.#sessions.size + (parked?.length ?? 0) >= max) {
      this.log(1, `max_connections (${max}) reached: refusing ${socket.remoteAddress}`, {
        peer: socket.remoteAddress,
      });
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
    this.requests++;
    const isUnix = listener.proto === 'unix';
    // A listener bound to one address spares each connection a getsockname() call.
    const local = listener.localAddress;
    const session = this.#createSession(socket, {
      id: this.requests,
      proto: isUnix ? 'unix' : 'tcp',
      peeraddr: isUnix ? '' : unmapIPv4(socket.remoteAddress ?? ''),
      peerport: isUnix ? 0 : (socket.remotePort ?? 0),
      sockaddr: isUnix ? listener.label : unmapIPv4(local?.address ?? socket.localAddress ?? ''),
      sockport: isUnix ? 0 : (local?.port ?? socket.localPort ?? 0),
      listener: listener.label,
    });
    const { client } = session;
    if (this.config.log_level >= 3)
      this.log(3, `CONNECT ${client.proto.toUpperCase()} Peer: "[${client.peeraddr}]:${client.peerport}"`, {
        conn: client.id,
        peer: client.peeraddr,
        peerport: client.peerport,
        listener: listener.label,
      });
    this.#enqueue(session, () => this.#runAccept(session));
  }

  /** createSession makes the client of a stream socket and wires the socket's events to the client flow. */
  #createSession(socket: net.Socket, info: ClientInfo): Session<S> {
    const client = new Client<S>(info, new SocketTransport(socket), this.logger.pino, this.#checkOutputOf);
    const session: Session<S> = {
      client,
      socket,
      busy: false,
      queue: [],
      inputQueued: false,
      eofDone: false,
      failed: false,
      hook: 'postAcceptHook',
      done: false,
      onClosed: undefined,
      onSettled: undefined,
    };
    this.#sessions.set(client, session);
    (socket as SessionSocket<S>)[kSession] = session;
    const on = this.#socketHandlers;
    socket.on('data', on.data);
    socket.on('end', on.end);
    socket.on('error', on.error);
    socket.on('close', on.close);
    return session;
  }

  #makeSocketHandlers() {
    const server = this;
    return {
      data(this: net.Socket, chunk: Buffer) {
        server.#onData((this as SessionSocket<S>)[kSession], chunk);
      },
      end(this: net.Socket) {
        server.#enqueue((this as SessionSocket<S>)[kSession], 'eof');
      },
      error(this: net.Socket, err: NodeJS.ErrnoException) {
        const { client } = (this as SessionSocket<S>)[kSession];
        server.log(3, `client ${client}: ${err.code ?? err.message}`, {
          conn: client.id,
          err: err.code ?? err.message,
        });
      },
      close(this: net.Socket) {
        server.#enqueue((this as SessionSocket<S>)[kSession], 'close');
      },
    };
  }

  /** sessionClosed resolves once a connection's muxClose has run. */
  #sessionClosed(session: Session<S>): Promise<void> {
    if (session.done) return Promise.resolve();
    return new Promise((resolve) => {
      session.onClosed ??= [];
      session.onClosed.push(resolve);
    });
  }

  #markClosed(session: Session<S>): void {
    session.done = true;
    const waiters = session.onClosed;
    session.onClosed = undefined;
    if (waiters) for (const w of waiters) w();
  }

  #onData(session: Session<S>, chunk: Buffer): void {
    const { client } = session;
    if (client.phase === 'closed' || session.failed) return;
    client.input.append(chunk);
    // Being frozen for a migration: the input moves with the connection.
    if (client.phase === 'migrating') return;
    if (session.busy || session.queue.length > 0) {
      if (client.input.length > this.#maxInput) {
        this.#overLimit(session, 'max_input_buffer', `${client.input.length} bytes of input not consumed`);
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
    const result = this.muxInput(this.mux, client, client.input);
    if (isPromiseLike(result)) return Promise.resolve(result).then(() => this.#checkInput(session));
    this.#checkInput(session);
    return undefined;
  }

  #checkInput(session: Session<S>): void {
    const { client } = session;
    if (client.input.length > this.#maxInput) {
      this.#overLimit(session, 'max_input_buffer', `${client.input.length} bytes of input not consumed`);
    }
  }

  #checkOutput(client: Client<S>): void {
    if (client.outputLength > this.#maxOutput) {
      const session = this.#sessions.get(client);
      if (session)
        this.#overLimit(session, 'max_output_buffer', `${client.outputLength} bytes of output not sent`);
    }
  }

  #overLimit(session: Session<S>, limit: string, detail: string): void {
    if (session.failed) return;
    session.failed = true;
    const err = new LimitError(limit, detail);
    this.log(1, `client ${session.client}: ${err.message}; disconnecting`, {
      conn: session.client.id,
      peer: session.client.peeraddr,
      limit,
    });
    session.client.input.clear();
    session.client.destroy();
  }

  /**
   * runAccept is the client flow up to muxConnection. It stays synchronous while the hooks do (no
   * promise per connection on the accept path) and waits only for a hook that returns a promise.
   */
  #runAccept(session: Session<S>): unknown {
    const { client } = session;
    const cfg = this.config;
    // Net::Server's get_client_info: the peer's host name is known before post_accept_hook.
    if (client.proto !== 'unix' && (cfg.reverse_lookups !== false || cfg.double_reverse_lookups !== false)) {
      return this.#reverseLookup(client).then((verified) => this.#postAccept(session, verified));
    }
    return this.#postAccept(session, true);
  }

  #postAccept(session: Session<S>, verified: boolean): unknown {
    return then(this.postAcceptHook(session.client), () => this.#decide(session, verified));
  }

  #decide(session: Session<S>, verified: boolean): unknown {
    const { client } = session;
    if (!verified || !this.#allowDeny(client)) return this.#deny(session);
    session.hook = 'allowDenyHook';
    return then(this.allowDenyHook(client), (ok) =>
      ok !== false ? this.#admit(session) : this.#deny(session),
    );
  }

  #deny(session: Session<S>): unknown {
    const { client } = session;
    if (client.phase !== 'accepting') return undefined; // closed while deciding
    session.hook = 'requestDeniedHook';
    return then(this.requestDeniedHook(client), () => {
      client.input.clear();
      client.close();
    });
  }

  #admit(session: Session<S>): unknown {
    const { client } = session;
    if (client.phase !== 'accepting') return undefined; // closed while deciding
    client.accepted = true;
    client.phase = 'connected';
    this.#clients.add(client);
    session.hook = 'muxConnection';
    return then(this.muxConnection(this.mux, client), () => {
      if (client.input.length > 0 && !session.inputQueued) {
        session.inputQueued = true;
        session.queue.push('input');
      }
    });
  }

  /**
   * reverseLookup sets peerhost when reverse_lookups is on, without blocking other clients; it
   * returns false when double_reverse_lookups is on and the name does not resolve back.
   */
  async #reverseLookup(client: Client<S>): Promise<boolean> {
    const cfg = this.config;
    if (client.proto === 'unix') return true;
    if (cfg.reverse_lookups === false && cfg.double_reverse_lookups === false) return true;
    const double =
      cfg.double_reverse_lookups !== false ||
      (typeof cfg.reverse_lookups === 'string' && cfg.reverse_lookups.startsWith('double'));
    const result = await doubleReverseLookup(client.peeraddr, { verify: double });
    client.peerhost = result.peerhost;
    if (double && !result.verified) {
      this.log(3, `Double reverse lookup failed for ${client.peeraddr}: ${result.reason}`, {
        conn: client.id,
        peer: client.peeraddr,
      });
      return false;
    }
    return true;
  }

  /** allowDeny applies allow, deny, cidr_allow and cidr_deny (Net::Server's allow_deny). */
  #allowDeny(client: Client<S>): boolean {
    if (client.proto === 'unix') return true;
    const verdict = this.#access!.check(client);
    if (!verdict.allowed) {
      this.log(2, `Denied client ${client}: ${verdict.reason}`, { conn: client.id, peer: client.peeraddr });
    }
    return verdict.allowed;
  }

  async #runEof(session: Session<S>): Promise<void> {
    const { client } = session;
    if (session.eofDone) return;
    session.eofDone = true;
    if (client.phase === 'connected') client.phase = 'eof';
    session.hook = 'muxEof';
    if (!session.failed) await this.muxEof(this.mux, client, client.input);
    // As Net::Server::Multiplex does after mux_eof: the client is done writing, so finish ours.
    client.shutdown();
  }

  async #runClose(session: Session<S>): Promise<void> {
    const { client } = session;
    if (client.phase === 'closed') return;
    if (!session.eofDone && !session.failed) {
      session.eofDone = true;
      await this.#isolated(session, 'muxEof', () => this.muxEof(this.mux, client, client.input));
    }
    client.phase = 'closed';
    this.#clients.delete(client);
    this.#sessions.delete(client);
    if (this.#adopted.size > 0) this.#adopted.delete(client.id);
    this.#clearTimeout(client);
    await this.#isolated(session, 'postProcessRequestHook', () => this.postProcessRequestHook(client));
    await this.#isolated(session, 'muxClose', () => this.muxClose(this.mux, client));
    client.input.clear();
    this.#markClosed(session);
    if (this.#sessions.size === 0) this.#onIdle?.();
  }

  /** isolated runs a hook whose failure is logged but does not stop the close sequence. */
  async #isolated(session: Session<S>, hook: ClientHookName, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#logHookError(new HookError(hook, err), session.client);
    }
  }

  #enqueue(session: Session<S>, step: Step): void {
    if (session.busy || session.queue.length > 0) session.queue.push(step);
    else this.#step(session, step);
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
    this.#logHookError(err instanceof MultiplexError ? err : new HookError(session.hook, err), client);
    if (session.failed) return;
    session.failed = true;
    client.input.clear();
    client.destroy();
  }

  // ---------------------------------------------------------------- migration

  /**
   * migrateOut, in the worker a reload replaces, stops accepting and moves every movable connection
   * to the new worker through `channel`: its socket, unread input, output written meanwhile, timeout
   * and state. Each connection goes on being served here until its own turn comes, and only then
   * stops reading; a small, adaptive window of connections is on their way (sent, not yet taken) at
   * once, so that a client's pause is its own handover. Exactly once: reading stops before the
   * input is taken, and the socket's own output reaches the kernel before the socket moves. A
   * connection the new worker does not take stays here and goes on being served. What does not
   * move is left for retire() to drain.
   */
  async migrateOut(channel: MigrationChannel): Promise<MigrationCounts> {
    const began = Date.now();
    if (this.#state !== 'running') throw new ServerClosedError(`migrateOut() in state ${this.#state}`);
    this.#state = 'migrating';
    await Promise.all(this.#listeners.map((l) => closeListener(l)));
    await channel.state({ requests: this.requests, custom: await this.serverFreeze() });
    const counts: MigrationCounts = { migrated: 0, drained: 0, failed: 0, ms: 0 };
    const sessions = [...this.#sessions.values()];
    await new Promise<void>((done) => {
      let next = 0;
      /** Connections that were made ready (see below) when their turn came: they go next. */
      const readied: Array<Session<S>> = [];
      /** Connections still served while a hook settles or output flushes (not stopped: not counted). */
      let readying = 0;
      /** Connections stopped and not yet taken by the new worker: bounded by the window. */
      let moving = 0;
      // The window adapts to how fast connections are taken (averaged per connection): as many on
      // their way as are taken within MIGRATION_PAUSE_MS, so that a connection waits about that long
      // behind the others, whether moving is fast (idle workers) or slow (busy ones).
      let window = MIGRATION_WINDOW_MIN;
      let perConnMs: number | undefined;
      let lastTaken = 0;
      const taken = () => {
        const now = performance.now();
        if (lastTaken > 0) {
          const dt = now - lastTaken;
          perConnMs = perConnMs === undefined ? dt : perConnMs + (dt - perConnMs) / 16;
          window = Math.max(
            MIGRATION_WINDOW_MIN,
            Math.min(MIGRATION_WINDOW_MAX, Math.floor(MIGRATION_PAUSE_MS / Math.max(perConnMs, 0.001))),
          );
        }
        lastTaken = now;
      };
      const send = (session: Session<S>, frozen: FrozenConnection) => {
        void this.#handOver(session, frozen, channel).then((ok) => {
          moving--;
          if (ok) {
            counts.migrated++;
            taken();
          } else counts.failed++;
          pump();
        });
      };
      const freeze = (session: Session<S>) => {
        moving++;
        const frozen = this.#freeze(session);
        if (frozen === undefined) {
          moving--;
          counts.drained++;
        } else if (isPromiseLike(frozen)) {
          void frozen.then((f) => {
            if (f) send(session, f);
            else {
              moving--;
              counts.drained++;
              pump();
            }
          });
        } else send(session, frozen);
      };
      const pump = () => {
        while (moving < window && (readied.length > 0 || next < sessions.length)) {
          const again = readied.length > 0;
          const session = again ? readied.shift()! : sessions[next++]!;
          // Closed before its turn: nothing to move or drain.
          if (session.client.phase === 'closed') continue;
          const ready = again ? undefined : this.#ready(session);
          if (ready) {
            readying++;
            void ready.then(() => {
              readying--;
              readied.push(session);
              pump();
            });
            continue;
          }
          freeze(session);
        }
        if (next >= sessions.length && readied.length === 0 && readying === 0 && moving === 0) done();
      };
      pump();
    });
    counts.ms = Date.now() - began;
    return counts;
  }

  /** handOver sends a frozen connection; true once the new worker has it (this copy is released). */
  async #handOver(
    session: Session<S>,
    frozen: FrozenConnection,
    channel: MigrationChannel,
  ): Promise<boolean> {
    let ok = false;
    try {
      ok = await channel.conn(frozen, (session.socket as unknown as { _handle: unknown })._handle);
    } catch {
      ok = false;
    }
    if (!ok) {
      this.#unfreeze(session);
      return false;
    }
    // Output written while the connection was on its way follows it, ahead of the new worker's, and
    // so does a close (or shutdown, or destroy) asked for meanwhile.
    channel.released(frozen.id, session.client.takeHeldOutput(), session.client.takeEndWhileMoving());
    this.#release(session);
    return true;
  }

  /**
   * resumeAccepting, after a migration the new worker could not finish, makes this worker accept
   * again on handles the supervisor passed anew.
   */
  async resumeAccepting(handles: ReadonlyMap<string, unknown>): Promise<void> {
    for (const listener of this.#listeners) {
      const handle = handles.get(listener.target.key);
      if (handle !== undefined) {
        await adoptListener(listener, handle, {
          onConnection: (s) => this.#onConnection(s, listener),
          backlog: this.config.listen,
        });
      }
    }
    this.#state = 'running';
  }

  /** thawServer, in the new worker, takes the old worker's server-level state and numbers the waiting connections. */
  async thawServer(data: FrozenServer | null): Promise<void> {
    if (data) {
      this.requests = Math.max(this.requests, data.requests);
      try {
        await this.serverThaw(data.custom);
      } catch (err) {
        this.#logHookError(new HookError('serverThaw', err));
      }
    }
    this.#awaitingCounter = false;
    if (this.#state === 'running') this.#unpark();
  }

  /** unpark serves the connections that waited, in the order they came; those that gave up are gone. */
  #unpark(): void {
    const parked = this.#parked ?? [];
    this.#parked = undefined;
    for (const { socket, listener } of parked) {
      socket.off('error', ignoreError);
      if (socket.destroyed) continue;
      this.#onConnection(socket, listener);
    }
  }

  /** closeParked closes the connections that waited to be served, when they never will be. */
  #closeParked(why: string): void {
    const parked = this.#parked ?? [];
    this.#parked = undefined;
    const open = parked.filter(({ socket }) => !socket.destroyed);
    for (const { socket } of parked) socket.destroy();
    if (open.length > 0)
      this.log(1, `closed ${open.length} connections that arrived before the server was ready: ${why}`, {
        connections: open.length,
      });
  }

  /** adoptConnection, in the new worker, serves a connection that migrated from the old one. */
  adoptConnection(frozen: FrozenConnection, handle: unknown): void {
    const socket = new net.Socket({
      handle,
      readable: true,
      writable: true,
      allowHalfOpen: true,
    } as net.SocketConstructorOpts);
    const session = this.#createSession(socket, {
      id: frozen.id,
      proto: frozen.proto,
      peeraddr: frozen.peeraddr,
      peerport: frozen.peerport,
      sockaddr: frozen.sockaddr,
      sockport: frozen.sockport,
      listener: frozen.listener,
      connectedAt: new Date(frozen.connectedAt),
    });
    const { client } = session;
    client.peerhost = frozen.peerhost;
    client.accepted = true;
    client.phase = 'connected';
    // What the old worker writes to it until it lets it go comes first: output here waits till then.
    client.holdOutput();
    this.#clients.add(client);
    this.#adopted.set(client.id, client);
    this.requests = Math.max(this.requests, frozen.id);
    // What the old worker wrote while the socket was moving goes out before anything written here.
    if (frozen.output !== undefined) socket.write(Buffer.from(frozen.output, 'base64'));
    if (frozen.input !== undefined) client.input.append(Buffer.from(frozen.input, 'base64'));
    if (frozen.timeoutMs !== undefined) this.#setTimeout(client, frozen.timeoutMs / 1000);
    this.#enqueue(session, () => {
      session.hook = 'muxThaw';
      return this.muxThaw(this.mux, client, frozen.state);
    });
    if (client.input.length > 0) {
      session.inputQueued = true;
      session.queue.push('input');
    }
  }

  /**
   * releaseAdopted, in the new worker: the old worker has let connection `id` go, having written
   * `output` to it while it was on its way. That goes out first, then what was written here meanwhile;
   * if the old worker ended the connection (`end`), that comes instead of what was written here.
   */
  releaseAdopted(id: number, output: Buffer, end?: ConnectionEnd): void {
    const client = this.#adopted.get(id);
    if (!client) return;
    this.#adopted.delete(id);
    client.releaseOutput(output, end);
  }

  /**
   * @internal setPeerBroadcast sends each `mux.broadcast` made here on to the other workers with
   * clients as well (undefined: no longer): during a migration, and while a replaced worker drains.
   */
  setPeerBroadcast(send: PeerBroadcast | undefined): void {
    this.#peerBroadcast = send;
  }

  /**
   * broadcastElsewhere sends a broadcast made here to the other workers with clients, naming the
   * connections this worker covered itself: in the old worker, those on their way (the bytes are
   * held and go with them); in the new one, those it holds output for until the old worker lets them
   * go (the bytes wait there).
   */
  #broadcastElsewhere(data: Buffer): void {
    const send = this.#peerBroadcast;
    if (!send) return;
    const skip = [...this.#adopted.keys()];
    if (this.#state === 'migrating')
      for (const c of this.#clients) if (c.phase === 'migrating') skip.push(c.id);
    send(data, skip);
  }

  /**
   * @internal receiveBroadcast writes a broadcast made in another worker to this worker's clients,
   * but those in `skip` (see broadcastElsewhere). It goes no further.
   */
  receiveBroadcast(data: Buffer, skip: readonly number[]): void {
    const left = new Set(skip);
    for (const c of this.#clients) if (!left.has(c.id)) c.write(data);
  }

  /** endAdoption, in the new worker once the migration is over, releases every connection still held. */
  endAdoption(): void {
    const held = [...this.#adopted.values()];
    this.#adopted.clear();
    for (const client of held) client.releaseOutput(Buffer.alloc(0));
  }

  /** isMovable says whether a connection can migrate at all (a live, movable stream connection). */
  #isMovable(session: Session<S>): boolean {
    const { client, socket } = session;
    const handle = (socket as unknown as { _handle?: { readStop?: unknown } } | undefined)?._handle;
    return (
      socket !== undefined &&
      typeof handle?.readStop === 'function' &&
      client.movable &&
      client.phase === 'connected' &&
      !session.failed
    );
  }

  /**
   * ready, when a connection's turn to move comes with a hook in progress or output not yet in the
   * kernel, waits (up to SETTLE_MS, FLUSH_MS) for that while the connection is still served, so that
   * its pause does not include it; undefined when there is nothing to wait for. freeze checks again.
   */
  #ready(session: Session<S>): Promise<unknown> | undefined {
    if (!this.#isMovable(session)) return undefined;
    if (session.busy || session.queue.length > 0) return this.#settled(session, SETTLE_MS);
    if (session.socket!.writableLength > 0) return waitFlushed(session.socket!, FLUSH_MS);
    return undefined;
  }

  /** stopReading leaves further input in the kernel, where it moves with the socket. */
  #stopReading(session: Session<S>): void {
    const socket = session.socket!;
    socket.pause();
    (socket as unknown as { _handle: { readStop(): number } })._handle.readStop();
  }

  /**
   * freeze stops a connection and takes what moves of it, at once when it can (no hook running, its
   * output in the kernel), else once it can; undefined when it cannot move (it stays and drains).
   * In order: reading stops, the hook in progress settles (here, with its input), writes are held
   * from then on, the input the stream read ahead is taken, the socket's own output reaches the
   * kernel, and muxFreeze runs.
   */
  #freeze(session: Session<S>): FrozenConnection | undefined | Promise<FrozenConnection | undefined> {
    if (!this.#isMovable(session)) return undefined;
    this.#stopReading(session);
    if (session.busy || session.queue.length > 0) {
      return this.#settled(session, SETTLE_MS).then((settled) =>
        settled && this.#isMovable(session) ? this.#freezeSettled(session) : this.#unfrozen(session),
      );
    }
    return this.#freezeSettled(session);
  }

  #freezeSettled(session: Session<S>): FrozenConnection | undefined | Promise<FrozenConnection | undefined> {
    const { client } = session;
    const socket = session.socket!;
    // From here on, what anyone writes to this client is held, to be sent by the new worker.
    client.phase = 'migrating';
    // The stream's read-ahead is input this worker owns: read() hands each chunk to the 'data'
    // handler, which, while migrating, only appends it to the client's input.
    while (socket.read() !== null);
    if (socket.writableLength > 0) {
      // Held writes leave the socket's buffer to shrink: this waits only for the client to read.
      return waitFlushed(socket, FLUSH_MS).then((flushed) =>
        flushed ? this.#capture(session) : this.#unfrozen(session),
      );
    }
    return this.#capture(session);
  }

  /** capture runs muxFreeze and builds what is sent, unless something happened to the connection meanwhile. */
  #capture(session: Session<S>): FrozenConnection | undefined | Promise<FrozenConnection | undefined> {
    const { client } = session;
    if (!this.#stillFrozen(session)) return this.#unfrozen(session);
    let state: unknown;
    try {
      state = this.muxFreeze(this.mux, client);
    } catch (err) {
      this.#logHookError(new HookError('muxFreeze', err), client);
      return this.#unfrozen(session);
    }
    if (!isPromiseLike(state)) return this.#frozen(session, state);
    return Promise.resolve(state).then(
      (value) => this.#frozen(session, value),
      (err: unknown) => {
        this.#logHookError(new HookError('muxFreeze', err), client);
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
    const output = client.takeHeldOutput();
    if (output.length > 0) frozen.output = output.toString('base64');
    const timer = this.#timers.get(client);
    if (timer) frozen.timeoutMs = Math.max(0, timer.at - Date.now());
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
      client.endedWhileMoving === undefined &&
      !session.busy &&
      session.queue.length === 0
    );
  }

  /** unfrozen puts a connection back to work here and says it does not move. */
  #unfrozen(session: Session<S>): undefined {
    this.#unfreeze(session);
    return undefined;
  }

  /** unfreeze puts a connection that did not move back to work here. */
  #unfreeze(session: Session<S>): void {
    const { client, socket } = session;
    const end = client.takeEndWhileMoving();
    if (client.phase === 'migrating') client.phase = 'connected';
    const held = client.takeHeldOutput();
    if (held.length > 0) client.write(held);
    (socket as unknown as { _handle?: { readStart?: () => number } } | undefined)?._handle?.readStart?.();
    socket?.resume();
    // A timeout that came due while the connection was on its way fires here now.
    const timer = this.#timers.get(client);
    if (timer && timer.timer === undefined) this.#setTimeout(client, 0);
    if (client.input.length > 0 && !session.inputQueued) {
      session.inputQueued = true;
      this.#enqueue(session, 'input');
    }
    // Ended while it was on its way: that happens here now, after the output written before.
    if (end === 'destroy') client.destroy();
    else if (end === 'close') client.close();
    else if (end === 'shutdown') client.shutdown();
  }

  /** release forgets a connection that now lives in the new worker, closing only this process's descriptor. */
  #release(session: Session<S>): void {
    const { client, socket } = session;
    this.#clearTimeout(client);
    this.#clients.delete(client);
    this.#sessions.delete(client);
    if (this.#adopted.size > 0) this.#adopted.delete(client.id);
    client.input.clear();
    client.phase = 'closed';
    if (socket) {
      socket.removeAllListeners();
      socket.on('error', () => {});
      // The new worker holds the socket now: closing this descriptor sends nothing to the peer.
      socket.destroy();
    }
    this.#markClosed(session);
    if (this.#sessions.size === 0) this.#onIdle?.();
  }

  /** settled waits until a connection has no hook running or queued, up to `ms`. */
  #settled(session: Session<S>, ms: number): Promise<boolean> {
    if (!session.busy && session.queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        session.onSettled = undefined;
        resolve(false);
      }, ms);
      session.onSettled = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  // ---------------------------------------------------------------- UDP

  #onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo, listener: Listener): void {
    if (this.#state !== 'running' || !listener.socket) return;
    const socket = listener.socket;
    this.requests++;
    const local = socket.address();
    const transport: Transport = {
      write: (data) => socket.send(data, rinfo.port, rinfo.address),
      end: () => {},
      close: () => {},
      destroy: () => {},
      writableLength: 0,
    };
    const client = new Client<S>(
      {
        id: this.requests,
        proto: 'udp',
        peeraddr: unmapIPv4(rinfo.address),
        peerport: rinfo.port,
        sockaddr: unmapIPv4(local.address),
        sockport: local.port,
        listener: listener.label,
      },
      transport,
      this.logger.pino,
      () => {},
    );
    client.input.append(msg);
    void this.#runDatagram(client).catch((err) => this.#logHookError(err, client));
  }

  async #runDatagram(client: Client<S>): Promise<void> {
    const verified = await this.#reverseLookup(client);
    await this.postAcceptHook(client);
    let allowed = verified && this.#allowDeny(client);
    if (allowed) allowed = (await this.allowDenyHook(client)) !== false;
    if (!allowed) {
      await this.requestDeniedHook(client);
      return;
    }
    client.accepted = true;
    client.phase = 'connected';
    await this.muxInput(this.mux, client, client.input);
    client.phase = 'closed';
  }

  // ---------------------------------------------------------------- timeouts

  #setTimeout(target: MuxTarget<S>, seconds: number | null): void {
    this.#clearTimeout(target);
    if (seconds === null) return;
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`setTimeout() takes seconds >= 0 or null, got ${seconds}`);
    }
    if (target.kind === 'client' && target.phase === 'closed') return;
    const ms = seconds * 1000;
    const timer = setTimeout(() => this.#fireTimeout(target), ms);
    this.#timers.set(target, { timer, at: Date.now() + ms });
  }

  #clearTimeout(target: MuxTarget<S>): void {
    const t = this.#timers.get(target);
    if (t) {
      clearTimeout(t.timer);
      this.#timers.delete(target);
    }
  }

  #fireTimeout(target: MuxTarget<S>): void {
    this.#timers.delete(target);
    if (target.kind === 'listener') {
      Promise.resolve()
        .then(() => this.muxTimeout(this.mux, target))
        .catch((err) => this.#logHookError(new HookError('muxTimeout', err)));
      return;
    }
    const session = this.#sessions.get(target);
    if (!session) return;
    if (target.phase === 'migrating') {
      // Its state is frozen or on its way: the timeout is due now, in whichever worker serves it.
      this.#timers.set(target, { timer: undefined, at: Date.now() });
      this.log(4, `timeout of client ${target} came due while it was moving: it fires where it is served`, {
        conn: target.id,
      });
      return;
    }
    this.#enqueue(session, () => {
      if (!target.open || session.failed) return undefined;
      session.hook = 'muxTimeout';
      return this.muxTimeout(this.mux, target);
    });
  }
}

/** then runs `next` after `value`: at once for a plain value, after it settles for a promise. */
function then<T>(value: T | PromiseLike<T>, next: (v: T) => unknown): unknown {
  return isPromiseLike(value) ? Promise.resolve(value).then(next) : next(value);
}

const EMPTY = Buffer.alloc(0);

/**
 * waitFlushed resolves true once a socket has handed all its output to the kernel, false after `ms`.
 * An empty write's callback runs after every write before it has completed ('drain' would come only
 * if the buffer had gone past its high-water mark).
 */
function waitFlushed(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.writableLength === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.write(EMPTY, (err) => {
      clearTimeout(timer);
      resolve(!err && socket.writableLength === 0);
    });
  });
}

/** AnyMultiplexServer is a server of any state and option types, for code that takes every server. */
// biome-ignore lint/suspicious/noExplicitAny: the state and option types are the caller's, unknown here.
export type AnyMultiplexServer = MultiplexServer<any, any>;

/** ServerOptionsOf infers a server class's config type from its `static options` shape. */
export type ServerOptionsOf<O extends OptionsShape> = ServerConfig & z.infer<z.ZodObject<O>>;
