/**
 * ipc/worker-host — what the worker runtime (ipc/worker.ts) needs of the server it runs. The server
 * gives the runtime this object instead of itself, so that the runtime knows the server only through
 * it (and core has no import circle), and a server author's autocomplete shows none of it.
 */
import type { ConnectionEnd } from '../connection/client.js';
import type { ProcessHookName } from '../hooks.js';
import type { ListenerAddress } from '../listeners.js';
import type { SocketSource } from '../migration/adopt.js';
import type { MoveObserver } from '../migration/move-state.js';
import type { MigrationChannel, MigrationCounts, PeerBroadcast } from '../migration/types.js';
import type { StartOptions } from '../server/types.js';
import type { FrozenConnection, FrozenServer, WorkerStatus } from './messages.js';

/** WorkerHost is the server as the worker runtime drives it. */
export interface WorkerHost {
  /** Resolves once the server has closed (by endloop(), close() or a signal). */
  readonly done: Promise<void>;
  /** drain_timeout in ms once configured (a SIGQUIT to the group drains for that long). */
  drainMs(): number;
  log(level: 0 | 1 | 2 | 3 | 4, message: string): void;
  /** Writes out what the logger buffered (before the process exits). */
  flushLog(): void;
  /** Reopens the log file (logrotate, SIGUSR1). */
  reopenLogs(): void;
  /** Runs the process flow up to the loop. */
  start(options: StartOptions): Promise<unknown>;
  addresses(): ListenerAddress[];
  status(): WorkerStatus;
  /** Calls `fn` as each server-wide hook begins (its name) and ends (undefined). */
  observeHooks(fn: ((hook: ProcessHookName | undefined) => void) | undefined): void;
  close(): Promise<void>;
  /**
   * Stops accepting, runs restartCloseHook unless `restart` is false, drains up to `drainMs`,
   * closes; `stopped` is told once no listener accepts any more.
   */
  retire(drainMs: number, restart: boolean, stopped?: () => void): Promise<void>;
  /** The old worker's side of a migration (see migration/migrate-out.ts). */
  migrateOut(channel: MigrationChannel, observe?: MoveObserver): Promise<MigrationCounts>;
  /** After a migration the new worker could not finish: accept again on these handles. */
  resumeAccepting(handles: ReadonlyMap<string, unknown>): Promise<void>;
  /** The new worker's side (see migration/adopt.ts). */
  thawServer(data: FrozenServer | null): Promise<void>;
  adoptConnection(frozen: FrozenConnection, source: SocketSource, hold?: boolean): void;
  releaseAdopted(id: number, output: Buffer, end?: ConnectionEnd, timeoutMs?: number | null): void;
  deliverToAdopted(
    id: number,
    output: Buffer,
    end: ConnectionEnd | undefined,
    last: boolean,
    timeoutMs?: number | null,
  ): void;
  endAdoption(): void;
  /** Where each broadcast made here goes on to (the other workers with clients), or nowhere. */
  setPeerBroadcast(send: PeerBroadcast | undefined): void;
  receiveBroadcast(data: Buffer, skip: readonly number[]): void;
}
