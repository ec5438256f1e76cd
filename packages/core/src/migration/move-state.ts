/**
 * migration/move-state — the states one connection goes through when a reload migrates it out of
 * the worker being replaced, and the transitions allowed between them, as one table.
 *
 * ```mermaid
 * stateDiagram-v2
 *   [*] --> queued
 *   queued --> readying: hook running or output unsent (still served)
 *   queued --> stopped: reading stops
 *   queued --> drained: cannot move
 *   queued --> closed
 *   readying --> stopped
 *   readying --> drained
 *   readying --> closed
 *   stopped --> settling: a hook still runs
 *   stopped --> frozen
 *   settling --> frozen
 *   settling --> unfrozen: did not settle, or cannot move now
 *   frozen --> flushing: socket output not yet in the kernel
 *   frozen --> capturing: muxFreeze
 *   flushing --> capturing
 *   flushing --> unfrozen: did not flush
 *   capturing --> sent
 *   capturing --> unfrozen: closed, handed a step, or muxFreeze failed
 *   sent --> released: the new worker has it
 *   sent --> unfrozen: the new worker did not take it
 *   released --> [*]
 *   unfrozen --> [*]
 *   drained --> [*]
 *   closed --> [*]
 * ```
 *
 * Until `stopped` the connection is served here as usual. From `frozen` on, what is written to it
 * is held (to go with it) and its input stays in the kernel. `released` is the only state in which
 * the new worker serves it; `unfrozen` and `drained` connections stay here and are drained with the
 * worker; `closed` ones closed before they could move.
 */

/** MoveState is where one connection is in a migration out. */
export type MoveState =
  | 'queued'
  | 'readying'
  | 'stopped'
  | 'settling'
  | 'frozen'
  | 'flushing'
  | 'capturing'
  | 'sent'
  | 'released'
  | 'unfrozen'
  | 'drained'
  | 'closed';

/** moveTransitions lists, for each state, the states a connection may go to next. */
export const moveTransitions: { readonly [From in MoveState]: readonly MoveState[] } = {
  queued: ['readying', 'stopped', 'drained', 'closed'],
  readying: ['stopped', 'drained', 'closed'],
  stopped: ['settling', 'frozen'],
  settling: ['frozen', 'unfrozen'],
  frozen: ['flushing', 'capturing'],
  flushing: ['capturing', 'unfrozen'],
  capturing: ['sent', 'unfrozen'],
  sent: ['released', 'unfrozen'],
  released: [],
  unfrozen: [],
  drained: [],
  closed: [],
};

/** isFinal is true for the states a connection's migration ends in. */
export function isFinal(state: MoveState): boolean {
  return moveTransitions[state].length === 0;
}

/** MoveObserver is told every change of a connection's move state (by connection id). */
export type MoveObserver = (id: number, from: MoveState, to: MoveState) => void;

/**
 * MoveTracker holds the move state of each connection of one migration and checks every change
 * against the table: a change the table does not allow is a netplex bug, reported through
 * `illegal` (the migration goes on).
 */
export class MoveTracker<K extends { client: { id: number } }> {
  readonly #states = new Map<K, MoveState>();
  readonly #observe: MoveObserver | undefined;
  readonly #illegal: (id: number, from: MoveState, to: MoveState) => void;

  constructor(illegal: (id: number, from: MoveState, to: MoveState) => void, observe?: MoveObserver) {
    this.#illegal = illegal;
    this.#observe = observe;
  }

  /** state is where connection `key` is (queued until its first change). */
  state(key: K): MoveState {
    return this.#states.get(key) ?? 'queued';
  }

  /** to moves connection `key` to `next`. */
  to(key: K, next: MoveState): void {
    const from = this.state(key);
    if (!moveTransitions[from].includes(next)) this.#illegal(key.client.id, from, next);
    this.#states.set(key, next);
    this.#observe?.(key.client.id, from, next);
  }
}
