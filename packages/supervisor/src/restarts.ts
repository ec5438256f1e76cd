/**
 * restarts — what happens when the serving worker dies: a restart after a backoff that doubles
 * with each crash (restart_backoff, up to restart_backoff_max) and starts over once a worker has run
 * restart_backoff_reset seconds. The timer runs on the env's clock.
 */
import type { NetplexLogger, ServerConfig } from '@netplex/core';
import type { SupervisorEnv, TimerHandle } from './env.js';
import { type Phase, stateOf, verdict } from './phase.js';
import type { WorkerExit, WorkerProcess } from './worker-process.js';

/** RestartHost is the supervisor as a restart reads and changes it. */
export interface RestartHost {
  readonly logger: NetplexLogger;
  config(): Readonly<ServerConfig>;
  phase(): Phase;
  setPhase(phase: Phase): void;
  /** The reload under way, if any: a restart that comes due meanwhile waits for its outcome. */
  reloading(): Promise<unknown> | undefined;
  /** The current worker. */
  current(): WorkerProcess | undefined;
  /** forkCurrent starts the restart's worker and makes it the current one. */
  forkCurrent(): WorkerProcess;
  /** start hands it the targets and the handles (it accepts once its loop starts); rejects if it fails. */
  start(worker: WorkerProcess): Promise<void>;
  /** restarted records a restart that succeeded. */
  restarted(): void;
}

/** Backoff is the crash-restart backoff in ms. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
  stableMs: number;
}

/** backoffOf reads the backoff from the restart_backoff options. */
export function backoffOf(config: Readonly<ServerConfig>): Backoff {
  return {
    initialMs: config.restart_backoff * 1000,
    maxMs: config.restart_backoff_max * 1000,
    stableMs: config.restart_backoff_reset * 1000,
  };
}

/** backoffDelay is the wait before restart number `crashes + 1` (0 for the first crash). */
export function backoffDelay(backoff: Backoff, crashes: number): number {
  return Math.min(Math.max(backoff.maxMs, backoff.initialMs), backoff.initialMs * 2 ** crashes);
}

/** Restarts counts crashes, holds the one pending restart, and runs it when it is due. */
export class Restarts {
  readonly #env: SupervisorEnv;
  readonly #host: RestartHost;
  /** A restart's worker start under way. */
  #starting: Promise<void> | undefined;
  /** Crashes in a row (reset by a worker that ran long enough). */
  #crashes = 0;
  #timer: TimerHandle | undefined;
  #dueAt: number | undefined;

  constructor(env: SupervisorEnv, host: RestartHost) {
    this.#env = env;
    this.#host = host;
  }

  /** starting is the restart's worker start under way, if one is (a reload waits for it). */
  get starting(): Promise<void> | undefined {
    return this.#starting;
  }

  /** attempt is the number of the restart pending or under way (1 for the first after a crash). */
  get attempt(): number {
    return this.#crashes;
  }

  /** dueAt is when the pending restart's backoff ends (ms since the epoch), if one is pending. */
  get dueAt(): number | undefined {
    return this.#dueAt;
  }

  /** pending is true while a restart waits for its backoff. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /**
   * crashed records that the current worker died and schedules its restart after the backoff
   * (a worker that ran restart_backoff_reset seconds starts the backoff over).
   */
  crashed(worker: WorkerProcess, exit: WorkerExit): void {
    const host = this.#host;
    const backoff = backoffOf(host.config());
    if (this.#env.now() - worker.startedAt >= backoff.stableMs) this.#crashes = 0;
    const delay = backoffDelay(backoff, this.#crashes);
    this.#crashes++;
    this.#dueAt = this.#env.now() + delay;
    this.#timer = this.#env.setTimeout(() => {
      this.#timer = undefined;
      this.#dueAt = undefined;
      void this.#due();
    }, delay);
    const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    host.logger.log(0, `worker ${worker.pid} died (${how}); restarting in ${delay} ms`, {
      worker: worker.pid,
      code: exit.code,
      signal: exit.signal,
      delay,
    });
    // A reload under way keeps its phase: when it ends, it settles on the backoff or on its worker.
    if (host.phase().name !== 'reloading')
      host.setPhase({ name: 'backoff', attempt: this.#crashes, dueAt: this.#dueAt });
  }

  /**
   * due runs when a backoff ends. A reload under way at that moment decides: if it succeeds, its
   * worker is the current one and nothing restarts; if it fails, the restart goes on.
   */
  async #due(): Promise<void> {
    const host = this.#host;
    while (verdict('restart', host.phase()).do === 'queue' && host.reloading()) await host.reloading();
    if (verdict('restart', host.phase()).do !== 'run' || host.current()?.state !== 'exited') return;
    host.setPhase({ name: 'restarting', attempt: this.#crashes });
    const started = this.#restart();
    this.#starting = started;
    try {
      await started;
    } finally {
      if (this.#starting === started) this.#starting = undefined;
    }
  }

  async #restart(): Promise<void> {
    const host = this.#host;
    const worker = host.forkCurrent();
    try {
      // The sockets already listen, and connections wait in the backlog: the new worker accepts
      // once its loop starts, so that one whose start fails leaves them there for the next try.
      await host.start(worker);
      host.restarted();
      host.logger.log(2, `worker ${worker.pid} restarted`, { worker: worker.pid });
      if (host.phase().name === 'restarting') host.setPhase({ name: 'serving' });
    } catch (err) {
      worker.kill();
      if (stateOf(host.phase()) !== 'running') return;
      host.logger.log(0, `worker ${worker.pid} failed to start: ${(err as Error).message}`, {
        worker: worker.pid,
      });
      // Its exit makes the supervisor call crashed() again, which schedules the next try with a
      // longer delay. A reload waiting for this restart goes on only once the worker is gone: it
      // must not take a dying worker for a live one to migrate from.
      await worker.exited;
    }
  }

  /** cancel drops the pending restart; false when none was pending. */
  cancel(): boolean {
    if (this.#timer === undefined) return false;
    this.#env.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dueAt = undefined;
    return true;
  }
}
