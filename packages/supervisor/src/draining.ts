/**
 * draining — the old workers a reload replaced that still serve their last connections, bounded by
 * max_draining: past it, the oldest ones are told to close their connections and exit now. They
 * stay here (listed as draining) until they have exited.
 */
import type { NetplexLogger } from '@netplex/core';
import { STOP_KILL_AFTER_MS } from './defaults.js';
import type { WorkerProcess } from './worker-process.js';

/** Draining holds the draining workers, oldest first. */
export class Draining {
  readonly #workers = new Set<WorkerProcess>();
  /** Those told to close their connections now, because max_draining was passed. */
  readonly #cut = new WeakSet<WorkerProcess>();

  /** workers lists the draining workers, oldest first. */
  get workers(): WorkerProcess[] {
    return [...this.#workers];
  }

  /**
   * add keeps `old` until it exits, then runs `exited`; past `max` drainers, it stops the oldest
   * (killed if still alive after the stop bound), with one log line each.
   */
  add(old: WorkerProcess, max: number, logger: NetplexLogger, exited: () => Promise<void>): void {
    this.#workers.add(old);
    void old.exited.then(async () => {
      this.#workers.delete(old);
      await exited();
    });
    const draining = this.workers.filter((w) => !this.#cut.has(w) && w.state !== 'exited');
    for (const oldest of draining.slice(0, Math.max(0, draining.length - max))) {
      this.#cut.add(oldest);
      logger.log(2, `max_draining (${max}) reached: closing the oldest draining worker's connections`, {
        worker: oldest.pid,
        generation: oldest.generation,
        draining: draining.length,
      });
      void oldest.stopWithin(STOP_KILL_AFTER_MS);
    }
  }
}
