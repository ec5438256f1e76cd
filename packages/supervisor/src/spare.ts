/**
 * spare — the spare worker: started ahead of time, with Node, the loader and netplex's runtime
 * loaded, so that a reload or a restart pays only for loading the new code. Not when workers run as
 * another user (the spare would have to be started with those ids), and not when turned off.
 */
import { SPARE_DELAY_MS } from './defaults.js';
import type { SupervisorEnv, TimerHandle } from './env.js';
import type { WorkerProcess } from './worker-process.js';

/** Spare holds at most one spare worker. */
export class Spare {
  #spare: WorkerProcess | undefined;
  readonly #make: () => WorkerProcess;
  readonly #enabled: boolean;
  readonly #env: Pick<SupervisorEnv, 'setTimeout' | 'clearTimeout'>;
  #timer: TimerHandle | undefined;
  /** Whether prepare was called before: only the first spare waits. */
  #prepared = false;

  /**
   * `make` starts a spare; `initial` is one already started (by `netplex run`, while the entry
   * loads); `env` gives the timers.
   */
  constructor(
    make: () => WorkerProcess,
    enabled: boolean,
    initial: WorkerProcess | undefined,
    env: Pick<SupervisorEnv, 'setTimeout' | 'clearTimeout'>,
  ) {
    this.#make = make;
    this.#enabled = enabled;
    this.#spare = initial;
    this.#env = env;
  }

  /** current is the spare, if there is one alive. */
  get current(): WorkerProcess | undefined {
    return this.#spare?.state === 'exited' ? undefined : this.#spare;
  }

  /**
   * prepare starts a spare unless there is one (or spares are off, or `allowed()` says no). The
   * first time (the supervisor's start), SPARE_DELAY_MS from now: on one core, a spare loading
   * meanwhile delays the first connections. Later (after a reload or a restart) at once, so that
   * the next reload finds its spare.
   */
  prepare(allowed: () => boolean): void {
    if (this.#spare || !this.#enabled || this.#timer !== undefined) return;
    const delayMs = this.#prepared ? 0 : SPARE_DELAY_MS;
    this.#prepared = true;
    const start = () => {
      this.#timer = undefined;
      if (this.#spare || !allowed()) return;
      const spare = this.#make();
      this.#spare = spare;
      void spare.exited.then(() => {
        if (this.#spare === spare) this.#spare = undefined;
      });
    };
    if (delayMs === 0) start();
    else this.#timer = this.#env.setTimeout(start, delayMs);
  }

  /**
   * next gives the next worker: the spare, given the entry by `load`, when there is one and it is
   * `usable` (not when the worker must run as another user: then the spare is ended), else `fork()`.
   */
  next(usable: boolean, load: (spare: WorkerProcess) => void, fork: () => WorkerProcess): WorkerProcess {
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare && spare.state !== 'exited' && usable) {
      load(spare);
      return spare;
    }
    spare?.kill();
    return fork();
  }

  /** kill ends the spare, or the wait to start one (the supervisor stops, or failed to start). */
  kill(): void {
    this.#env.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#spare?.kill();
    this.#spare = undefined;
  }
}
