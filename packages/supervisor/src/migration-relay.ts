/**
 * migration-relay — the supervisor's part in a migrating reload: it asks the old worker to move its
 * connections out, over one of two transports:
 *
 * - direct: the supervisor makes a unix socket pair for this migration and hands one end to each
 *   worker (over its link control socket, see fork-worker.ts); the connections then go straight
 *   from the old worker to the new, many to a message (core's ipc/direct-migration.ts), and the
 *   supervisor relays no socket;
 * - relay: the supervisor passes on what goes between the two workers over Node's IPC: the server
 *   state, each connection with its socket handle (raw, so that the supervisor never reads from it),
 *   the output written to a connection after it was sent, and the acknowledgements (in batches).
 *
 * Either way the supervisor decides when the migration starts and ends (the old worker's report, or
 * either worker's death). Broadcasts made in either worker meanwhile go through the broadcast relay.
 * If the new worker dies meanwhile, the connections still in the old worker stay there, and the old
 * worker accepts again (`resume`); the outcome's `ok` is then false.
 */
import type { MigrationCounts, MigrationTransport } from '@netplex/core';
import { loadUnix, unixUnavailable } from '@netplex/unix';
import type { ListenHandle } from './handles.js';
import { closeHandleCopy, type RelayedMessage, type WorkerProcess } from './worker-process.js';

/** MigrationOutcome is how a migration ended: `ok` false when the new worker died during it. */
export interface MigrationOutcome {
  ok: boolean;
  counts: MigrationCounts;
}

/** TransportChoice is the migration_transport option: a transport, or `auto` (direct when it can). */
export type TransportChoice = 'auto' | MigrationTransport;

/** transportFrom says how a migration from `old` would travel now, as `choice` allows. */
export function transportFrom(choice: TransportChoice, old: WorkerProcess | undefined): MigrationTransport {
  return choice !== 'relay' && old?.direct === true && loadUnix() !== undefined ? 'direct' : 'relay';
}

/**
 * transportNote is the line the supervisor logs once at start when migrations cannot go direct
 * (a warning when the configuration asks for direct), or undefined when they can or do not migrate.
 */
export function transportNote(
  reloadMode: string,
  choice: TransportChoice,
): { level: 1 | 2; line: string } | undefined {
  const missing = unixUnavailable();
  if (missing === undefined || reloadMode !== 'migrate' || choice === 'relay') return undefined;
  return {
    level: choice === 'direct' ? 1 : 2,
    line: `live migration goes through the supervisor (relay): the native unix-socket module is unavailable (${missing})`,
  };
}

/** MigrationRelay relays one migration between its old and its new worker. */
export class MigrationRelay {
  readonly old: WorkerProcess;
  readonly neu: WorkerProcess;
  /** Connections sent to the new worker, by the old worker's seq, not yet acknowledged. */
  readonly #pending = new Set<number>();
  #newDead: boolean;
  #sentState = false;
  #finished = false;
  #endSent = false;
  readonly #now: () => number;
  #transport: MigrationTransport = 'relay';
  readonly #handles: Map<string, ListenHandle>;
  #resolve!: (outcome: MigrationOutcome) => void;
  /** outcome resolves once the old worker reports the migration over (or one of the two is gone). */
  readonly outcome: Promise<MigrationOutcome> = new Promise((resolve) => {
    this.#resolve = resolve;
  });

  /** `handles` are passed to the old worker anew should it have to accept again. */
  constructor(
    old: WorkerProcess,
    neu: WorkerProcess,
    handles: Map<string, ListenHandle>,
    now: () => number = Date.now,
  ) {
    this.#now = now;
    this.old = old;
    this.neu = neu;
    this.#handles = handles;
    this.#newDead = neu.state === 'exited';
  }

  /** transport is how this migration's connections travel (known once it started). */
  get transport(): MigrationTransport {
    return this.#transport;
  }

  /**
   * start asks the old worker to move its connections out, over the transport `choice` allows and
   * both workers can use; what it does not move drains `drainMs`.
   */
  start(drainMs: number, choice: TransportChoice = 'auto'): Promise<MigrationOutcome> {
    const { old, neu } = this;
    const began = this.#now();
    if (choice !== 'relay' && this.#handLink()) this.#transport = 'direct';
    void neu.exited.then(() => {
      this.#newDead = true;
      if (this.#pending.size > 0) this.#nack([...this.#pending]);
      this.#pending.clear();
    });
    void old.exited.then(() => {
      // The old worker is gone: the new one must not wait for its counter any longer.
      // (Over a direct link, the new worker finds that out itself at the migration's end.)
      if (this.#transport === 'relay' && !this.#sentState && !this.#newDead)
        neu.post({ type: 'netplex:server-state', data: null });
      void this.#oldDied(began);
    });
    if (this.#transport === 'direct') {
      neu.post({ type: 'netplex:link' });
      old.post({ type: 'netplex:migrate', drainTimeoutMs: drainMs, transport: 'direct' });
    } else old.post({ type: 'netplex:migrate', drainTimeoutMs: drainMs });
    return this.outcome;
  }

  /**
   * handLink makes this migration's socket pair and hands one end to each worker, over its link
   * control socket; false (nothing handed) when either worker cannot take part or a step fails.
   */
  #handLink(): boolean {
    const { old, neu } = this;
    const unix = loadUnix();
    if (!unix || !old.direct || !neu.direct || this.#newDead) return false;
    if (old.linkControl === undefined || neu.linkControl === undefined) return false;
    const pair = unix.seqpacketPair();
    if (!Array.isArray(pair)) return false;
    const note = Buffer.from('link');
    const handed =
      unix.send(neu.linkControl, note, [pair[1]]) > 0 && unix.send(old.linkControl, note, [pair[0]]) > 0;
    // Each worker has its copy now (or, should a worker die first, the kernel drops it).
    unix.close(pair[0]);
    unix.close(pair[1]);
    return handed;
  }

  /** take passes on a message one of the two workers sent for the other. */
  take(from: WorkerProcess, m: RelayedMessage, handle: unknown): void {
    if (this.#finished) {
      closeHandleCopy(handle);
      return;
    }
    if (from === this.old) this.#fromOld(m, handle);
    else if (from === this.neu) this.#fromNew(m);
    else closeHandleCopy(handle);
  }

  #fromOld(m: RelayedMessage, handle: unknown): void {
    const neu = this.neu;
    switch (m.type) {
      case 'netplex:server-state':
        this.#sentState = true;
        if (!this.#newDead) neu.post(m);
        return;
      case 'netplex:conn':
        if (this.#newDead) {
          closeHandleCopy(handle);
          this.#nack([m.seq]);
          return;
        }
        this.#pending.add(m.seq);
        // Once the message is out, the descriptor travels in it: the supervisor's copy can go.
        neu.send(m, handle).then(
          () => closeHandleCopy(handle),
          () => {
            closeHandleCopy(handle);
            if (this.#pending.delete(m.seq)) this.#nack([m.seq]);
          },
        );
        return;
      case 'netplex:released':
        if (!this.#newDead) neu.post(m);
        return;
      case 'netplex:migrated': {
        const counts = { migrated: m.migrated, drained: m.drained, failed: m.failed, ms: m.ms };
        if (m.lost === true && !this.#newDead) {
          // The direct link closed from the new worker's end: it is gone, whether or not its exit
          // has been seen here yet. It is made sure of, and the old worker keeps what it has.
          neu.kill('SIGKILL');
          void neu.exited.then(() => this.#finish(counts));
          return;
        }
        void this.#finish(counts);
        return;
      }
      default:
        closeHandleCopy(handle);
    }
  }

  #fromNew(m: RelayedMessage): void {
    if (m.type !== 'netplex:conn-ack') return;
    const ok = m.ok.filter((seq) => this.#pending.delete(seq));
    const failed = m.failed.filter((seq) => this.#pending.delete(seq));
    if (ok.length > 0 || failed.length > 0) this.old.post({ type: 'netplex:conn-ack', ok, failed });
  }

  #nack(seqs: number[]): void {
    this.old.post({ type: 'netplex:conn-ack', ok: [], failed: seqs });
  }

  /**
   * oldDied ends a migration whose old worker died: the new worker is told it is over (it then takes
   * in what still waits on the direct link), and says how many connections it took in.
   */
  async #oldDied(began: number): Promise<void> {
    if (this.#finished) return;
    this.#endNew();
    const status = this.#newDead ? undefined : await this.neu.status();
    await this.#finish({ migrated: status?.migratedIn ?? 0, drained: 0, failed: 0, ms: this.#now() - began });
  }

  /** endNew tells the new worker that no connection waits for the old worker to let it go any longer. */
  #endNew(): void {
    if (this.#endSent || this.#newDead) return;
    this.#endSent = true;
    this.neu.post({ type: 'netplex:migration-end' });
  }

  async #finish(counts: MigrationCounts): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    const { old } = this;
    // No connection waits for the old worker to let it go any longer (it may have died first).
    this.#endNew();
    if (this.#newDead && old.state !== 'exited') {
      // The connections that did not move stay with the old worker, which accepts again.
      try {
        await old.sendHandles(this.#handles);
        await old.send({ type: 'netplex:resume' });
      } catch {}
      this.#resolve({ ok: false, counts: { ...counts, transport: this.#transport } });
      return;
    }
    this.#resolve({ ok: !this.#newDead, counts: { ...counts, transport: this.#transport } });
  }
}
