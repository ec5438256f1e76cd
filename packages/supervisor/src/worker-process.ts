/**
 * worker-process — the supervisor's side of one worker: fork it, hand it the listen handles one at
 * a time (each acknowledged), wait for ready, and retire, stop or kill it.
 */
import type { ChildProcess } from 'node:child_process';
import { type BindTarget, HookTimeoutError } from '@netplex/core';
import {
  Channel,
  type Handlers,
  isWorkerMessage,
  type ListenAddress,
  type MessageOf,
  protocolVersion,
  type SupervisorMessage,
  type WorkerMessage,
  type WorkerStatus,
  workerEnv,
  workerMessageProblem,
} from '@netplex/core/internal';
import { RETIRE_ACK_MS, STOP_KILL_AFTER_MS, WORKER_STATUS_TIMEOUT_MS } from './defaults.js';
import { realEnv, type SupervisorEnv, type TimerHandle } from './env.js';
import { SupervisorError, WorkerStartError } from './errors.js';
import { linkControlOf } from './fork-worker.js';
import type { ListenHandle } from './handles.js';

/** RelayedMessage is a message a worker sends for another worker: the supervisor passes it on. */
export type RelayedMessage = MessageOf<
  WorkerMessage,
  | 'netplex:server-state'
  | 'netplex:conn'
  | 'netplex:released'
  | 'netplex:conn-ack'
  | 'netplex:migrated'
  | 'netplex:broadcast'
>;

/** WorkerState is where a worker is in its life. */
export type WorkerState = 'starting' | 'ready' | 'retiring' | 'exited';

/** StartOptions say how a worker starts. */
export interface StartOptions {
  /** It replaces a worker (a reload or a restart): restartOpenHook runs. */
  restarting: boolean;
  /** How long it has to get ready. */
  readyTimeoutMs: number;
  /** Connections will migrate in from the worker it replaces. */
  migrate?: boolean;
  /** The handles already listen: it accepts only once its loop starts. */
  deferAccept?: boolean;
  /** The conf_file text of the configuration it starts with. */
  confText?: string | undefined;
}

/** WorkerExit is how a worker ended. */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** ForkOptions are what a worker is started with. */
export interface ForkOptions {
  /** The entry to run; without one the worker is a spare that waits for load(). */
  entry?: string | undefined;
  argv: string[];
  execArgv: string[];
  env?: NodeJS.ProcessEnv;
  uid?: number | undefined;
  gid?: number | undefined;
  /** Takes the worker's stderr line by line (netplex dev pretty-prints it); inherited when unset. */
  onStderrLine?: ((line: string) => void) | undefined;
  /** A worker process already started (a spare the `netplex` command forked first thing). */
  child?: ChildProcess;
  /** Processes, timers and the clock; the real ones by default. */
  supervisorEnv?: SupervisorEnv | undefined;
}

/** WorkerProcess is one forked worker, as the supervisor sees it. */
export class WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  state: WorkerState = 'starting';
  /** endloop is true once the worker said its server ended its loop by itself. */
  endloop = false;
  /** fatal holds the worker's start-up error, when it sent one: its message and its code. */
  fatal: { message: string; code: string | undefined } | undefined;
  /**
   * generation numbers the workers given an entry, in order (the first worker is 1; each reload and
   * restart gives the next); undefined for a spare not given one yet.
   */
  generation: number | undefined;
  /** startingHook names the server-wide hook the worker is in while starting, if any. */
  startingHook: string | undefined;
  /** When the worker was given its entry (a spare's life before that does not count). */
  startedAt: number;
  /**
   * onRelayed takes the messages this worker sends for another worker (a migration's, a
   * broadcast), with the socket handle that came with one; the supervisor routes them.
   */
  onRelayed: ((message: RelayedMessage, handle: unknown) => void) | undefined;
  /** onBadMessage hears of each message from this worker that was dropped: its type, and what was wrong. */
  onBadMessage: ((type: string, problem: string) => void) | undefined;
  /** exited resolves once the process is gone. */
  readonly exited: Promise<WorkerExit>;
  /**
   * The supervisor's end of this worker's link control socket (see fork-worker.ts), over which it is
   * handed its end of a direct migration link; undefined without the native module.
   */
  readonly linkControl: number | undefined;
  /** direct is true once the worker said it can take part in a direct migration. */
  direct = false;

  /** The IPC channel to the worker: sends, requests and their answers, one handler per message. */
  readonly #channel: Channel<SupervisorMessage, WorkerMessage>;
  /** Resolves with the protocol version the worker's netplex speaks, once it says hello. */
  readonly #hello: Promise<number | undefined>;
  #onHello: ((protocol: number | undefined) => void) | undefined;
  #onReady: ((addresses: ListenAddress[]) => void) | undefined;

  readonly #env: SupervisorEnv;

  constructor(opts: ForkOptions) {
    this.#env = opts.supervisorEnv ?? realEnv;
    this.startedAt = this.#env.now();
    this.child =
      opts.child ??
      this.#env.fork({
        entry: opts.entry,
        argv: opts.argv,
        execArgv: opts.execArgv,
        env: { ...opts.env, [workerEnv]: '1' },
        uid: opts.uid,
        gid: opts.gid,
        pipeStderr: opts.onStderrLine !== undefined,
      });
    this.pid = this.child.pid ?? -1;
    this.linkControl = linkControlOf(this.child);
    const onLine = opts.onStderrLine;
    if (onLine && this.child.stderr) {
      let partial = '';
      this.child.stderr.setEncoding('utf8');
      this.child.stderr.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onLine(line);
      });
      this.child.stderr.on('end', () => {
        if (partial) onLine(partial);
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.state = 'exited';
        resolve({ code, signal });
      });
      // A failed fork (no such file, EACCES) emits error without exit.
      this.child.once('error', () => {
        if (this.child.exitCode === null && this.child.pid === undefined) {
          this.state = 'exited';
          resolve({ code: 127, signal: null });
        }
      });
    });
    this.#hello = new Promise((resolve) => {
      this.#onHello = resolve;
    });
    this.#channel = new Channel(this.child, {
      gone: () => new SupervisorError('SUP_ERR_WORKER_FAILED', `worker ${this.pid} is gone`),
    });
    // What a worker sends is checked before any handler sees it (see message-shapes.ts): a
    // malformed or unknown message, or a handle where none belongs, is dropped and reported.
    const handlers = this.#handlers() as unknown as Record<
      string,
      (m: WorkerMessage, handle: unknown) => void
    >;
    const drop = (type: string, problem: string, handle: unknown) => {
      closeHandleCopy(handle);
      this.onBadMessage?.(type, problem);
    };
    const checked = Object.fromEntries(
      Object.entries(handlers).map(([type, handler]) => [
        type,
        (m: WorkerMessage, handle: unknown) => {
          const problem = workerMessageProblem(m, handle !== undefined && handle !== null);
          if (problem === undefined) handler(m, handle);
          else drop(type, problem, handle);
        },
      ]),
    ) as unknown as Handlers<WorkerMessage>;
    this.#channel.listen(
      isWorkerMessage,
      checked,
      (type, handle) => drop(type, 'a type this supervisor does not know', handle),
      // A user's own message is not the supervisor's: only a handle that came with one is closed.
      (_message, handle) => closeHandleCopy(handle),
    );
    void this.exited.then(() => this.#channel.close());
  }

  /** handlers is what the worker's own messages do; the migration and broadcast relays listen too. */
  #handlers(): Handlers<WorkerMessage> {
    const answer = (m: { ack: number } & WorkerMessage) => void this.#channel.answer(m.ack, m);
    // The supervisor passes these on to the other worker (see onRelayed).
    const relayed = (m: RelayedMessage, handle: unknown) => {
      if (this.onRelayed) this.onRelayed(m, handle);
      else closeHandleCopy(handle);
    };
    return {
      'netplex:hello': (m) => {
        // A netplex from before the protocol had a version says none.
        this.direct = m.direct === true && this.linkControl !== undefined;
        this.#onHello?.(typeof m.protocol === 'number' ? m.protocol : undefined);
        this.#onHello = undefined;
      },
      'netplex:ack': answer,
      'netplex:status': answer,
      'netplex:ready': (m) => {
        // Only a starting worker gets ready: a second ready, or one from a retiring worker, changes nothing.
        if (this.state !== 'starting') return;
        this.state = 'ready';
        this.#onReady?.(m.addresses);
      },
      'netplex:endloop': () => {
        this.endloop = true;
      },
      'netplex:hook': (m) => {
        this.startingHook = m.hook ?? undefined;
      },
      'netplex:fatal': (m) => {
        this.fatal = { message: m.message, code: m.code };
      },
      'netplex:server-state': relayed,
      'netplex:conn': relayed,
      'netplex:released': relayed,
      'netplex:conn-ack': relayed,
      'netplex:migrated': relayed,
      'netplex:broadcast': relayed,
    };
  }

  /** send sends one message, with a handle when given; it rejects once the worker is gone. */
  send(msg: SupervisorMessage, handle?: unknown): Promise<void> {
    return this.#channel.send(msg, handle);
  }

  /** post sends a message whose delivery nobody waits for (dropped once the worker is gone). */
  post(msg: SupervisorMessage, handle?: unknown): void {
    this.#channel.post(msg, handle);
  }

  #request<T extends WorkerMessage>(
    make: (seq: number) => SupervisorMessage,
    handle?: ListenHandle,
  ): Promise<T> {
    return this.#channel.request<T>(make, handle);
  }

  /**
   * start hands the worker its targets and handles and resolves with its addresses once it is ready.
   * It rejects when the worker exits first, reports a fatal error, or is not ready within readyTimeoutMs.
   */
  async start(
    targets: BindTarget[],
    handles: ReadonlyMap<string, ListenHandle>,
    opts: StartOptions,
  ): Promise<ListenAddress[]> {
    const { restarting, readyTimeoutMs, migrate = false, deferAccept = false, confText } = opts;
    const env = this.#env;
    let timer: TimerHandle | undefined;
    const failed = new Promise<never>((_, reject) => {
      timer = env.setTimeout(() => {
        // A start-up hook that never settled is the likely cause: name it.
        const hook = this.startingHook;
        reject(
          hook
            ? new HookTimeoutError(hook, readyTimeoutMs)
            : new SupervisorError(
                'SUP_ERR_READY_TIMEOUT',
                `worker ${this.pid} was not ready within ${readyTimeoutMs} ms`,
              ),
        );
      }, readyTimeoutMs);
      void this.exited.then(({ code, signal }) => {
        const how = signal ? `signal ${signal}` : `code ${code}`;
        // The worker's own report keeps its code (a configuration error is MPX_ERR_CONFIG_…).
        const fatal = this.fatal;
        reject(
          fatal
            ? new WorkerStartError(fatal.code ?? 'SUP_ERR_WORKER_FAILED', fatal.message)
            : new SupervisorError(
                'SUP_ERR_WORKER_FAILED',
                `worker ${this.pid} exited with ${how} before it was ready`,
              ),
        );
      });
    });
    const ready = new Promise<ListenAddress[]>((resolve) => {
      this.#onReady = resolve;
    });
    const handOver = async () => {
      const protocol = await this.#hello;
      if (protocol !== protocolVersion) {
        // Its netplex is not this supervisor's (upgraded on disk since the supervisor started).
        this.kill();
        throw new WorkerStartError(
          'SUP_ERR_PROTOCOL',
          `worker ${this.pid} runs a netplex that speaks IPC protocol ${protocol ?? '1 or older'}, and this supervisor speaks ${protocolVersion}: netplex was upgraded while the supervisor ran; stop and start it (netplex stop, then netplex run) to run the new version`,
        );
      }
      await this.send({
        type: 'netplex:start',
        targets,
        handleKeys: [...handles.keys()],
        restarting,
        readyTimeoutMs,
        migrate,
        deferAccept,
        ...(confText === undefined ? {} : { confText }),
      });
      await this.sendHandles(handles);
      return ready;
    };
    try {
      return await Promise.race([handOver(), failed]);
    } finally {
      env.clearTimeout(timer);
    }
  }

  /**
   * sendHandles passes listen handles one at a time, each acknowledged before the next (Node's
   * NODE_HANDLE_ACK discipline). The supervisor keeps its own copy of every handle open; the worker
   * owns the copy it got.
   */
  async sendHandles(handles: ReadonlyMap<string, ListenHandle>): Promise<void> {
    for (const [key, handle] of handles) {
      await this.#request((seq) => ({ type: 'netplex:handle', seq, key }), handle);
    }
  }

  /** load makes a spare worker run `entry` with `argv`, as if it had been forked with them. */
  load(entry: string, argv: string[]): void {
    this.startedAt = this.#env.now();
    this.child.ref();
    (this.child.channel as { ref?: () => void } | null | undefined)?.ref?.();
    this.send({ type: 'netplex:load', entry, argv }).catch(() => {});
  }

  /** status asks the worker for its live figures. */
  async status(timeoutMs = WORKER_STATUS_TIMEOUT_MS): Promise<WorkerStatus | undefined> {
    if (this.state === 'exited') return undefined;
    const env = this.#env;
    let timer: TimerHandle | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = env.setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      const reply = await Promise.race([
        this.#request<MessageOf<WorkerMessage, 'netplex:status'>>((seq) => ({
          type: 'netplex:status',
          seq,
        })),
        timeout,
      ]);
      if (!reply) return undefined;
      const { connections, requests, migratedIn } = reply;
      return typeof migratedIn === 'number'
        ? { connections, requests, migratedIn }
        : { connections, requests };
    } catch {
      return undefined;
    } finally {
      env.clearTimeout(timer);
    }
  }

  /**
   * retire tells the worker to stop accepting and drain (a reload replaced it). It resolves once the
   * worker says it has stopped accepting, or after RETIRE_ACK_MS (a worker that is stuck, or one from
   * a netplex that does not answer), or when the worker is gone: it never rejects.
   */
  async retire(drainTimeoutMs: number): Promise<void> {
    this.state = 'retiring';
    const env = this.#env;
    let timer: TimerHandle | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = env.setTimeout(resolve, RETIRE_ACK_MS);
    });
    try {
      await Promise.race([
        this.#request((seq) => ({ type: 'netplex:retire', drainTimeoutMs, seq })).catch(() => {}),
        bound,
      ]);
    } finally {
      env.clearTimeout(timer);
    }
  }

  /** quit tells the worker to stop accepting, drain, and exit (SIGQUIT). */
  quit(drainTimeoutMs: number): void {
    this.state = 'retiring';
    this.send({ type: 'netplex:quit', drainTimeoutMs }).catch(() => {});
  }

  /** stop tells the worker to close everything and exit. */
  stop(): void {
    this.state = 'retiring';
    this.send({ type: 'netplex:stop' }).catch(() => {});
  }

  /** reopenLogs tells the worker to reopen its log file. */
  reopenLogs(): void {
    this.send({ type: 'netplex:reopen-logs' }).catch(() => {});
  }

  /** kill sends the worker a signal: SIGKILL by default, which ends it. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.state !== 'exited') this.child.kill(signal);
  }

  /** stopWithin asks the worker to stop and kills it if it has not exited within `ms`. */
  async stopWithin(ms: number, how: 'stop' | 'quit' = 'stop', drainTimeoutMs = 0): Promise<WorkerExit> {
    if (how === 'quit') this.quit(drainTimeoutMs);
    else this.stop();
    const timer = this.#env.setTimeout(() => this.kill(), ms);
    const exit = await this.exited;
    this.#env.clearTimeout(timer);
    return exit;
  }

  /** stopOrKill stops the worker, draining `drainMs` first when graceful; it is killed after a bound. */
  stopOrKill(graceful: boolean, drainMs: number): Promise<WorkerExit> {
    return this.stopWithin(drainMs + STOP_KILL_AFTER_MS, graceful ? 'quit' : 'stop', drainMs);
  }
}

/** closeHandleCopy closes this process's copy of a socket handle that came with a message. */
export function closeHandleCopy(handle: unknown): void {
  const h = handle as { close?: () => void; destroy?: () => void } | undefined;
  // A listen handle closes; a connected socket (a net.Socket has no close) is destroyed.
  if (typeof h?.destroy === 'function') h.destroy();
  else h?.close?.();
}
