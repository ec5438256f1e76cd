/**
 * broadcast-relay — a `mux.broadcast` reaches the clients of every worker that has clients: while
 * more than one does (a migration, a drain after a reload), each is told so (`netplex:peers`) and
 * sends its broadcasts here too, and the relay passes each one on to the others.
 */
import type { PeerBroadcastMessage } from '@netplex/core/internal';
import type { WorkerProcess } from './worker-process.js';

/** ServingWorkers are the workers with clients, as the relay needs to know them. */
export interface ServingWorkers {
  /** The current worker and, during a migration, the one taking its connections. */
  pair(): Array<WorkerProcess | undefined>;
  /** A migration is under way (its two workers relay until it ends). */
  migrating(): boolean;
  /** Every live worker with clients: the current one, those draining, one migrating in. */
  serving(): WorkerProcess[];
}

/** BroadcastRelay passes broadcasts between the workers with clients. */
export class BroadcastRelay {
  readonly #workers: ServingWorkers;
  /** What each worker was last told by update(). */
  readonly #peersOn = new WeakMap<WorkerProcess, boolean>();

  constructor(workers: ServingWorkers) {
    this.#workers = workers;
  }

  /** relay passes a broadcast made in `from` to every other worker with clients. */
  relay(from: WorkerProcess, m: PeerBroadcastMessage): void {
    // The connections the sender names as covered are on their way between the two workers of a
    // migration; to any other worker (one draining), numbers may even name different connections.
    const pair = this.#workers.pair();
    const migrating = this.#workers.migrating();
    const plain: PeerBroadcastMessage = { type: 'netplex:broadcast', data: m.data };
    for (const w of this.#workers.serving()) {
      if (w === from) continue;
      const peer = migrating && pair.includes(from) && pair.includes(w);
      w.post(peer ? m : plain);
    }
  }

  /** migrationBegins records that the two workers of a migration relay from its start. */
  migrationBegins(old: WorkerProcess, neu: WorkerProcess): void {
    this.#peersOn.set(old, true);
    this.#peersOn.set(neu, true);
  }

  /**
   * update tells each worker with clients whether another one has clients too, so that its
   * broadcasts come here only then. Not during a migration, whose two workers relay until it ends
   * (the reload updates again then).
   */
  update(): void {
    if (this.#workers.migrating()) return;
    const serving = this.#workers.serving();
    const on = serving.length > 1;
    for (const w of serving) {
      if (this.#peersOn.get(w) === on) continue;
      this.#peersOn.set(w, on);
      w.post({ type: 'netplex:peers', on });
    }
  }
}
