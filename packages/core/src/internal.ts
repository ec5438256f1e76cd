/**
 * @netplex/core/internal — what the supervisor and the worker runtime share and a server author
 * does not use: the IPC messages and channel, the process-wide names, the worker runtime and the
 * host interface it drives a server through. It may change with any release (the IPC protocol has
 * its own version, see protocolVersion).
 */
export * from './ipc/channel.js';
export { DIRECT_BATCH, DIRECT_WINDOW } from './ipc/direct-migration.js';
export * from './ipc/globals.js';
export * from './ipc/message-shapes.js';
export * from './ipc/messages.js';
export * from './ipc/worker.js';
export type { WorkerHost } from './ipc/worker-host.js';
export { MIGRATION_WINDOW_MIN } from './migration/migrate-out.js';
export type { MoveObserver, MoveState } from './migration/move-state.js';
export { moveTransitions } from './migration/move-state.js';
export type { MigrationChannel, MigrationCounts, PeerBroadcast } from './migration/types.js';
export { findSupervisor, type Supervise } from './server/launch.js';
export { workerHost } from './server/multiplex-server.js';
