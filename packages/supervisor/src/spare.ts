/**
 * spare — the spare worker: started ahead of time, with Node, the loader and netplex's runtime
 * loaded, so that a reload or a restart pays only for loading the new code. Not when workers run as
 * another user (the spare would have to be started with those ids), and not when turned off.
 */
import type { WorkerProcess } from './worker-process.js';

/** Spare holds at most one spare worker. */
export class Spare {
  #spare: WorkerProcess | undefined;
  readonly #make: () => WorkerProcess;
  readonly #enabled: boolean;

  /** `make` starts a spare; `initial` is one already started (by `netplex run`, while the entry loads). */
  constructor(make: () => WorkerProcess, enabled: boolean, initial?: WorkerProcess) {
    this.#make = make;
    this.#enabled = enabled;
    this.#spare = initial;
  }

  /** current is the spare, if there is one alive. */
  get current(): WorkerProcess | undefined {
    return this.#spare?.state === 'exited' ? undefined : this.#spare;
  }

  /** prepare starts a spare unless there is one (or spares are off, or `allowed` is false). */
  prepare(allowed: boolean): void {
    if (!allowed || this.#spare || !this.#enabled) return;
    const spare = this.#make();
    this.#spare = spare;
    void spare.exited.then(() => {
      if (this.#spare === spare) this.#spare = undefined;
    });
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

  /** kill ends the spare (the supervisor stops, or failed to start). */
  kill(): void {
    this.#spare?.kill();
    this.#spare = undefined;
  }
}
