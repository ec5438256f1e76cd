/**
 * server/start-flow — Net::Server's PROCESS FLOW for one server: configure, bind and the hooks
 * around them up to the loop (the steps below, in the order of processHooks), then the loop's
 * timer, and the shutdown: stop accepting, drain when retiring, the close hooks, close the clients.
 */
import { createAccessControl } from '../access.js';
import { loadConfig } from '../config.js';
import type { ClientFlow } from '../connection/client-flow.js';
import { closeSessions } from '../connection/close-all.js';
import { onDatagram } from '../connection/udp.js';
import { formatUserError } from '../error-format.js';
import { ConfigError, type ConfigSource } from '../errors.js';
import type { ProcessHookName } from '../hooks.js';
import { workerEnv } from '../ipc/globals.js';
import { adoptListener, bindListener, closeListener, Listener, startAccepting } from '../listeners.js';
import { createLogger, type LogFunction, type LogLevel, type NetplexLogger } from '../logger.js';
import { type OptionsShape, type ServerConfig, serverOptions } from '../options.js';
import { pairPortSpecs, resolveBindTargets } from '../port-spec.js';
import { syslogOptionsOf } from '../syslog.js';
import { onUnixDatagram } from '../unix-datagram.js';
import type { ServerContext } from './context.js';
import type { HookRunner } from './hook-runner.js';
import type { ConstructorArgs, StartOptions } from './types.js';

/** How long close() lets clients flush their output before it drops them. */
const CLOSE_FLUSH_MS = 5_000;

/**
 * startSteps is the process flow up to the loop: each start-up hook of processHooks, in that
 * order, with netplex's own steps between them. restartOpenHook runs only when the start replaces
 * a server (a reload or a restart).
 */
export const startSteps = [
  { hook: 'configureHook' },
  { step: 'configure' },
  { hook: 'postConfigureHook' },
  { step: 'listeners' },
  { hook: 'restartOpenHook' },
  { step: 'bind' },
  { hook: 'postBindHook' },
  { step: 'dropPrivileges' },
  { hook: 'preLoopHook' },
  { step: 'accept' },
] as const satisfies ReadonlyArray<{ hook: ProcessHookName } | { step: string }>;

type StepName = Extract<(typeof startSteps)[number], { step: string }>['step'];

/** Configurable is the server as the start flow configures it: its sources and what it sets. */
export interface Configurable {
  readonly args: ConstructorArgs;
  defaultValues(): Record<string, unknown>;
  writeToLogHook?(level: LogLevel, message: string): void;
  config: Readonly<ServerConfig>;
  argv: string[];
  logger: NetplexLogger;
}

/** StartFlow runs one server's process flow. */
export class StartFlow<S> {
  readonly #ctx: ServerContext<S>;
  readonly #flow: ClientFlow<S>;
  readonly #hooks: HookRunner;
  readonly #server: Configurable;
  /** The options shape: netplex's own and the server class's. */
  readonly #shape: OptionsShape;
  #dequeueTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #resolveDone!: () => void;
  #stoppedAccepting!: () => void;
  /** Resolves once a shutdown has closed every listener (or found none to close). */
  readonly #notAccepting: Promise<void> = new Promise((resolve) => {
    this.#stoppedAccepting = resolve;
  });
  /** done resolves once the server has closed, by endloop(), close() or a signal. */
  readonly done: Promise<void> = new Promise((resolve) => {
    this.#resolveDone = resolve;
  });

  constructor(
    ctx: ServerContext<S>,
    flow: ClientFlow<S>,
    hooks: HookRunner,
    server: Configurable,
    ownOptions: OptionsShape,
  ) {
    this.#ctx = ctx;
    this.#flow = flow;
    this.#hooks = hooks;
    this.#server = server;
    this.#shape = { ...serverOptions, ...ownOptions } as OptionsShape;
  }

  /** start runs the process flow up to the loop, then starts the loop; on failure, fatal runs first. */
  async start(options: StartOptions): Promise<void> {
    const ctx = this.#ctx;
    ctx.state = 'starting';
    ctx.parked = [];
    ctx.awaitingCounter = options.migrating ?? false;
    const steps: Record<StepName, () => Promise<void> | void> = {
      configure: () => this.#configure(options),
      listeners: async () => {
        const targets = options.targets ?? (await resolveBindTargets(pairPortSpecs(ctx.config)));
        ctx.listeners = targets.map((t) => new Listener(t));
      },
      bind: () => this.#bind(options.handles, options.deferAccept ?? false),
      dropPrivileges: () => this.#dropPrivileges(),
      accept: () => this.#startAccepting(),
    };
    try {
      for (const s of startSteps) {
        if ('step' in s) await steps[s.step]();
        else if (s.hook !== 'restartOpenHook' || options.restarting) await this.#hooks.run(s.hook);
      }
    } catch (err) {
      await this.#fatal(err);
      throw err;
    }
    this.#loop();
  }

  #configure(options: StartOptions): void {
    const ctx = this.#ctx;
    const server = this.#server;
    const { config, rest, notices, sources } = loadConfig(this.#shape, {
      constructor: server.args,
      argv: options.argv ?? [],
      run: options.run ?? {},
      defaults: server.defaultValues(),
      cwd: options.cwd ?? process.cwd(),
      confText: options.confText,
    });
    ctx.config = config as unknown as ServerConfig;
    server.config = ctx.config;
    server.argv = rest;
    ctx.logger = createLogger({
      log_level: ctx.config.log_level,
      log_file: ctx.config.log_file,
      syslog: syslogOptionsOf(ctx.config),
      destination: options.logDestination,
      logFunction: resolveLogFunction(server, ctx.config.log_function, sources.get('log_function')),
    });
    server.logger = ctx.logger;
    // Under the supervisor, the supervisor logs these (once for its whole run, not once per worker).
    if (process.env[workerEnv] !== '1')
      for (const notice of notices) ctx.log(notice.level, notice.message, { option: notice.keys });
    ctx.access = createAccessControl(ctx.config);
    ctx.maxInput = ctx.config.max_input_buffer;
    ctx.maxOutput = ctx.config.max_output_buffer;
    ctx.idleMs = ctx.config.idle_timeout * 1000;
  }

  /** bind binds each listener, or adopts the supervisor's handle for it (at once, or with `defer` at the loop). */
  async #bind(handles: ReadonlyMap<string, unknown> | undefined, defer: boolean): Promise<void> {
    const ctx = this.#ctx;
    const flow = this.#flow;
    for (const listener of ctx.listeners) {
      const handle = handles?.get(listener.target.key);
      if (handle !== undefined) {
        await adoptListener(listener, handle, {
          onConnection: (s) => flow.onConnection(s, listener),
          backlog: ctx.config.listen,
          defer,
        });
        ctx.log(3, `Listening on ${listener.label} (bound by the supervisor)`, { listener: listener.label });
        continue;
      }
      await bindListener(listener, {
        backlog: ctx.config.listen,
        onConnection: (s) => flow.onConnection(s, listener),
        onDatagram: (msg, rinfo) => onDatagram(ctx, msg, rinfo, listener),
        onUnixDatagram: (msg, from) => onUnixDatagram(ctx, msg, from, listener),
        // Under the supervisor, udp ports are the worker's own; a new worker shares them with the old.
        reuseAddr: handles !== undefined,
        broadcast: ctx.config.udp_broadcast,
      });
      ctx.log(2, `Binding to ${listener.label}`, { listener: listener.label });
    }
  }

  /** Net::Server's post_bind: drop privileges when started as root with user/group set. */
  #dropPrivileges(): void {
    const { user, group } = this.#ctx.config;
    if (process.getuid?.() !== 0 || (user === undefined && group === undefined)) return;
    if (group !== undefined) process.setgid?.(/^\d+$/.test(group) ? Number(group) : group);
    if (user !== undefined) process.setuid?.(/^\d+$/.test(user) ? Number(user) : user);
    this.#ctx.log(2, `running as user ${user ?? '-'} group ${group ?? '-'}`);
  }

  /** startAccepting makes the listeners whose adoption was deferred (see StartOptions.deferAccept) accept. */
  async #startAccepting(): Promise<void> {
    const ctx = this.#ctx;
    for (const listener of ctx.listeners)
      await startAccepting(listener, {
        onConnection: (s) => this.#flow.onConnection(s, listener),
        backlog: ctx.config.listen,
      });
  }

  #loop(): void {
    const ctx = this.#ctx;
    ctx.state = 'running';
    if (!ctx.awaitingCounter) this.#flow.unpark();
    const every = ctx.config.check_for_dequeue;
    if (every !== undefined) {
      this.#dequeueTimer = setInterval(() => {
        this.#hooks.run('runDequeue').catch((err) => ctx.logHookError(err));
      }, every * 1000);
    }
  }

  /** close stops the server at once (a drain in progress ends now); idempotent. */
  close(): Promise<void> {
    // A drain in progress (retire) ends now: the rest of the shutdown goes on as close() would.
    this.#ctx.onIdle?.();
    this.#closing ??= this.#shutdown(0, false);
    return this.#closing;
  }

  /**
   * retire stops accepting, runs restartCloseHook when `restart`, drains up to `drainMs`, then
   * closes; `stopped` is told once no listener accepts any more (at once when that is so already).
   */
  retire(drainMs: number, restart: boolean, stopped?: () => void): Promise<void> {
    this.#closing ??= this.#shutdown(drainMs, restart);
    if (stopped) void this.#notAccepting.then(stopped);
    return this.#closing;
  }

  async #shutdown(drainMs: number, restart: boolean): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.state === 'new' || ctx.state === 'closed') {
      ctx.state = 'closed';
      this.#stoppedAccepting();
      this.#resolveDone();
      return;
    }
    ctx.state = 'closing';
    if (this.#dequeueTimer) clearInterval(this.#dequeueTimer);
    await Promise.all(ctx.listeners.map((l) => closeListener(l)));
    this.#stoppedAccepting();
    this.#flow.closeParked('the server is closing');
    if (restart) await this.#hooks.runLogged('restartCloseHook');
    if (drainMs > 0 && ctx.sessions.size > 0) {
      ctx.log(3, `draining ${ctx.sessions.size} connections for up to ${drainMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        ctx.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      ctx.onIdle = undefined;
    }
    await this.#hooks.runLogged('preServerCloseHook');
    await closeSessions(ctx, CLOSE_FLUSH_MS);
    ctx.timeouts.clearAll();
    await this.#hooks.runLogged('postChildCleanupHook');
    ctx.log(2, 'Server closing!');
    ctx.state = 'closed';
    ctx.logger?.flush();
    // In one process, the server owns its logger: once closed it keeps no log_file open and no
    // syslog socket or reconnect timer. A worker logs on (a failed shutdown, a migration) until it exits.
    if (process.env[workerEnv] !== '1') ctx.logger?.close();
    this.#resolveDone();
  }

  async #fatal(err: unknown): Promise<void> {
    const ctx = this.#ctx;
    ctx.state = 'closed';
    for (const l of ctx.listeners) await closeListener(l).catch(() => {});
    this.#flow.closeParked('the start failed');
    const error = err instanceof Error ? err : new Error(String(err));
    // Under the supervisor, the supervisor reports a failed start (once, for the whole reload).
    if (process.env[workerEnv] !== '1' && ctx.logger)
      ctx.log(0, `fatal: ${formatUserError(error)}`, { err: error });
    await this.#hooks.fatal(error);
    this.#resolveDone();
  }
}

/**
 * resolveLogFunction is where the server's log lines go instead of log_file or stderr: log_function
 * (a function, or the name of one of the server's methods, as Net::Server takes it), else the
 * server's writeToLogHook, else nowhere else. A name that is no method is a ConfigError, as
 * Net::Server dies with "not a valid method of server".
 */
function resolveLogFunction(
  server: Configurable,
  given: ServerConfig['log_function'],
  source: ConfigSource | undefined,
): LogFunction | undefined {
  if (typeof given === 'function') return given;
  if (typeof given === 'string') {
    const method = (server as unknown as Record<string, unknown>)[given];
    if (typeof method !== 'function')
      throw new ConfigError({
        key: 'log_function',
        source: source ?? { kind: 'code' },
        value: given,
        expected: 'a function, or the name of a method of the server',
      });
    return (level, message, record) => method.call(server, level, message, record);
  }
  return server.writeToLogHook ? (level, message) => server.writeToLogHook?.(level, message) : undefined;
}
