/**
 * status — what `netplex status` shows: the supervisor's figures, and every live process it
 * started with its role and, from each worker that answers, its live figures.
 */
import type { MigrationCounts, MigrationTransport } from '@netplex/core';
import type { ListenAddress } from '@netplex/core/internal';
import type { SupervisorState } from './phase.js';
import type { WorkerProcess } from './worker-process.js';

/**
 * WorkerRole is what one of the supervisor's processes is doing: `serving` (the current worker),
 * `starting` (a reload's new worker, or a restart's, not ready yet), `migrating-in` (a reload's new
 * worker taking the old one's connections), `draining` (replaced, serving its last connections),
 * `spare` (started ahead, waiting to be given the entry).
 */
export type WorkerRole = 'serving' | 'starting' | 'migrating-in' | 'draining' | 'spare';

/** WorkerInfo is one row of `netplex status`'s worker list. */
export interface WorkerInfo {
  pid: number;
  role: WorkerRole;
  /** Grows by one with each worker given the entry (the first, each reload, each restart); null for a spare. */
  generation: number | null;
  /** Connections open now; null when the worker does not say (a spare, one too busy to answer). */
  connections: number | null;
  started_at: string;
}

/** SupervisorStatus is what `netplex status` shows. */
export interface SupervisorStatus {
  state: SupervisorState;
  supervisor_pid: number;
  worker_pid: number | null;
  started_at: string;
  reloads: number;
  last_reload_ms: number | null;
  last_reload_error: string | null;
  /** What the last migrating reload moved: migrated, drained, failed connections and its ms. */
  last_migration: MigrationCounts | null;
  /** How a migration from the serving worker would travel now (see migration_transport). */
  migration_transport: MigrationTransport;
  connections: number | null;
  requests: number | null;
  ports: ListenAddress[];
  restarts: number;
  /** Every process the supervisor has started and that is alive, in the order of WorkerRole. */
  workers: WorkerInfo[];
}

/** ProcessRow is one live process with its role. */
export interface ProcessRow {
  worker: WorkerProcess;
  role: WorkerRole;
}

/**
 * listProcesses lists the live processes of `candidates` in their order, each once (its first
 * role), leaving out those absent or exited.
 */
export function listProcesses(candidates: Array<[WorkerProcess | undefined, WorkerRole]>): ProcessRow[] {
  const rows: ProcessRow[] = [];
  const seen = new Set<WorkerProcess>();
  for (const [worker, role] of candidates) {
    if (!worker || worker.state === 'exited' || seen.has(worker)) continue;
    seen.add(worker);
    rows.push({ worker, role });
  }
  return rows;
}

/** gatherStatus asks each worker of `rows` for its figures and builds the status. */
export async function gatherStatus(
  rows: ProcessRow[],
  current: WorkerProcess | undefined,
  own: Omit<SupervisorStatus, 'connections' | 'requests' | 'workers'>,
): Promise<SupervisorStatus> {
  const figures = await Promise.all(
    rows.map(({ worker, role }) => (role === 'spare' ? undefined : worker.status())),
  );
  const live = figures[rows.findIndex((r) => r.worker === current)];
  const workers = rows.map(
    ({ worker, role }, i): WorkerInfo => ({
      pid: worker.pid,
      role,
      generation: role === 'spare' ? null : (worker.generation ?? null),
      connections: figures[i]?.connections ?? null,
      started_at: new Date(worker.startedAt).toISOString(),
    }),
  );
  // The fields in the order `netplex status --json` has always shown them.
  return {
    state: own.state,
    supervisor_pid: own.supervisor_pid,
    worker_pid: own.worker_pid,
    started_at: own.started_at,
    reloads: own.reloads,
    last_reload_ms: own.last_reload_ms,
    last_reload_error: own.last_reload_error,
    last_migration: own.last_migration,
    migration_transport: own.migration_transport,
    connections: live?.connections ?? null,
    requests: live?.requests ?? null,
    ports: own.ports,
    restarts: own.restarts,
    workers,
  };
}
