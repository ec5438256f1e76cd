/**
 * errors — the supervisor's errors, each with a stable literal code. Codes are never reused.
 */

/** SupervisorCode lists every code the supervisor throws or reports. */
export const supervisorCodes = [
  'SUP_ERR_PIDFILE',
  'SUP_ERR_PIDFILE_LOCKED',
  'SUP_ERR_NOT_READY',
  'SUP_ERR_RELOAD_IN_PROGRESS',
  'SUP_ERR_SHUTTING_DOWN',
  'SUP_ERR_WORKER_FAILED',
  'SUP_ERR_READY_TIMEOUT',
  'SUP_ERR_PROTOCOL',
  'SUP_ERR_CONTROL',
  'SUP_ERR_USAGE',
  'SUP_ERR_USER',
] as const;

/** SupervisorCode is one of supervisorCodes. */
export type SupervisorCode = (typeof supervisorCodes)[number];

/** SupervisorError is the base class of every error the supervisor raises. */
export class SupervisorError extends Error {
  readonly code: SupervisorCode;
  constructor(code: SupervisorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SupervisorError';
  }
}

/**
 * WorkerStartError is a worker's own report of why it could not start (a configuration error, a
 * hook that threw), with the worker's code: a reload that fails so reports what the worker said.
 */
export class WorkerStartError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'WorkerStartError';
  }
}
