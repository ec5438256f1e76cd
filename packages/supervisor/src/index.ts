/**
 * @netplex/supervisor — the process that owns the listen sockets and the pid file, runs one worker,
 * and reloads it with zero downtime; and the `netplex` command.
 */
import { superviseKey } from '@netplex/core/internal';
import { supervise } from './supervise.js';

export { askControl, type ControlRequest, controlPathFor, serveControl } from './control.js';
export { devDefaults, devSupervise, isIgnored, packageDirOf, watchAndReload } from './dev.js';
export { realEnv, type SupervisorEnv } from './env.js';
export { type SupervisorCode, SupervisorError, supervisorCodes } from './errors.js';
export { forkWorker, isTypeScript, type WorkerForkOptions, workerExecArgv } from './fork-worker.js';
export { closeHandle, createListenHandle, handlePort, isPassable, type ListenHandle } from './handles.js';
export type { SupervisorOptions } from './options.js';
export {
  describePhase,
  type Phase,
  type ReloadStep,
  requests,
  type SupervisorState,
  stateOf,
} from './phase.js';
export { checkPidFile, isAlive, readPidFile, removePidFile, writePidFile } from './pidfile.js';
export { createPrettifier, createPrettyStream } from './pretty.js';
export type { ReloadResult } from './reload.js';
export type { SupervisorStatus, WorkerInfo, WorkerRole } from './status.js';
export { prewarm, type SuperviseExtras, supervise } from './supervise.js';
export { Supervisor } from './supervisor.js';
export { type WorkerExit, WorkerProcess, type WorkerState } from './worker-process.js';

// Loading the supervisor makes it the one a server's run() hands the process to.
const g = globalThis as Record<symbol, unknown>;
g[superviseKey] ??= supervise;
